# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled loop of the nearest-palette search (driven by ``remap.py``)."""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t


def nearest_palette_sorted(
    const uint8_t[:, ::1] colors, const uint8_t[:, ::1] palette, const int32_t[::1] guess,
    const int64_t[:, ::1] pal_dist2, const int32_t[:, ::1] order, Py_ssize_t start, Py_ssize_t stop,
    int32_t[::1] labels_out, int64_t[::1] dist2_out,
):
    """Exact nearest palette entry of colours ``start:stop``, integer arithmetic.

    Parameters
    ----------
    colors : (M, C) uint8; palette : (K, C) uint8
    guess : (M,) int32 — where each search starts (any valid index).
    pal_dist2 : (K, K) int64 — squared distances between palette entries.
    order : (K, K) int32 — each entry's neighbours nearest first, itself
        first (see ``_kmeans.center_geometry``).
    labels_out : (M,) int32, OUT; dist2_out : (M,) int64, OUT.

    Sort-means stopping rule in squared integers: a neighbour c of the start
    g with |g - c|^2 > 4 |x - g|^2 is strictly farther from x than g, hence
    so are all later ones. Ties go to the lowest index.
    """
    cdef Py_ssize_t k = palette.shape[0], channels = palette.shape[1]
    cdef Py_ssize_t i, r, c, g, j, best
    cdef int64_t dg, dd, t, best2, limit
    with nogil:
        for i in range(start, stop):
            g = guess[i]
            dg = 0
            for c in range(channels):
                t = <int64_t>colors[i, c] - <int64_t>palette[g, c]
                dg += t * t
            best = g
            best2 = dg
            limit = 4 * dg
            for r in range(1, k):
                j = order[g, r]
                if pal_dist2[g, j] > limit:
                    break
                dd = 0
                for c in range(channels):
                    t = <int64_t>colors[i, c] - <int64_t>palette[j, c]
                    dd += t * t
                if dd < best2 or (dd == best2 and j < best):
                    best = j
                    best2 = dd
            labels_out[i] = <int32_t>best
            dist2_out[i] = best2


ctypedef fused label_t:
    uint8_t
    uint16_t


def lookup(const uint8_t[:, ::1] palette, const label_t[::1] labels, uint8_t[:, ::1] out):
    """Decompression: ``out[i] = palette[labels[i]]``.

    palette (K, C) uint8; labels (N,) uint8 or uint16, all < K (checked by
    the caller); out (N, C) uint8. One pass, 5-10x faster than NumPy's
    fancy index for three channels.
    """
    cdef Py_ssize_t i, c, n = labels.shape[0], channels = palette.shape[1]
    cdef const uint8_t* entry
    with nogil:
        if channels == 3:
            for i in range(n):
                entry = &palette[labels[i], 0]
                out[i, 0] = entry[0]
                out[i, 1] = entry[1]
                out[i, 2] = entry[2]
        else:
            for i in range(n):
                for c in range(channels):
                    out[i, c] = palette[labels[i], c]
