# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled loops of ``metrics.py``: squared-error sums, SSIM, the
perceptual error and the count of alpha kept exact.

SSIM follows Wang et al. (2004) as scikit-image computes it by default
(``structural_similarity`` with a uniform ``win`` x ``win`` window, sample
covariances, K1 = 0.01, K2 = 0.03, and the mean taken over the windows that
lie wholly inside the image): the window sums are exact integers, kept per
column for a band of ``win`` rows and slid down the image, so memory is
O(width) and a 12-megapixel image needs no float copies of itself.

The perceptual error (``perceptual_rows``) converts both images to Oklab
row by row, blurs their difference with a separable Gaussian (one width on
lightness, another on the two chroma coordinates) and sums the length of
the blurred difference: the difference is blurred rather than each image,
since the blur is linear, so one image's worth of filtering is done, in a
ring of rows, and memory is again O(width).
"""

from libc.math cimport sqrt
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc


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


def alpha_counts(const uint8_t[:, :, ::1] a, const uint8_t[:, :, ::1] b, Py_ssize_t start, Py_ssize_t stop, double[::1] counts_out):
    """Over rows start..stop: counts_out += (pixels of a at alpha 255, of
    those b's still at 255, pixels of a at alpha 0, of those b's still at
    0), in one pass (doubles, exact below 2^53 pixels: the accumulators of
    ``run_chunked``).

    a, b: (H, W, C) uint8 of the same shape, alpha last; counts_out (4,).
    """
    cdef Py_ssize_t y, x, w = a.shape[1], last = a.shape[2] - 1
    cdef uint8_t before, after
    cdef int64_t opaque = 0, opaque_kept = 0, clear = 0, clear_kept = 0
    with nogil:
        for y in range(start, stop):
            for x in range(w):
                before = a[y, x, last]
                after = b[y, x, last]
                if before == 255:
                    opaque += 1
                    opaque_kept += after == 255
                elif before == 0:
                    clear += 1
                    clear_kept += after == 0
    counts_out[0] += opaque
    counts_out[1] += opaque_kept
    counts_out[2] += clear
    counts_out[3] += clear_kept


def composite_rows(
    const uint8_t[:, :, ::1] image, const uint8_t[:, ::1] table, Py_ssize_t column, Py_ssize_t start, Py_ssize_t stop,
    uint8_t[:, :, ::1] out,
):
    """Rows ``start:stop`` of an LA or RGBA image (H, W, C) uint8 over a
    background: out[y, column + x, c] = table[alpha, image[y, x, c]] for
    the C - 1 colour channels; table (256, 256) uint8, the composite of
    each colour level at each alpha (see metrics.composite), out (H, W', C
    - 1) uint8 with W' >= column + W. Each row on its own: ranges may run on
    threads at once."""
    cdef Py_ssize_t y, x, w = image.shape[1]
    cdef int c, n_colour = image.shape[2] - 1
    cdef const uint8_t* row
    with nogil:
        for y in range(start, stop):
            for x in range(w):
                row = &table[image[y, x, n_colour], 0]
                for c in range(n_colour):
                    out[y, column + x, c] = row[image[y, x, c]]


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
    cdef double ux, uy, vx, vy, vxy, total, part0, part1, part2, part3
    cdef int64_t sx, sy, sxx, syy, sxy, va, vb
    # Per column, the sums over the band's win rows, one array a statistic
    # (x, y, x², y², xy); then per window of the row its five sums. Kept
    # apart so that the compiler can run each loop on vectors: the window
    # formula, with its division, in a loop of its own.
    cdef int64_t* col = <int64_t*>calloc(5 * w, sizeof(int64_t))
    cdef int64_t* cx = col
    cdef int64_t* cy = col + w
    cdef int64_t* cxx = col + 2 * w
    cdef int64_t* cyy = col + 3 * w
    cdef int64_t* cxy = col + 4 * w
    cdef double* sums = <double*>malloc(5 * n_cols * sizeof(double))
    cdef double* wx = sums
    cdef double* wy = sums + n_cols
    cdef double* wxx = sums + 2 * n_cols
    cdef double* wyy = sums + 3 * n_cols
    cdef double* wxy = sums + 4 * n_cols
    try:
        if col == NULL or sums == NULL:
            raise MemoryError()
        with nogil:
            for c in range(channels):
                for i in range(5 * w):
                    col[i] = 0
                for y in range(start, start + win):
                    for x in range(w):
                        va = a[y, x, c]
                        vb = b[y, x, c]
                        cx[x] += va
                        cy[x] += vb
                        cxx[x] += va * va
                        cyy[x] += vb * vb
                        cxy[x] += va * vb
                total = 0.0
                for r in range(start, stop):
                    if r > start:
                        # Slide the band down one row.
                        for x in range(w):
                            va = a[r - 1, x, c]
                            vb = b[r - 1, x, c]
                            cx[x] -= va
                            cy[x] -= vb
                            cxx[x] -= va * va
                            cyy[x] -= vb * vb
                            cxy[x] -= va * vb
                            va = a[r + win - 1, x, c]
                            vb = b[r + win - 1, x, c]
                            cx[x] += va
                            cy[x] += vb
                            cxx[x] += va * va
                            cyy[x] += vb * vb
                            cxy[x] += va * vb
                    # Window sums: exact integers, slid along the row.
                    sx = sy = sxx = syy = sxy = 0
                    for x in range(win):
                        sx += cx[x]
                        sy += cy[x]
                        sxx += cxx[x]
                        syy += cyy[x]
                        sxy += cxy[x]
                    for x in range(n_cols):
                        if x > 0:
                            sx += cx[x + win - 1] - cx[x - 1]
                            sy += cy[x + win - 1] - cy[x - 1]
                            sxx += cxx[x + win - 1] - cxx[x - 1]
                            syy += cyy[x + win - 1] - cyy[x - 1]
                            sxy += cxy[x + win - 1] - cxy[x - 1]
                        wx[x] = <double>sx
                        wy[x] = <double>sy
                        wxx[x] = <double>sxx
                        wyy[x] = <double>syy
                        wxy[x] = <double>sxy
                    # Each window's SSIM, into wx (its sum of x is read first).
                    for x in range(n_cols):
                        ux = wx[x] / n
                        uy = wy[x] / n
                        vx = cov_norm * (wxx[x] / n - ux * ux)
                        vy = cov_norm * (wyy[x] / n - uy * uy)
                        vxy = cov_norm * (wxy[x] / n - ux * uy)
                        wx[x] = ((2.0 * ux * uy + c1) * (2.0 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
                    # The row's sum in four running parts (one long chain of
                    # additions would wait on each): a fixed order, so the
                    # same sum on every run and thread count.
                    part0 = part1 = part2 = part3 = 0.0
                    x = 0
                    while x + 4 <= n_cols:
                        part0 += wx[x]
                        part1 += wx[x + 1]
                        part2 += wx[x + 2]
                        part3 += wx[x + 3]
                        x += 4
                    while x < n_cols:
                        part0 += wx[x]
                        x += 1
                    total += (part0 + part1) + (part2 + part3)
                sums_out[c] += total
    finally:
        free(col)
        free(sums)



# -- perceptual error ------------------------------------------------------------

# sRGB decoding (IEC 61966-2-1) of each 8-bit level, and the Oklab lightness
# of each gray level, times 100: what kmq._engine.colorspace.to_space gives
# (tests/test_metrics.py checks the two agree).
cdef double[256] _LINEAR
cdef double[256] _GRAY_L
cdef int _level
cdef double _c
for _level in range(256):
    _c = _level / 255.0
    _LINEAR[_level] = _c / 12.92 if _c <= 0.04045 else ((_c + 0.055) / 1.055) ** 2.4
    _GRAY_L[_level] = 100.0 * _LINEAR[_level] ** (1.0 / 3.0)


cdef union _Bits:
    double d
    uint64_t u


cdef inline double _cbrt(double x) noexcept nogil:
    """Cube root of x >= 0 to a relative 1e-14, about twice as fast as
    libm's cbrt: an estimate from the exponent bits (within 3.3 %), then two
    of Halley's steps (each takes the relative error e to about e^3)."""
    cdef _Bits bits
    cdef double y, y3
    if x <= 0.0:
        return 0.0
    bits.d = x
    bits.u = bits.u // 3 + <uint64_t>0x2A9F7893782DA1CE
    y = bits.d
    y3 = y * y * y
    y = y * (y3 + 2.0 * x) / (2.0 * y3 + x)
    y3 = y * y * y
    return y * (y3 + 2.0 * x) / (2.0 * y3 + x)


