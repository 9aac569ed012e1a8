# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled loops of the working colour spaces (driven by ``colorspace.py``):
sRGB <-> Oklab / CIELAB of the distinct colours and of the palette, and the
exact nearest-entry search in float coordinates.

Spaces (``space`` argument): 0 = sRGB values as floats (0..255), 1 = Oklab
(Ottosson 2020) with L, a, b multiplied by 100, 2 = CIELAB (D65 white, sRGB
primaries), 3 = Oklab as 1 with a and b multiplied by ``CHROMA_WEIGHT``
more (a grey has the same lightness in 1 and 3). A colour with alpha is
placed where it is seen: its colour coordinates are those of the pixel
composited (in sRGB values, as browsers blend) over the mid-grey 127.5,
the mean of what it shows over black and over white, and one more
coordinate is alpha/255 times ``alpha_scale``, the half-spread between
those two composites (see colorspace.py). Hidden colour under transparent
pixels costs nothing: at alpha 0 every colour is the grey.

Output arrays are passed in and named ``*_out``; every loop runs without the
GIL.
"""

from libc.math cimport cbrt, pow, sqrt, rint
from libc.stdint cimport int32_t, uint8_t
from libc.stdlib cimport malloc

cdef double[256] _LINEAR
cdef int _i
for _i in range(256):
    _c = _i / 255.0
    _LINEAR[_i] = _c / 12.92 if _c <= 0.04045 else ((_c + 0.055) / 1.055) ** 2.4

#: The grey that colours with alpha are composited over (sRGB, 0..255).
DEF MID = 127.5

# The linear light of each colour level c composited over MID at each alpha
# a, 256 x 256, made on first use (to_space with alpha): a table read
# instead of a pow() a channel.
cdef double* _COMPOSITE_LINEAR = NULL


cdef inline double _linear(double v) noexcept nogil:
    """sRGB value 0..255 (any real) -> linear light."""
    v /= 255.0
    if v <= 0.04045:
        return v / 12.92
    return pow((v + 0.055) / 1.055, 2.4)


cdef inline double _composite(int value, int alpha) noexcept nogil:
    """sRGB value of level ``value`` at ``alpha`` (0..255) over MID."""
    return (value * alpha + (255 - alpha) * MID) / 255.0


cdef const double* _composite_table() except NULL:
    global _COMPOSITE_LINEAR
    cdef int a, v
    cdef double* table
    if _COMPOSITE_LINEAR == NULL:
        table = <double*>malloc(256 * 256 * sizeof(double))
        if table == NULL:
            raise MemoryError()
        for a in range(256):
            for v in range(256):
                table[a * 256 + v] = _linear(_composite(v, a))
        _COMPOSITE_LINEAR = table
    return _COMPOSITE_LINEAR


# CIELAB D65 reference white (the sRGB white point) and the CIE constants.
cdef double _XN = 0.95047, _YN = 1.0, _ZN = 1.08883
cdef double _DELTA = 6.0 / 29.0


cdef inline double _lab_f(double t) noexcept nogil:
    if t > _DELTA * _DELTA * _DELTA:
        return cbrt(t)
    return t / (3.0 * _DELTA * _DELTA) + 4.0 / 29.0


cdef inline double _lab_finv(double t) noexcept nogil:
    if t > _DELTA:
        return t * t * t
    return 3.0 * _DELTA * _DELTA * (t - 4.0 / 29.0)


cdef inline double _encode(double linear) noexcept nogil:
    """Linear light -> sRGB 0..255 (not rounded, not clipped)."""
    if linear <= 0.0031308:
        return 255.0 * 12.92 * linear
    return 255.0 * (1.055 * pow(linear, 1.0 / 2.4) - 0.055)


#: Space 3 is Oklab with a and b times this (kmq._engine.colorspace,
#: "oklab-chroma"): the working space of most Oklab fits.
cdef double _CHROMA = 1.25
CHROMA_WEIGHT = _CHROMA


cdef inline void _rgb_to_space(double r, double g, double b, int space, double* out) noexcept nogil:
    """Linear r, g, b -> the space's three coordinates."""
    cdef double l, m, s, x, y, z, fy
    if space == 1 or space == 3:
        l = cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b)
        m = cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b)
        s = cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b)
        out[0] = 100.0 * (0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s)
        out[1] = 100.0 * (1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s)
        out[2] = 100.0 * (0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s)
        if space == 3:
            out[1] *= _CHROMA
            out[2] *= _CHROMA
    else:
        x = 0.4124564 * r + 0.3575761 * g + 0.1804375 * b
        y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
        z = 0.0193339 * r + 0.1191920 * g + 0.9503041 * b
        fy = _lab_f(y / _YN)
        out[0] = 116.0 * fy - 16.0
        out[1] = 500.0 * (_lab_f(x / _XN) - fy)
        out[2] = 200.0 * (fy - _lab_f(z / _ZN))


