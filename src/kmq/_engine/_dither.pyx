# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Error diffusion (Floyd-Steinberg, serpentine) in the working colour space,
driven by ``dither.py``.

Each pixel's working-space colour plus the diffused error is clamped to the
palette's bounding box (no palette entry lies outside it, so error beyond it
could only pile up and smear), then mapped to its nearest palette entry by
the same sort-means search as ``_colorspace.nearest``, started from the
entry the undithered mapping gave that pixel's colour: the diffused error
is small next to the palette spacing, so the search stops after a few
entries.
"""

from libc.math cimport sqrt, fabs
from libc.stdint cimport int32_t, uint8_t
from libc.stdlib cimport calloc, free


cdef inline double _d2(const double* x, const double* y, int d) noexcept nogil:
    # Raw pointers: a memoryview argument would cost two atomic reference
    # count updates per call (measured: 4x slower overall).
    cdef double s = 0.0, t
    cdef int c
    for c in range(d):
        t = x[c] - y[c]
        s += t * t
    return s


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
    const double[::1] low,
    const double[::1] high,
    int32_t[:, ::1] labels_out,
):
    """Dithered palette index of every pixel.

    color_index (H, W) int32: row of ``points`` (M, D) float64 holding each
    pixel's colour in the working space; start (M,) int32: its undithered
    entry; mode (M,) uint8: 0 any entry, 1 opaque entries only
    (``opaque_entry`` (K,) uint8 says which), 2 keep ``start`` and pass no
    error on (fully transparent pixels); palette (K, D); pal_dist (K, K) and
    order (K, K) as in ``_colorspace.nearest`` (shape (0, 0): brute force);
    level: fraction of the error passed on (0..1); edge: 0 for plain
    Floyd-Steinberg, else the error a pixel receives is scaled down where
    its colour differs from its neighbours' by more than ``edge`` (working
    units), so strong edges do not sprout noise; low, high (D,): the
    palette's bounding box. Writes labels_out (H, W) int32.
    """
    cdef Py_ssize_t h = color_index.shape[0], w = color_index.shape[1]
    cdef Py_ssize_t k = palette.shape[0]
    cdef int d = points.shape[1]
    cdef Py_ssize_t y, x, xi, t, j, g, best, p, q, step
    cdef int c
    cdef double dg, best_d2, best_d, dj, v, contrast, att
    cdef double target[4]
    cdef double err[4]
    cdef bint brute = order.shape[0] == 0
    cdef uint8_t m
    # Two rows of accumulated error, with one pixel of margin on each side.
    cdef double* cur = <double*>calloc((w + 2) * 4, sizeof(double))
    cdef double* nxt = <double*>calloc((w + 2) * 4, sizeof(double))
    cdef double* swap
    if cur == NULL or nxt == NULL:
        free(cur)
        free(nxt)
        raise MemoryError()
    try:
        with nogil:
            for y in range(h):
                for xi in range((w + 2) * 4):
                    nxt[xi] = 0.0
                step = 1 if y % 2 == 0 else -1
                for xi in range(w):
                    x = xi if step == 1 else w - 1 - xi
                    p = color_index[y, x]
                    m = mode[p]
                    if m == 2:
                        labels_out[y, x] = start[p]
                        continue
                    att = level
                    if edge > 0.0:
                        # Largest difference to the 4 neighbours' colours.
                        contrast = 0.0
                        if x > 0:
                            contrast = max(contrast, sqrt(_d2(&points[p, 0], &points[color_index[y, x - 1], 0], d)))
                        if x < w - 1:
                            contrast = max(contrast, sqrt(_d2(&points[p, 0], &points[color_index[y, x + 1], 0], d)))
                        if y > 0:
                            contrast = max(contrast, sqrt(_d2(&points[p, 0], &points[color_index[y - 1, x], 0], d)))
                        if y < h - 1:
                            contrast = max(contrast, sqrt(_d2(&points[p, 0], &points[color_index[y + 1, x], 0], d)))
                        if contrast > edge:
                            att = level * edge / contrast
                    for c in range(d):
                        v = points[p, c] + att * cur[(x + 1) * 4 + c]
                        if v < low[c]:
                            v = low[c]
                        elif v > high[c]:
                            v = high[c]
                        target[c] = v
                    g = start[p]
                    best = -1
                    best_d2 = 1e300
                    if brute:
                        for j in range(k):
                            if m == 1 and not opaque_entry[j]:
                                continue
                            dj = _d2(target, &palette[j, 0], d)
                            if dj < best_d2:
                                best_d2 = dj
                                best = j
                    else:
                        dg = sqrt(_d2(target, &palette[g, 0], d))
                        best_d = 1e300
                        for t in range(k):
                            j = order[g, t]
                            if pal_dist[g, j] - dg > best_d * (1.0 + 1e-12) + 1e-9:
                                break
                            if m == 1 and not opaque_entry[j]:
                                continue
                            dj = _d2(target, &palette[j, 0], d)
                            if dj < best_d2 or (dj == best_d2 and j < best):
                                best_d2 = dj
                                best = j
                                best_d = sqrt(dj)
                    labels_out[y, x] = <int32_t>best
                    for c in range(d):
                        err[c] = target[c] - palette[best, c]
                    # 7/16 ahead, 3/16 behind below, 5/16 below, 1/16 ahead below.
                    q = x + 1 + step
                    for c in range(d):
                        cur[q * 4 + c] += err[c] * (7.0 / 16.0)
                        nxt[(x + 1 - step) * 4 + c] += err[c] * (3.0 / 16.0)
                        nxt[(x + 1) * 4 + c] += err[c] * (5.0 / 16.0)
                        nxt[q * 4 + c] += err[c] * (1.0 / 16.0)
                swap = cur
                cur = nxt
                nxt = swap
    finally:
        free(cur)
        free(nxt)



