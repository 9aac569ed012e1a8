# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled loops of ``metrics.py``: squared-error sums and SSIM.

SSIM follows Wang et al. (2004) as scikit-image computes it by default
(``structural_similarity`` with a uniform ``win`` x ``win`` window, sample
covariances, K1 = 0.01, K2 = 0.03, and the mean taken over the windows that
lie wholly inside the image): the window sums are exact integers, kept per
column for a band of ``win`` rows and slid down the image, so memory is
O(width) and a 12-megapixel image needs no float copies of itself.
"""

from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport calloc, free


def squared_error_sums(const uint8_t[:, :, ::1] a, const uint8_t[:, :, ::1] b, int64_t[::1] sums_out):
    """sums_out[c] += sum over pixels of (a[..., c] - b[..., c])^2, exact.

    a, b: (H, W, C) uint8 of the same shape; sums_out (C,) int64.
    """
    cdef Py_ssize_t y, x, c, h = a.shape[0], w = a.shape[1], channels = a.shape[2]
    cdef int64_t t
    with nogil:
        for y in range(h):
            for x in range(w):
                for c in range(channels):
                    t = <int64_t>a[y, x, c] - <int64_t>b[y, x, c]
                    sums_out[c] += t * t


def ssim_rows(const uint8_t[:, :, ::1] a, const uint8_t[:, :, ::1] b, int win, Py_ssize_t start, Py_ssize_t stop, double[::1] sums_out):
    """Sum of the SSIM map of each channel over window rows ``start:stop``.

    a, b: (H, W, C) uint8; win: odd window side, <= min(H, W). Window row r
    covers image rows r .. r + win - 1; there are H - win + 1 window rows
    and W - win + 1 windows in each. sums_out (C,) float64, OUT (added to):
    per channel, the sum of SSIM over the windows of those rows, so that
    the mean SSIM of channel c is ``sums_out[c] / ((H-win+1) * (W-win+1))``
    once every row range has been added.
    """
    cdef Py_ssize_t h = a.shape[0], w = a.shape[1], channels = a.shape[2]
    cdef Py_ssize_t n_cols = w - win + 1
    cdef Py_ssize_t y, x, c, r, i
    cdef double n = <double>win * win
    cdef double cov_norm = n / (n - 1.0)
    cdef double c1 = (0.01 * 255) ** 2, c2 = (0.03 * 255) ** 2
    cdef double ux, uy, vx, vy, vxy, total
    cdef int64_t sx, sy, sxx, syy, sxy, va, vb
    # Per column, the sums over the band's win rows: x, y, x², y², xy.
    cdef int64_t* col = <int64_t*>calloc(5 * w, sizeof(int64_t))
    if col == NULL:
        raise MemoryError()
    try:
        with nogil:
            for c in range(channels):
                for i in range(5 * w):
                    col[i] = 0
                for y in range(start, start + win):
                    for x in range(w):
                        va = a[y, x, c]
                        vb = b[y, x, c]
                        col[5 * x] += va
                        col[5 * x + 1] += vb
                        col[5 * x + 2] += va * va
                        col[5 * x + 3] += vb * vb
                        col[5 * x + 4] += va * vb
                total = 0.0
                for r in range(start, stop):
                    if r > start:
                        # Slide the band down one row.
                        for x in range(w):
                            va = a[r - 1, x, c]
                            vb = b[r - 1, x, c]
                            col[5 * x] -= va
                            col[5 * x + 1] -= vb
                            col[5 * x + 2] -= va * va
                            col[5 * x + 3] -= vb * vb
                            col[5 * x + 4] -= va * vb
                            va = a[r + win - 1, x, c]
                            vb = b[r + win - 1, x, c]
                            col[5 * x] += va
                            col[5 * x + 1] += vb
                            col[5 * x + 2] += va * va
                            col[5 * x + 3] += vb * vb
                            col[5 * x + 4] += va * vb
                    sx = sy = sxx = syy = sxy = 0
                    for x in range(win):
                        sx += col[5 * x]
                        sy += col[5 * x + 1]
                        sxx += col[5 * x + 2]
                        syy += col[5 * x + 3]
                        sxy += col[5 * x + 4]
                    for x in range(n_cols):
                        if x > 0:
                            sx += col[5 * (x + win - 1)] - col[5 * (x - 1)]
                            sy += col[5 * (x + win - 1) + 1] - col[5 * (x - 1) + 1]
                            sxx += col[5 * (x + win - 1) + 2] - col[5 * (x - 1) + 2]
                            syy += col[5 * (x + win - 1) + 3] - col[5 * (x - 1) + 3]
                            sxy += col[5 * (x + win - 1) + 4] - col[5 * (x - 1) + 4]
                        ux = sx / n
                        uy = sy / n
                        vx = cov_norm * (sxx / n - ux * ux)
                        vy = cov_norm * (syy / n - uy * uy)
                        vxy = cov_norm * (sxy / n - ux * uy)
                        total += ((2.0 * ux * uy + c1) * (2.0 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
                sums_out[c] += total
    finally:
        free(col)