cdef inline void _space_to_rgb(double c0, double c1, double c2, int space, double* out) noexcept nogil:
    """The space's coordinates -> sRGB 0..255 (not rounded, not clipped)."""
    cdef double l, m, s, x, y, z, fy, r, g, b
    if space == 3:
        c1 /= _CHROMA
        c2 /= _CHROMA
    if space == 1 or space == 3:
        c0 /= 100.0
        c1 /= 100.0
        c2 /= 100.0
        l = c0 + 0.3963377774 * c1 + 0.2158037573 * c2
        m = c0 - 0.1055613458 * c1 - 0.0638541728 * c2
        s = c0 - 0.0894841775 * c1 - 1.2914855480 * c2
        l = l * l * l
        m = m * m * m
        s = s * s * s
        r = 4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s
        g = -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s
        b = -0.0041960863 * l - 0.7034186147 * m + 1.7076147010 * s
    else:
        fy = (c0 + 16.0) / 116.0
        x = _XN * _lab_finv(fy + c1 / 500.0)
        y = _YN * _lab_finv(fy)
        z = _ZN * _lab_finv(fy - c2 / 200.0)
        r = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z
        g = -0.9692660 * x + 1.8760108 * y + 0.0415560 * z
        b = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z
    out[0] = _encode(r)
    out[1] = _encode(g)
    out[2] = _encode(b)


cdef inline double _gray_to_space(int value, int space) noexcept nogil:
    """Gray level -> lightness (the a, b of a gray are 0)."""
    if space == 0:
        return <double>value
    return _linear_to_lightness(_LINEAR[value], space)


cdef inline double _linear_to_lightness(double linear, int space) noexcept nogil:
    """Linear light of a gray -> its lightness in space 1, 2 or 3."""
    if space == 1 or space == 3:
        return 100.0 * cbrt(linear)
    return 116.0 * _lab_f(linear) - 16.0


cdef inline double _space_to_gray(double lightness, int space) noexcept nogil:
    cdef double t
    if space == 0:
        return lightness
    if space == 1 or space == 3:
        t = lightness / 100.0
        return _encode(t * t * t)
    return _encode(_lab_finv((lightness + 16.0) / 116.0))


cdef inline uint8_t _to_uint8(double v) noexcept nogil:
    v = rint(v)
    if v < 0.0:
        return 0
    if v > 255.0:
        return 255
    return <uint8_t>v


def to_space(
    const uint8_t[:, ::1] colors, int space, double alpha_scale, Py_ssize_t start, Py_ssize_t stop,
    double[:, ::1] points_out,
):
    """Distinct colours -> working-space points, rows [start, stop).

    colors (M, C) uint8, C in 1..4 (L, LA, RGB, RGBA); points_out (M, C)
    float64: lightness (C = 1, 2) or three colour coordinates (C = 3, 4);
    with alpha, those of the colour composited over the grey MID (127.5),
    then alpha/255 * alpha_scale. Each row on its own: ranges may run on
    threads at once."""
    cdef Py_ssize_t i
    cdef int channels = colors.shape[1]
    cdef int a8
    cdef const double* table = NULL
    cdef double[3] tmp
    if channels == 2 or channels == 4:
        table = _composite_table()
    with nogil:
        for i in range(start, stop):
            if channels <= 2:
                if channels == 1:
                    points_out[i, 0] = _gray_to_space(colors[i, 0], space)
                    continue
                a8 = colors[i, 1]
                if space == 0:
                    points_out[i, 0] = _composite(colors[i, 0], a8)
                else:
                    points_out[i, 0] = _linear_to_lightness(table[a8 * 256 + colors[i, 0]], space)
                points_out[i, 1] = a8 / 255.0 * alpha_scale
                continue
            if channels == 4:
                a8 = colors[i, 3]
                if space == 0:
                    tmp[0] = _composite(colors[i, 0], a8)
                    tmp[1] = _composite(colors[i, 1], a8)
                    tmp[2] = _composite(colors[i, 2], a8)
                else:
                    _rgb_to_space(table[a8 * 256 + colors[i, 0]], table[a8 * 256 + colors[i, 1]], table[a8 * 256 + colors[i, 2]], space, tmp)
                points_out[i, 3] = a8 / 255.0 * alpha_scale
            elif space == 0:
                tmp[0] = colors[i, 0]
                tmp[1] = colors[i, 1]
                tmp[2] = colors[i, 2]
            else:
                _rgb_to_space(_LINEAR[colors[i, 0]], _LINEAR[colors[i, 1]], _LINEAR[colors[i, 2]], space, tmp)
            points_out[i, 0] = tmp[0]
            points_out[i, 1] = tmp[1]
            points_out[i, 2] = tmp[2]


