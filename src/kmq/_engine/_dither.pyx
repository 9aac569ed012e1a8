# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Error diffusion (Floyd-Steinberg, serpentine) in the working colour space,
driven by ``dither.py``.

Each pixel's working-space colour plus the diffused error (the target) is
clamped to the palette's bounding box (no palette entry lies outside it, so
error beyond it could only pile up and smear), then given the palette entry
nearest to the centre of the target's cell in a grid over that box (cells
of ``cell`` working units, the caller's choice: a fraction of the palette's
spacing; coarser only when the box would need more than ``MAX_CELLS``
cells, growing by 1.25x until it fits). Each cell's entry is
found once, by the exact sort-means search of ``_colorspace.nearest``, and
remembered: a photograph's targets fall in a few hundred thousand cells, so
nearly every pixel costs one table read instead of a search over tens of
entries (measured at K = 256 on a 9.8 MP photograph: 45 entries visited a
pixel, 6x the time).
The entry may differ from the target's own nearest when the target lies
within half a cell of a boundary between two entries; the difference is
passed on with the rest of the error, which is what error diffusion is
for, and the cell's entry depends only on the cell, so the result does not
depend on the order in which cells are first met.

Pixels whose colour may only take opaque entries (``mode`` 1) use a second
table searched among those; fully transparent ones (``mode`` 2) keep their
entry and pass no error on.
"""

from libc.math cimport sqrt
from libc.stdint cimport int16_t, int32_t, uint8_t, uint16_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset

ctypedef fused label_t:
    uint8_t
    uint16_t


#: Cells per table at most (int16 entries: 8 MiB); the cell grows past it.
DEF MAX_CELLS = 4194304


cdef inline double _d2(const double* x, const double* y, int d) noexcept nogil:
    cdef double s = 0.0, t
    cdef int c
    for c in range(d):
        t = x[c] - y[c]
        s += t * t
    return s


cdef Py_ssize_t _nearest(
    const double* target, Py_ssize_t g, const double* pal, const double* pal_dist, const int32_t* order,
    Py_ssize_t k, int d, bint opaque_only, const uint8_t* opaque_entry,
) noexcept nogil:
    """Exact nearest allowed entry of ``target``; ties to the lowest index.

    With ``order`` (K, K) (NULL: brute force): visit the entries by
    increasing distance from the guess ``g``; by the triangle inequality
    none farther than ``dist(g, j) - dist(target, g) > best`` can win.
    """
    cdef Py_ssize_t t, j, best = -1
    cdef double dg, dj, best_d2 = 1e300, best_d = 1e300
    if order == NULL:
        for j in range(k):
            if opaque_only and not opaque_entry[j]:
                continue
            dj = _d2(target, &pal[j * d], d)
            if dj < best_d2:
                best_d2 = dj
                best = j
        return best
    dg = sqrt(_d2(target, &pal[g * d], d))
    for t in range(k):
        j = order[g * k + t]
        if pal_dist[g * k + j] - dg > best_d * (1.0 + 1e-12) + 1e-9:
            break
        if opaque_only and not opaque_entry[j]:
            continue
        dj = _d2(target, &pal[j * d], d)
        if dj < best_d2 or (dj == best_d2 and j < best):
            best_d2 = dj
            best = j
            best_d = sqrt(dj)
    return best


cdef inline void _diffuse(double* cur, double* nxt, Py_ssize_t x, Py_ssize_t step, const double* err, int d) noexcept nogil:
    """Floyd-Steinberg's weights for pixel x of the row (``step`` +-1, the
    serpentine direction; rows have a pixel of margin each side): 7/16
    ahead, 3/16 behind below, 5/16 below, 1/16 ahead below."""
    cdef Py_ssize_t q = x + 1 + step
    cdef int c
    for c in range(d):
        cur[q * 4 + c] += err[c] * (7.0 / 16.0)
        nxt[(x + 1 - step) * 4 + c] += err[c] * (3.0 / 16.0)
        nxt[(x + 1) * 4 + c] += err[c] * (5.0 / 16.0)
        nxt[q * 4 + c] += err[c] * (1.0 / 16.0)


cdef inline void _gather(const int32_t* row, Py_ssize_t w, const double* pts, int d, double* out) noexcept nogil:
    """out[x * 4 + c] = pts[row[x] * d + c]: one row's working-space colours."""
    cdef Py_ssize_t x
    cdef int c
    for x in range(w):
        for c in range(d):
            out[x * 4 + c] = pts[row[x] * d + c]


