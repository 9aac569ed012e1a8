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

One call dithers one band of rows; ``dither.py`` runs the bands of a large
image on several threads. They share the tables: a cell's entry is the same
whichever thread searches it first, and each cell's state is one byte (or
one bit, or one int16) read and written atomically, so a thread sees either
"not searched" (and searches it too) or the entry.
"""

from libc.math cimport sqrt
from libc.stdint cimport int16_t, int32_t, uint8_t, uint16_t
from libc.stdlib cimport calloc, free, malloc

cdef extern from *:
    """
    /* Relaxed atomic loads and stores of the shared tables' cells: plain
       moves on x86 and ARM, but defined behaviour when two threads meet
       the same cell. */
    #if defined(_MSC_VER)
    #include <intrin.h>
    static inline unsigned char kmq_load_u8(const unsigned char *p) { return *(volatile const unsigned char *)p; }
    static inline void kmq_store_u8(unsigned char *p, unsigned char v) { *(volatile unsigned char *)p = v; }
    static inline short kmq_load_i16(const short *p) { return *(volatile const short *)p; }
    static inline void kmq_store_i16(short *p, short v) { *(volatile short *)p = v; }
    static inline void kmq_or_u8(unsigned char *p, unsigned char v) { _InterlockedOr8((volatile char *)p, (char)v); }
    #else
    static inline unsigned char kmq_load_u8(const unsigned char *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline void kmq_store_u8(unsigned char *p, unsigned char v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
    static inline short kmq_load_i16(const short *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline void kmq_store_i16(short *p, short v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
    static inline void kmq_or_u8(unsigned char *p, unsigned char v) { __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
    #endif
    """
    uint8_t kmq_load_u8(const uint8_t* p) noexcept nogil
    void kmq_store_u8(uint8_t* p, uint8_t v) noexcept nogil
    int16_t kmq_load_i16(const int16_t* p) noexcept nogil
    void kmq_store_i16(int16_t* p, int16_t v) noexcept nogil
    void kmq_or_u8(uint8_t* p, uint8_t v) noexcept nogil

ctypedef fused label_t:
    uint8_t
    uint16_t


#: Cells per table at most (a byte each up to 256 entries: 4 MiB, plus the
#: padding to whole blocks); the cell grows past it.
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


cdef struct _Table:
    # Each cell's entry: one byte when K <= 256, stored as 255 - entry so
    # that 0 means "not searched yet", except for entry 255 of K = 256,
    # which is stored as the cell's bit in ``bits`` (so that each cell's
    # state lives in one place: see the module docstring); int16 holding
    # entry + 1 above 256 entries. The tables come zeroed (np.zeros: calloc,
    # whose pages are only touched where targets fall; a small image touches
    # a few of a table's megabytes). A byte a cell halves the table's share
    # of the caches.
    uint8_t* t8
    uint8_t* bits
    int16_t* t16


cdef inline Py_ssize_t _table_get(const _Table* t, Py_ssize_t ci) noexcept nogil:
    """The cell's entry, or -1 if it was not searched yet."""
    cdef Py_ssize_t v
    if t.t16 != NULL:
        return kmq_load_i16(&t.t16[ci]) - 1
    v = kmq_load_u8(&t.t8[ci])
    if v != 0:
        return 255 - v
    if (kmq_load_u8(&t.bits[ci >> 3]) >> (ci & 7)) & 1:
        return 255
    return -1


cdef inline void _table_set(_Table* t, Py_ssize_t ci, Py_ssize_t best) noexcept nogil:
    if t.t16 != NULL:
        kmq_store_i16(&t.t16[ci], <int16_t>(best + 1))
    elif best == 255:
        kmq_or_u8(&t.bits[ci >> 3], <uint8_t>(1 << (ci & 7)))
    else:
        kmq_store_u8(&t.t8[ci], <uint8_t>(255 - best))


cdef inline void _strengths(
    const double* row, const double* above, const double* below, Py_ssize_t w, int d,
    double level, double edge, double* out,
) noexcept nogil:
    """The edge rule for one row: out[x] = level, scaled by edge / contrast
    where the largest distance from pixel x's colour to its 4 neighbours'
    (``above``/``below`` NULL at the image's top and bottom rows; rows of
    4 doubles a pixel) exceeds ``edge``."""
    cdef Py_ssize_t x
    cdef double contrast, t, edge2 = edge * edge
    for x in range(w):
        contrast = 0.0
        if x > 0:
            t = _d2(&row[x * 4], &row[(x - 1) * 4], d)
            contrast = t if t > contrast else contrast
        if x < w - 1:
            t = _d2(&row[x * 4], &row[(x + 1) * 4], d)
            contrast = t if t > contrast else contrast
        if above != NULL:
            t = _d2(&row[x * 4], &above[x * 4], d)
            contrast = t if t > contrast else contrast
        if below != NULL:
            t = _d2(&row[x * 4], &below[x * 4], d)
            contrast = t if t > contrast else contrast
        out[x] = level * edge / sqrt(contrast) if contrast > edge2 else level


cdef struct _Grid:
    # What the serial loop reads: the grid over the palette's box, the
    # tables, the palette and its search structure, each colour's entry.
    double lo[4]
    double hi[4]
    double inv
    double cell
    Py_ssize_t n_axis[4]
    Py_ssize_t stride[4]
    _Table* table_any
    _Table* table_opaque
    const double* pal
    const double* pd
    const int32_t* od
    const uint8_t* oe
    const int32_t* st
    Py_ssize_t k
    double settle2
    const double* settle_of


cdef inline void _serial_row(
    const _Grid* g, int d, const int32_t* row, label_t* orow, const double* colors, const double* strength,
    const uint8_t* modes, double* cur, double* nxt, Py_ssize_t w, Py_ssize_t step,
) noexcept nogil:
    """One row of error diffusion in the direction ``step`` (+-1): each
    pixel's target (its colour ``colors`` plus the error received in
    ``cur``, scaled by ``strength``), its entry, its error passed on to
    ``cur`` and ``nxt``."""
    cdef Py_ssize_t xi, x, ci, best
    cdef Py_ssize_t idx[4]
    cdef double target[4]
    cdef double centre[4]
    cdef double err[4]
    cdef double att, v, received2, s2
    cdef const double* a
    cdef _Table* table
    cdef uint8_t m
    cdef int c
    for xi in range(w):
        x = xi if step == 1 else w - 1 - xi
        m = modes[x]
        if m == 2:
            orow[x] = <label_t>g.st[row[x]]
            continue
        a = &cur[(x + 1) * 4]
        att = strength[x]
        s2 = g.settle2
        if g.settle_of != NULL:
            v = g.settle_of[row[x]]
            if v * v > s2:
                s2 = v * v
        if s2 > 0.0:
            received2 = 0.0
            for c in range(d):
                received2 += att * a[c] * att * a[c]
            if received2 <= s2:
                best = g.st[row[x]]
                orow[x] = <label_t>best
                for c in range(d):
                    err[c] = colors[x * 4 + c] + att * a[c] - g.pal[best * d + c]
                _diffuse(cur, nxt, x, step, err, d)
                continue
        ci = 0
        for c in range(d):
            v = colors[x * 4 + c] + att * a[c]
            if v < g.lo[c]:
                v = g.lo[c]
            elif v > g.hi[c]:
                v = g.hi[c]
            target[c] = v
            idx[c] = <Py_ssize_t>((v - g.lo[c]) * g.inv)
            if idx[c] >= g.n_axis[c]:
                idx[c] = g.n_axis[c] - 1
            ci += (idx[c] >> 2) * g.stride[c] + ((idx[c] & 3) << (2 * (d - 1 - c)))
        table = g.table_opaque if m == 1 else g.table_any
        best = _table_get(table, ci)
        if best < 0:
            for c in range(d):
                centre[c] = g.lo[c] + (idx[c] + 0.5) * g.cell
            best = _nearest(centre, g.st[row[x]], g.pal, g.pd, g.od, g.k, d, m == 1, g.oe)
            _table_set(table, ci, best)
        orow[x] = <label_t>best
        for c in range(d):
            err[c] = target[c] - g.pal[best * d + c]
        _diffuse(cur, nxt, x, step, err, d)


def grid(const double[::1] low, const double[::1] high, double cell, Py_ssize_t k):
    """The grid over the palette's box (low, high) (D,) float64 for a cell
    of ``cell`` working units and K = ``k`` entries.

    Returns (cell, table_bytes): the cell used (grown by 1.25x until the
    grid has at most MAX_CELLS cells) and the length of each row of the
    (2, table_bytes) uint8 zeroed array that :func:`floyd_steinberg` takes
    as its tables (row 0: any entry, row 1: opaque entries only).
    """
    cdef Py_ssize_t d = low.shape[0], cells
    cdef Py_ssize_t n_axis[4]
    cdef Py_ssize_t stride[4]
    if d < 1 or d > 4 or high.shape[0] != d:
        raise ValueError("dithering takes 1 to 4 channels")
    if not cell > 0:
        raise ValueError("the grid cell must be positive")
    cell = _layout(&low[0], &high[0], <int>d, cell, n_axis, stride, &cells)
    return cell, (2 * cells if k > 256 else cells + (cells >> 3) + 1)


cdef double _layout(const double* lo, const double* hi, int d, double cell, Py_ssize_t* n_axis, Py_ssize_t* stride,
                    Py_ssize_t* cells_out) noexcept:
    """Cells per axis, the blocked strides and the padded cell count of the
    grid (see :func:`floyd_steinberg`); returns the cell used."""
    cdef Py_ssize_t cells, block
    cdef int c
    while True:
        cells = 1
        for c in range(d):
            n_axis[c] = <Py_ssize_t>((hi[c] - lo[c]) / cell) + 1
            cells *= n_axis[c]
        if cells <= MAX_CELLS:
            break
        cell *= 1.25
    # The table is stored in blocks of 4 cells per axis (64 cells in 3-D),
    # each block contiguous: consecutive targets fall in neighbouring cells,
    # which then share a cache line. Row-major cells put neighbours along the
    # first axis megabytes apart, and the lookup is on the loop's serial path
    # (the next target needs this entry's error): a cache miss a pixel.
    block = 1
    for c in range(d):
        block *= 4
    stride[d - 1] = block
    for c in range(d - 2, -1, -1):
        stride[c] = stride[c + 1] * ((n_axis[c + 1] + 3) >> 2)
    cells_out[0] = stride[0] * ((n_axis[0] + 3) >> 2)
    return cell


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
    uint8_t[:, ::1] tables,
    label_t[:, ::1] labels_out,
    Py_ssize_t y_begin,
    Py_ssize_t y_out,
    Py_ssize_t y_end,
    double settle=0.0,
    const double[::1] settle_of=None,
):
    """Dithered palette index of the pixels of rows ``y_out:y_end``.

    color_index (H, W) int32: row of ``points`` (M, D) float64 holding each
    pixel's colour in the working space (D <= 4); start (M,) int32: its
    undithered entry; mode (M,) uint8: 0 any entry, 1 opaque entries only
    (``opaque_entry`` (K,) uint8 says which), 2 keep ``start`` and pass no
    error on (fully transparent pixels); palette (K, D); pal_dist (K, K)
    and order (K, K) as in ``_colorspace.nearest`` (shape (0, 0): brute
    force); level: fraction of the error passed on (0..1); edge: 0 for
    plain Floyd-Steinberg, else the error a pixel receives is scaled down
    where its colour differs from its 4 neighbours' by more than ``edge``
    (working units), so strong edges do not sprout noise; cell, tables: the
    grid's cell edge (working units) and its zeroed (2, table_bytes) uint8
    tables, from :func:`grid` (the tables may be shared by calls running at
    once, and reused for the same palette, cell and modes); low, high (D,):
    the palette's bounding box. Writes rows ``y_out:y_end`` of labels_out
    (H, W) uint8 or uint16 (K <= 256 or more), the labels' stored dtype: no
    int32 copy of the image.

    The diffusion starts with no error at row ``y_begin`` (<= y_out): rows
    ``y_begin:y_out`` are dithered and not written, so that the error
    entering row ``y_out`` is like the one a run from the top would bring.
    Each row's direction is that of a run from the top (left to right on
    even rows).

    settle: a pixel whose received error (after the edge rule) is at most
    this long (working units) keeps its undithered entry ``start`` instead
    of its cell's entry, and passes on what it received plus its own
    error; 0 (the default) never. settle_of (M,) float64, optional: a bound
    of each colour's own (a row of ``points``); a pixel's bound is the
    larger of the two.
    """
    cdef Py_ssize_t h = color_index.shape[0], w = color_index.shape[1]
    cdef Py_ssize_t k = palette.shape[0]
    cdef int d = points.shape[1]
    if d < 1 or d > 4 or palette.shape[1] != d or k < 1 or k > 32767:
        raise ValueError("dithering takes 1 to 4 channels and 1 to 32767 palette entries")
    if label_t is uint8_t and k > 256:
        raise ValueError("uint8 labels hold at most 256 palette entries")
    if labels_out.shape[0] != h or labels_out.shape[1] != w:
        raise ValueError("the labels must have the image's shape")
    if not (0 <= y_begin <= y_out <= y_end <= h):
        raise ValueError("the rows must satisfy 0 <= y_begin <= y_out <= y_end <= H")
    cdef Py_ssize_t y, x, p, step, cells
    cdef int c
    if not cell > 0:
        raise ValueError("the grid cell must be positive")
    if settle_of is not None and settle_of.shape[0] != points.shape[0]:
        raise ValueError("settle_of must hold one bound per colour")
    cdef double inv
    cdef double settle2 = settle * settle
    cdef Py_ssize_t n_axis[4]
    cdef Py_ssize_t stride[4]
    cdef double lo[4]
    cdef double hi[4]
    for c in range(d):
        lo[c] = low[c]
        hi[c] = high[c]
    cell = _layout(lo, hi, d, cell, n_axis, stride, &cells)
    inv = 1.0 / cell
    if tables.shape[0] != 2 or tables.shape[1] < (2 * cells if k > 256 else cells + (cells >> 3) + 1):
        raise ValueError("the tables are smaller than the grid (see grid())")
    if y_end == y_out:
        return

    cdef bint any_mode = False
    for p in range(mode.shape[0]):
        if mode[p] != 0:
            any_mode = True
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
    cdef const int32_t* row2 = NULL
    cdef label_t* orow
    # Tables of each cell's entry, for any entry and for opaque entries
    # only; two rows of accumulated error with a pixel of margin each side;
    # three rows of colours (the edge rule reads the rows above and below),
    # gathered before the serial loop so that it reads them in order; this
    # row's modes, gathered only when some colour has one (an RGB image's
    # never do); a row for the labels of the rows not written. A colour's
    # undithered entry is read only where a cell is searched or a pixel
    # settles.
    cdef _Table table_any, table_opaque
    if k > 256:
        table_any.t16 = <int16_t*>&tables[0, 0]
        table_opaque.t16 = <int16_t*>&tables[1, 0]
        table_any.t8 = table_any.bits = table_opaque.t8 = table_opaque.bits = NULL
    else:
        table_any.t8 = &tables[0, 0]
        table_any.bits = &tables[0, cells]
        table_opaque.t8 = &tables[1, 0]
        table_opaque.bits = &tables[1, cells]
        table_any.t16 = table_opaque.t16 = NULL
    cdef double* cur = <double*>calloc((w + 2) * 4, sizeof(double))
    cdef double* nxt = <double*>calloc((w + 2) * 4, sizeof(double))
    cdef double* ring = <double*>malloc(3 * (w + 1) * 4 * sizeof(double))
    cdef double* prev_row = ring
    cdef double* cur_row = ring + (w + 1) * 4 if ring != NULL else NULL
    cdef double* next_row = ring + 2 * (w + 1) * 4 if ring != NULL else NULL
    cdef double* strength = <double*>malloc((w + 1) * sizeof(double))
    cdef uint8_t* modes = <uint8_t*>calloc(w + 1, 1)
    cdef label_t* scratch = <label_t*>malloc((w + 1) * sizeof(label_t))
    cdef double* swap
    if cur == NULL or nxt == NULL or ring == NULL or strength == NULL or modes == NULL or scratch == NULL:
        free(cur); free(nxt); free(ring); free(strength); free(modes); free(scratch)
        raise MemoryError()
    cdef _Grid g
    for c in range(d):
        g.lo[c] = lo[c]
        g.hi[c] = hi[c]
        g.n_axis[c] = n_axis[c]
        g.stride[c] = stride[c]
    g.inv = inv
    g.cell = cell
    g.table_any = &table_any
    g.table_opaque = &table_opaque
    g.pal = pal
    g.pd = pd
    g.od = od
    g.oe = oe
    g.st = st
    g.k = k
    g.settle2 = settle2
    g.settle_of = &settle_of[0] if settle_of is not None and settle_of.shape[0] > 0 else NULL
    with nogil:
        if y_begin > 0:
            _gather(&color_index[y_begin - 1, 0], w, pts, d, prev_row)
        _gather(&color_index[y_begin, 0], w, pts, d, cur_row)
        if y_begin + 1 < h:
            _gather(&color_index[y_begin + 1, 0], w, pts, d, next_row)
        for y in range(y_begin, y_end):
            row = &color_index[y, 0]
            row2 = &color_index[y + 2, 0] if y + 2 < h else NULL
            orow = &labels_out[y, 0] if y >= y_out else scratch
            if any_mode:
                for x in range(w):
                    modes[x] = md[row[x]]
            if edge > 0.0:
                # A constant d (RGB, RGBA) lets the compiler unroll the
                # channel loops.
                if d == 3:
                    _strengths(cur_row, prev_row if y > 0 else NULL, next_row if y < h - 1 else NULL,
                               w, 3, level, edge, strength)
                elif d == 4:
                    _strengths(cur_row, prev_row if y > 0 else NULL, next_row if y < h - 1 else NULL,
                               w, 4, level, edge, strength)
                else:
                    _strengths(cur_row, prev_row if y > 0 else NULL, next_row if y < h - 1 else NULL,
                               w, d, level, edge, strength)
            else:
                for x in range(w):
                    strength[x] = level
            for x in range((w + 2) * 4):
                nxt[x] = 0.0
            step = 1 if y % 2 == 0 else -1
            if d == 3:
                _serial_row(&g, 3, row, orow, cur_row, strength, modes, cur, nxt, w, step)
            elif d == 4:
                _serial_row(&g, 4, row, orow, cur_row, strength, modes, cur, nxt, w, step)
            else:
                _serial_row(&g, d, row, orow, cur_row, strength, modes, cur, nxt, w, step)
            swap = cur
            cur = nxt
            nxt = swap
            swap = prev_row
            prev_row = cur_row
            cur_row = next_row
            next_row = swap
            if row2 != NULL and y + 1 < y_end:
                _gather(row2, w, pts, d, next_row)
    free(cur); free(nxt); free(ring); free(strength); free(modes); free(scratch)
