# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled loops of ``_palette_order``: label counts, neighbour
co-occurrence counts and relabelling, over 1- or 2-byte labels in place."""

from libc.stdint cimport int64_t, uint8_t, uint16_t

ctypedef fused label_t:
    uint8_t
    uint16_t


def cooccurrence(const label_t[:, ::1] labels, int64_t[:, ::1] counts_out):
    """Add to ``counts_out`` (K, K) int64 how often entry i is the left or
    upper neighbour of entry j, over ``labels`` (H, W) uint8 or uint16 (all
    < K). O(K^2) memory whatever the image size."""
    cdef Py_ssize_t h = labels.shape[0], w = labels.shape[1], y, x
    cdef label_t a
    with nogil:
        for y in range(h):
            for x in range(w):
                a = labels[y, x]
                if x + 1 < w:
                    counts_out[a, labels[y, x + 1]] += 1
                if y + 1 < h:
                    counts_out[a, labels[y + 1, x]] += 1


def relabel(const label_t[::1] table, const label_t[::1] labels, label_t[::1] out):
    """``out[i] = table[labels[i]]`` for labels (N,) uint8 or uint16 and a
    table (K,) of the same dtype: NumPy's ``table[labels]`` would first turn
    the labels into an 8-byte index a pixel (0.8 GB at 100 MP)."""
    cdef Py_ssize_t i, n = labels.shape[0]
    with nogil:
        for i in range(n):
            out[i] = table[labels[i]]


def label_counts(const label_t[::1] labels, int64_t[::1] counts_out):
    """Add to ``counts_out`` (K,) how many of ``labels`` (N,) hold each
    entry (np.bincount would first copy them to 8-byte integers)."""
    cdef Py_ssize_t i, n = labels.shape[0]
    with nogil:
        for i in range(n):
            counts_out[labels[i]] += 1