def floyd_steinberg(
    const int32_t[:, ::1] color_index,
    const double[:, ::1] points,
    const int32_t[::1] start,
    const uint8_t[::1] mode,
    const double[:, ::1] palette,
    const double[:, ::1] pal_dist,
    const int32_t[:, ::1] order,
    const uint8_t[::1] opaque_entry,
    double level,
    double edge,
    double cell,
    const double[::1] low,
    const double[::1] high,
    label_t[:, ::1] labels_out,
    double settle=0.0,
):
    """Dithered palette index of every pixel.

    color_index (H, W) int32: row of ``points`` (M, D) float64 holding each
    pixel's colour in the working space (D <= 4); start (M,) int32: its
    undithered entry; mode (M,) uint8: 0 any entry, 1 opaque entries only
    (``opaque_entry`` (K,) uint8 says which), 2 keep ``start`` and pass no
    error on (fully transparent pixels); palette (K, D); pal_dist (K, K)
    and order (K, K) as in ``_colorspace.nearest`` (shape (0, 0): brute
    force); level: fraction of the error passed on (0..1); edge: 0 for
    plain Floyd-Steinberg, else the error a pixel receives is scaled down
    where its colour differs from its 4 neighbours' by more than ``edge``
    (working units), so strong edges do not sprout noise; cell: the grid's
    cell edge (working units, > 0); low, high
    (D,): the palette's bounding box. Writes labels_out (H, W) uint8 or uint16
    (K <= 256 or more), the labels' stored dtype: no int32 copy of the image.
    settle: a pixel whose received error (after the edge rule) is at most
    this long (working units) keeps its undithered entry ``start`` instead
    of its cell's entry, and passes on what it received plus its own
    error; 0 (the default) never.
    """
    cdef Py_ssize_t h = color_index.shape[0], w = color_index.shape[1]
    cdef Py_ssize_t k = palette.shape[0]
    cdef int d = points.shape[1]
    if d < 1 or d > 4 or palette.shape[1] != d or k < 1 or k > 32767:
        raise ValueError("dithering takes 1 to 4 channels and 1 to 32767 palette entries")
    if label_t is uint8_t and k > 256:
        raise ValueError("uint8 labels hold at most 256 palette entries")
    cdef Py_ssize_t y, x, xi, best, p, step, ci, cells
    cdef int c
    cdef uint8_t m
    if not cell > 0:
        raise ValueError("the grid cell must be positive")
    cdef double inv, v, contrast, att, received2
    cdef double settle2 = settle * settle
    cdef Py_ssize_t n_axis[4]
    cdef Py_ssize_t stride[4]
    cdef Py_ssize_t idx[4]
    cdef double lo[4]
    cdef double hi[4]
    cdef double target[4]
    cdef double centre[4]
    cdef double err[4]
    for c in range(d):
        lo[c] = low[c]
        hi[c] = high[c]
    while True:
        cells = 1
        for c in range(d):
            n_axis[c] = <Py_ssize_t>((hi[c] - lo[c]) / cell) + 1
            cells *= n_axis[c]
        if cells <= MAX_CELLS:
            break
        cell *= 1.25
    inv = 1.0 / cell
    stride[d - 1] = 1
    for c in range(d - 2, -1, -1):
        stride[c] = stride[c + 1] * n_axis[c + 1]

    cdef bint any_opaque_only = False
    for p in range(mode.shape[0]):
        if mode[p] == 1:
            any_opaque_only = True
            break
    cdef const double* pts = &points[0, 0]
    cdef const double* pal = &palette[0, 0]
    cdef const double* pd = NULL
    cdef const int32_t* od = NULL
    if order.shape[0] != 0:
        pd = &pal_dist[0, 0]
        od = &order[0, 0]
    cdef const int32_t* st = &start[0]
    cdef const uint8_t* md = &mode[0]
    cdef const uint8_t* oe = &opaque_entry[0]
    cdef const int32_t* row
    cdef label_t* orow
    cdef int16_t* table
    # Tables of each cell's entry (-1: not searched yet), for any entry and
    # for opaque entries only; two rows of accumulated error with a pixel of
    # margin each side; this row's colours, guesses and modes gathered
    # before the serial loop, so that the loop reads them in order.
    cdef int16_t* table_any = <int16_t*>malloc(cells * sizeof(int16_t))
    cdef int16_t* table_opaque = <int16_t*>malloc(cells * sizeof(int16_t)) if any_opaque_only else NULL
    cdef double* cur = <double*>calloc((w + 2) * 4, sizeof(double))
    cdef double* nxt = <double*>calloc((w + 2) * 4, sizeof(double))
    cdef double* ring = <double*>malloc(3 * (w + 1) * 4 * sizeof(double))
    cdef double* prev_row = ring
    cdef double* cur_row = ring + (w + 1) * 4 if ring != NULL else NULL
    cdef double* next_row = ring + 2 * (w + 1) * 4 if ring != NULL else NULL
    cdef double edge2 = edge * edge
    cdef double* strength = <double*>malloc((w + 1) * sizeof(double))
    cdef int32_t* guess = <int32_t*>malloc((w + 1) * sizeof(int32_t))
    cdef uint8_t* modes = <uint8_t*>malloc(w + 1)
    cdef double* swap
    cdef double* a
    if (table_any == NULL or (any_opaque_only and table_opaque == NULL) or cur == NULL or nxt == NULL
            or ring == NULL or strength == NULL or guess == NULL or modes == NULL):
        free(table_any); free(table_opaque); free(cur); free(nxt); free(ring); free(strength); free(guess); free(modes)
        raise MemoryError()
    memset(table_any, 0xFF, cells * sizeof(int16_t))
    if table_opaque != NULL:
        memset(table_opaque, 0xFF, cells * sizeof(int16_t))
    with nogil:
        _gather(&color_index[0, 0], w, pts, d, cur_row)
        if h > 1:
            _gather(&color_index[1, 0], w, pts, d, next_row)
        for y in range(h):
            row = &color_index[y, 0]
            orow = &labels_out[y, 0]
            for x in range(w):
                p = row[x]
                guess[x] = st[p]
                modes[x] = md[p]
                att = level
                if edge > 0.0:
                    # Largest squared difference to the 4 neighbours'
                    # colours, read from the three gathered rows.
                    contrast = 0.0
                    if x > 0:
                        contrast = max(contrast, _d2(&cur_row[x * 4], &cur_row[(x - 1) * 4], d))
                    if x < w - 1:
                        contrast = max(contrast, _d2(&cur_row[x * 4], &cur_row[(x + 1) * 4], d))
                    if y > 0:
                        contrast = max(contrast, _d2(&cur_row[x * 4], &prev_row[x * 4], d))
                    if y < h - 1:
                        contrast = max(contrast, _d2(&cur_row[x * 4], &next_row[x * 4], d))
                    if contrast > edge2:
                        att = level * edge / sqrt(contrast)
                strength[x] = att
            for x in range((w + 2) * 4):
                nxt[x] = 0.0
            step = 1 if y % 2 == 0 else -1
            for xi in range(w):
                x = xi if step == 1 else w - 1 - xi
                m = modes[x]
                if m == 2:
                    orow[x] = <label_t>guess[x]
                    continue
                a = &cur[(x + 1) * 4]
                att = strength[x]
                if settle2 > 0.0:
                    received2 = 0.0
                    for c in range(d):
                        received2 += att * a[c] * att * a[c]
                    if received2 <= settle2:
                        best = guess[x]
                        orow[x] = <label_t>best
                        for c in range(d):
                            err[c] = cur_row[x * 4 + c] + att * a[c] - pal[best * d + c]
                        _diffuse(cur, nxt, x, step, err, d)
                        continue
                ci = 0
                for c in range(d):
                    v = cur_row[x * 4 + c] + att * a[c]
                    if v < lo[c]:
                        v = lo[c]
                    elif v > hi[c]:
                        v = hi[c]
                    target[c] = v
                    idx[c] = <Py_ssize_t>((v - lo[c]) * inv)
                    if idx[c] >= n_axis[c]:
                        idx[c] = n_axis[c] - 1
                    ci += idx[c] * stride[c]
                table = table_opaque if m == 1 else table_any
                best = table[ci]
                if best < 0:
                    for c in range(d):
                        centre[c] = lo[c] + (idx[c] + 0.5) * cell
                    best = _nearest(centre, guess[x], pal, pd, od, k, d, m == 1, oe)
                    table[ci] = <int16_t>best
                orow[x] = <label_t>best
                for c in range(d):
                    err[c] = target[c] - pal[best * d + c]
                _diffuse(cur, nxt, x, step, err, d)
            swap = cur
            cur = nxt
            nxt = swap
            swap = prev_row
            prev_row = cur_row
            cur_row = next_row
            next_row = swap
            if y + 2 < h:
                _gather(&color_index[y + 2, 0], w, pts, d, next_row)
    free(table_any); free(table_opaque); free(cur); free(nxt); free(ring); free(strength); free(guess); free(modes)