def from_space(const double[:, ::1] points, int space, double alpha_scale, uint8_t[:, ::1] colors_out):
    """Inverse of :func:`to_space`, rounded to the nearest uint8 and clipped
    to 0..255 (a point outside the sRGB gamut gets the clipped colour).
    A point with alpha 0 gets colour 0."""
    cdef Py_ssize_t i, n = points.shape[0]
    cdef int c, channels = colors_out.shape[1]
    cdef int n_colour = channels - 1 if channels == 2 or channels == 4 else channels
    cdef double alpha
    cdef uint8_t a8
    cdef double[3] tmp
    with nogil:
        for i in range(n):
            alpha = 1.0
            if channels == 2 or channels == 4:
                a8 = _to_uint8(255.0 * points[i, channels - 1] / alpha_scale)
                colors_out[i, channels - 1] = a8
                if a8 == 0:
                    for c in range(channels - 1):
                        colors_out[i, c] = 0
                    continue
                alpha = a8 / 255.0
            if channels <= 2:
                tmp[0] = _space_to_gray(points[i, 0], space)
            elif space == 0:
                tmp[0] = points[i, 0]
                tmp[1] = points[i, 1]
                tmp[2] = points[i, 2]
            else:
                _space_to_rgb(points[i, 0], points[i, 1], points[i, 2], space, tmp)
            for c in range(n_colour):
                if alpha < 1.0:
                    # Undo the composite at the stored alpha: what is rebuilt
                    # is the colour that, at that alpha, shows this point.
                    tmp[c] = (tmp[c] - (1.0 - alpha) * MID) / alpha
                colors_out[i, c] = _to_uint8(tmp[c])


cdef inline double _dist2(const double* x, const double* y, int d) noexcept nogil:
    # Raw pointers: a memoryview argument would cost two atomic reference
    # count updates per call.
    cdef double s = 0.0, t
    cdef int c
    for c in range(d):
        t = x[c] - y[c]
        s += t * t
    return s


def nearest(
    const double[:, ::1] points,
    const double[:, ::1] palette,
    const int32_t[::1] guess,
    const double[:, ::1] pal_dist,
    const int32_t[:, ::1] order,
    const uint8_t[::1] allowed,
    Py_ssize_t start,
    Py_ssize_t stop,
    int32_t[::1] labels_out,
    double[::1] dist2_out,
):
    """Nearest allowed palette entry of each point (squared Euclidean
    distance in the working space), exact, ties to the lowest index.

    points (M, D), palette (K, D) float64; guess (M,) int32, any entry (a
    likely answer: the search starts there); pal_dist (K, K) Euclidean
    distances between entries and order (K, K) int32, each row the entries
    by increasing distance from that row's entry (pass order of shape
    (0, 0) for a brute-force search); allowed (K,) uint8, at least one
    nonzero. Rows start..stop-1 only; writes labels_out (M,) int32 and
    dist2_out (M,) float64.

    Sort-means: by the triangle inequality an entry j is at least
    pal_dist[g, j] - d(x, g) from x, so once that exceeds the best distance
    found no later entry of the row can be nearer. A tiny slack keeps
    rounding from skipping an entry at an equal distance."""
    cdef Py_ssize_t i, t, j, g, best, k = palette.shape[0]
    cdef int d = points.shape[1]
    cdef double dg, best_d2, best_d, dj
    cdef bint brute = order.shape[0] == 0
    with nogil:
        for i in range(start, stop):
            best = -1
            best_d2 = 1e300
            if brute:
                for j in range(k):
                    if allowed[j]:
                        dj = _dist2(&points[i, 0], &palette[j, 0], d)
                        if dj < best_d2:
                            best_d2 = dj
                            best = j
            else:
                g = guess[i]
                dg = sqrt(_dist2(&points[i, 0], &palette[g, 0], d))
                best_d = 1e300
                for t in range(k):
                    j = order[g, t]
                    if pal_dist[g, j] - dg > best_d * (1.0 + 1e-12) + 1e-9:
                        break
                    if not allowed[j]:
                        continue
                    dj = _dist2(&points[i, 0], &palette[j, 0], d)
                    if dj < best_d2 or (dj == best_d2 and j < best):
                        best_d2 = dj
                        best = j
                        best_d = sqrt(dj)
            labels_out[i] = <int32_t>best
            dist2_out[i] = best_d2