cdef inline void _oklab(const uint8_t* rgb, double* out) noexcept nogil:
    """sRGB bytes -> Oklab (Ottosson 2020, his published matrices) x 100,
    as kmq._engine.colorspace.to_space(..., "oklab")."""
    cdef double r = _LINEAR[rgb[0]], g = _LINEAR[rgb[1]], b = _LINEAR[rgb[2]]
    cdef double l = _cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b)
    cdef double m = _cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b)
    cdef double s = _cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b)
    out[0] = 100.0 * (0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s)
    out[1] = 100.0 * (1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s)
    out[2] = 100.0 * (0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s)


cdef inline Py_ssize_t _reflect(Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Index i folded into 0..n-1 by half-sample symmetric reflection
    (d c b a | a b c d | d c b a), as scipy.ndimage's mode "reflect"."""
    cdef Py_ssize_t period = 2 * n
    i = i % period
    if i < 0:
        i += period
    if i >= n:
        i = period - 1 - i
    return i


#: Entries of each image's colour cache in perceptual_rows (a power of 2):
#: a quantized image's K colours stay in it, so its pixels are converted
#: about once per colour; a photograph's mostly miss, at little cost.
cdef enum:
    _CACHE_BITS = 12
    _CACHE_SIZE = 1 << _CACHE_BITS


cdef inline const double* _cached_oklab(const uint8_t* rgb, uint32_t* keys, double* values) noexcept nogil:
    """Oklab x 100 of an sRGB colour through a direct-mapped cache: keys
    (_CACHE_SIZE,) hold the packed colour + 1 (0: empty), values
    (_CACHE_SIZE, 3) its coordinates."""
    cdef uint32_t key = ((<uint32_t>rgb[0] << 16) | (<uint32_t>rgb[1] << 8) | rgb[2]) + 1
    # Fibonacci hashing: the top bits of key times 2^32 / golden ratio.
    cdef uint32_t slot = (key * <uint32_t>2654435769) >> (32 - _CACHE_BITS)
    cdef double* out = values + 3 * slot
    if keys[slot] != key:
        _oklab(rgb, out)
        keys[slot] = key
    return out


cdef void _difference_row(
    const uint8_t[:, :, ::1] a, const uint8_t[:, :, ::1] b, Py_ssize_t y, int n_coords,
    uint32_t* keys_a, double* values_a, uint32_t* keys_b, double* values_b, double* out
) noexcept nogil:
    """Oklab(a[y]) - Oklab(b[y]), coordinate-major: out[c * W + x]; pixels
    equal in a and b are not converted. keys_*, values_*: the colour caches
    of a and of b (see _cached_oklab)."""
    cdef Py_ssize_t x, w = a.shape[1]
    cdef const uint8_t* ca
    cdef const uint8_t* cb
    cdef const double* pa
    cdef const double* pb
    if n_coords == 1:
        for x in range(w):
            out[x] = _GRAY_L[a[y, x, 0]] - _GRAY_L[b[y, x, 0]]
        return
    for x in range(w):
        ca = &a[y, x, 0]
        cb = &b[y, x, 0]
        if ca[0] == cb[0] and ca[1] == cb[1] and ca[2] == cb[2]:
            out[x] = 0.0
            out[w + x] = 0.0
            out[2 * w + x] = 0.0
            continue
        pa = _cached_oklab(ca, keys_a, values_a)
        pb = _cached_oklab(cb, keys_b, values_b)
        out[x] = pa[0] - pb[0]
        out[w + x] = pa[1] - pb[1]
        out[2 * w + x] = pa[2] - pb[2]


cdef void _blur_row(
    const double* row, Py_ssize_t w, const double* weights, Py_ssize_t radius, double* padded, double* out
) noexcept nogil:
    """out[x] = sum_j weights[j] row[reflect(x + j - radius)], x in 0..w-1;
    ``padded`` has room for w + 2 radius values."""
    cdef Py_ssize_t x, j
    cdef double total
    cdef double centre = weights[radius]
    if radius == 0:
        for x in range(w):
            out[x] = row[x] * centre
        return
    for x in range(w + 2 * radius):
        padded[x] = row[_reflect(x - radius, w)]
    for x in range(w):
        # The kernel is symmetric: one product per pair of taps.
        total = centre * padded[x + radius]
        for j in range(1, radius + 1):
            total = total + weights[radius + j] * (padded[x + radius - j] + padded[x + radius + j])
        out[x] = total


def perceptual_rows(
    const uint8_t[:, :, ::1] a,
    const uint8_t[:, :, ::1] b,
    const double[::1] weights_lightness,
    const double[::1] weights_chroma,
    Py_ssize_t start,
    Py_ssize_t stop,
    double[::1] sums_out,
):
    """Sum over rows ``start:stop`` of the length of the blurred Oklab
    difference of a and b.

    a, b: (H, W, C) uint8, C = 1 (gray: lightness only) or 3 (sRGB).
    weights_lightness, weights_chroma: odd-length symmetric kernels summing
    to 1 (2r + 1 taps each), applied along rows then along columns with
    half-sample symmetric reflection at the edges; the first blurs
    lightness, the second the two chroma coordinates. sums_out (1,)
    float64, OUT (added to): the sum over the pixels of rows start:stop of
    sqrt(dL^2 + da^2 + db^2), Oklab x 100 after the blur, so that the mean
    is ``sums_out[0] / (H * W)`` once every row range has been added.
    """
    cdef Py_ssize_t h = a.shape[0], w = a.shape[1]
    cdef int n_coords = 1 if a.shape[2] == 1 else 3
    cdef Py_ssize_t r_l = (weights_lightness.shape[0] - 1) // 2
    cdef Py_ssize_t r_c = (weights_chroma.shape[0] - 1) // 2
    cdef Py_ssize_t radius = r_l if n_coords == 1 else max(r_l, r_c)
    cdef Py_ssize_t n_slots = 2 * radius + 1
    cdef Py_ssize_t row_size = n_coords * w
    cdef Py_ssize_t y, v, x, j, slot, r, base = start - radius
    cdef int c
    cdef double total = 0.0, weight, weight2, d2
    cdef const double* kernel
    cdef const double* lo
    cdef const double* hi
    cdef const double* lo2
    cdef const double* hi2
    cdef double* col
    cdef double* ring = <double*>malloc(n_slots * row_size * sizeof(double))
    cdef double* diff = <double*>malloc(row_size * sizeof(double))
    cdef double* padded = <double*>malloc((w + 2 * radius) * sizeof(double))
    cdef double* column = <double*>malloc(row_size * sizeof(double))
    cdef uint32_t* keys = <uint32_t*>calloc(2 * _CACHE_SIZE, sizeof(uint32_t))
    cdef double* values = <double*>malloc(2 * 3 * _CACHE_SIZE * sizeof(double))
    cdef double* line
    try:
        # (free() of NULL is a no-op: the finally clause frees whatever was had.)
        if ring == NULL or diff == NULL or padded == NULL or column == NULL or keys == NULL or values == NULL:
            raise MemoryError()
        with nogil:
            # The ring holds the row-blurred difference of image rows
            # v - radius .. v + radius (reflected at the top and bottom),
            # row v in slot (v - base) % n_slots.
            for v in range(base, stop + radius):
                slot = (v - base) % n_slots
                _difference_row(
                    a, b, _reflect(v, h), n_coords,
                    keys, values, keys + _CACHE_SIZE, values + 3 * _CACHE_SIZE, diff,
                )
                for c in range(n_coords):
                    if c == 0:
                        _blur_row(diff, w, &weights_lightness[0], r_l, padded, ring + slot * row_size)
                    else:
                        _blur_row(diff + c * w, w, &weights_chroma[0], r_c, padded, ring + slot * row_size + c * w)
                y = v - radius  # the row whose column window is now complete
                if y < start:
                    continue
                for c in range(n_coords):
                    r = r_l if c == 0 else r_c
                    kernel = &weights_lightness[0] if c == 0 else &weights_chroma[0]
                    col = column + c * w
                    line = ring + ((y - base) % n_slots) * row_size + c * w
                    weight = kernel[r]
                    for x in range(w):
                        col[x] = weight * line[x]
                    # The kernel is symmetric: one product per pair of rows
                    # y - j, y + j (both in the ring: y - r >= base), and
                    # two pairs a pass over the row, so that the sums are
                    # read and written a quarter as often as one row a
                    # pass (at 9.8 MP: 239 ms -> 189 ms for the whole
                    # error). Blocks of columns kept in the cache were
                    # slower (200 ms).
                    j = 1
                    while j <= r:
                        lo = ring + ((y - j - base) % n_slots) * row_size + c * w
                        hi = ring + ((y + j - base) % n_slots) * row_size + c * w
                        weight = kernel[r + j]
                        if j < r:
                            lo2 = ring + ((y - j - 1 - base) % n_slots) * row_size + c * w
                            hi2 = ring + ((y + j + 1 - base) % n_slots) * row_size + c * w
                            weight2 = kernel[r + j + 1]
                            for x in range(w):
                                col[x] += weight * (lo[x] + hi[x]) + weight2 * (lo2[x] + hi2[x])
                            j += 2
                        else:
                            for x in range(w):
                                col[x] += weight * (lo[x] + hi[x])
                            j += 1
                for x in range(w):
                    d2 = column[x] * column[x]
                    for c in range(1, n_coords):
                        d2 = d2 + column[c * w + x] * column[c * w + x]
                    total += sqrt(d2)
        sums_out[0] += total
    finally:
        free(ring)
        free(diff)
        free(padded)
        free(column)
        free(keys)
        free(values)
