# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled loops of the colour histogram (driven by ``histogram.py``) and of
its coarse bins (driven by ``kmeans.coarse_histogram``).

Output arrays are passed in and named ``*_out`` (``*_inout`` when read too);
every loop runs without the GIL, so callers may split work over threads.
"""

import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc

ctypedef fused gathered_t:
    uint8_t
    uint16_t
    int32_t
    int64_t


cdef inline Py_ssize_t _slot(uint32_t key, int shift) noexcept nogil:
    """A key's first slot in a hash table of 2**(32 - shift) slots:
    multiplicative hashing (Knuth), the top bits of key * 2654435761."""
    return <Py_ssize_t>((((<uint64_t>key) * 2654435761ULL) & 0xFFFFFFFFULL) >> shift)


def pack_rgb(const uint8_t[:, ::1] pixels, uint32_t[::1] keys_out):
    """keys_out[i] = pixels[i, 0] << 16 | pixels[i, 1] << 8 | pixels[i, 2];
    pixels (N, 3) uint8, keys_out (N,) uint32. One pass, no temporaries."""
    cdef Py_ssize_t i, n = pixels.shape[0]
    with nogil:
        for i in range(n):
            keys_out[i] = (<uint32_t>pixels[i, 0] << 16) | (<uint32_t>pixels[i, 1] << 8) | <uint32_t>pixels[i, 2]


def count_dense(const uint32_t[::1] keys, int32_t[::1] counts_inout):
    """counts_inout[key] += 1 for every key; counts_inout (T,) int32 zeroed,
    T > max(keys). For many pixels: the distinct keys are then the nonzero
    entries, already in order."""
    cdef Py_ssize_t i, n = keys.shape[0]
    with nogil:
        for i in range(n):
            counts_inout[keys[i]] += 1


def dense_entries(const int32_t[::1] table, int channels):
    """The distinct keys counted by :func:`count_dense`, in key order.

    table (T,) int32 of counts; channels: C, the bytes of a key.
    Returns keys (M,) uint32, counts (M,) int64 and colours (M, C) uint8
    (the keys unpacked, channel 0 in the most significant byte).
    """
    cdef Py_ssize_t t, j, n = 0, size = table.shape[0]
    cdef int c
    with nogil:
        for t in range(size):
            if table[t] != 0:
                n += 1
    keys_array = np.empty(n, dtype=np.uint32)
    counts_array = np.empty(n, dtype=np.int64)
    colors_array = np.empty((n, channels), dtype=np.uint8)
    cdef uint32_t[::1] keys = keys_array
    cdef int64_t[::1] counts = counts_array
    cdef uint8_t[:, ::1] colors = colors_array
    cdef int32_t v
    with nogil:
        j = 0
        for t in range(size):
            v = table[t]
            if v != 0:
                keys[j] = <uint32_t>t
                counts[j] = v
                for c in range(channels):
                    colors[j, c] = (t >> (8 * (channels - 1 - c))) & 0xFF
                j += 1
    return keys_array, counts_array, colors_array


#: Keys of up to 24 bits are split into a bucket (the top 12 bits) and a
#: value inside it (the low 12): see :func:`count_keys_bucketed`.
DEF _LOW_BITS = 12
DEF _LOW_SIZE = 4096


def count_keys_bucketed(const uint32_t[::1] keys, uint16_t[::1] low_scratch, uint32_t[::1] keys_out, int64_t[::1] counts_out):
    """Distinct values of ``keys`` (all < 2**24) in increasing order and how
    often each occurs: what ``np.unique(keys, return_counts=True)`` gives,
    without sorting.

    One counting pass over the buckets (the top 12 bits of each key), one
    pass dealing each key's low 12 bits into its bucket's run of
    ``low_scratch``, then each bucket's values counted in a 4096-entry
    table that stays in the L1 cache and read out in order. Three streaming
    passes, where a sort of millions of keys makes ~22 (2.1-2.5 MP: 0.03-
    0.08 s, against 0.11-0.18 s for np.unique on the same machine).

    Parameters
    ----------
    keys : (N,) uint32, each < 2**24
    low_scratch : (N,) uint16, scratch
    keys_out : (N,) uint32, OUT — the distinct keys in ``keys_out[:m]``
    counts_out : (N,) int64, OUT — their counts in ``counts_out[:m]``

    Returns
    -------
    m : int — number of distinct keys.
    """
    cdef Py_ssize_t n = keys.shape[0]
    cdef Py_ssize_t i, j, b, v, lo, hi, m = 0
    cdef Py_ssize_t* run = <Py_ssize_t*>calloc(_LOW_SIZE + 1, sizeof(Py_ssize_t))
    cdef Py_ssize_t* fill = <Py_ssize_t*>malloc(_LOW_SIZE * sizeof(Py_ssize_t))
    cdef int64_t* tally = <int64_t*>calloc(_LOW_SIZE, sizeof(int64_t))
    cdef uint32_t key
    if run == NULL or fill == NULL or tally == NULL:
        free(run)
        free(fill)
        free(tally)
        raise MemoryError()
    with nogil:
        for i in range(n):
            # (masked: a key above 2**24 would be counted wrongly, but
            # never written outside the tables)
            run[((keys[i] >> _LOW_BITS) & (_LOW_SIZE - 1)) + 1] += 1
        for b in range(_LOW_SIZE):
            fill[b] = run[b]
            run[b + 1] += run[b]
        for i in range(n):
            key = keys[i]
            b = (key >> _LOW_BITS) & (_LOW_SIZE - 1)
            low_scratch[fill[b]] = <uint16_t>(key & (_LOW_SIZE - 1))
            fill[b] += 1
        for b in range(_LOW_SIZE):
            if run[b] == run[b + 1]:
                continue
            # Read out only the span of values the bucket holds: a bucket
            # of a few keys does not pay for a scan of all 4096 entries.
            lo = _LOW_SIZE
            hi = -1
            for j in range(run[b], run[b + 1]):
                v = low_scratch[j]
                tally[v] += 1
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
            for v in range(lo, hi + 1):
                if tally[v] != 0:
                    keys_out[m] = <uint32_t>((b << _LOW_BITS) | v)
                    counts_out[m] = tally[v]
                    tally[v] = 0
                    m += 1
    free(run)
    free(fill)
    free(tally)
    return m


def count_keys_radix(const uint32_t[::1] keys, uint32_t[::1] scratch_a, uint32_t[::1] scratch_b, uint32_t[::1] keys_out, int64_t[::1] counts_out):
    """Distinct values of ``keys`` (any uint32) in increasing order and how
    often each occurs, as ``np.unique(keys, return_counts=True)``: for
    4-channel keys, whose 2**32 values no table can hold.

    A least-significant-digit radix sort, a byte a pass (the four digits'
    counts taken in one first pass; a digit that all keys share is not
    dealt: the alpha byte of an opaque image, say), then one pass counting
    the runs. At most five streaming passes, where numpy's sort of millions
    of keys makes ~22.

    Parameters
    ----------
    keys : (N,) uint32
    scratch_a, scratch_b : (N,) uint32, scratch
    keys_out, counts_out, and the number of distinct keys returned: as
    :func:`count_keys_bucketed`.
    """
    cdef Py_ssize_t n = keys.shape[0]
    cdef Py_ssize_t i, b, m = 0, run_start
    cdef int digit, shift
    cdef Py_ssize_t* tally = <Py_ssize_t*>calloc(4 * 256, sizeof(Py_ssize_t))
    cdef Py_ssize_t* fill
    cdef const uint32_t* src = &keys[0] if n > 0 else NULL
    cdef uint32_t* dst
    cdef uint32_t* a
    cdef uint32_t* b_buf
    cdef uint32_t key
    if tally == NULL:
        raise MemoryError()
    if n == 0:
        free(tally)
        return 0
    a = &scratch_a[0]
    b_buf = &scratch_b[0]
    with nogil:
        for i in range(n):
            key = src[i]
            tally[key & 0xFF] += 1
            tally[256 + ((key >> 8) & 0xFF)] += 1
            tally[512 + ((key >> 16) & 0xFF)] += 1
            tally[768 + (key >> 24)] += 1
        for digit in range(4):
            fill = tally + 256 * digit
            shift = 8 * digit
            if fill[(src[0] >> shift) & 0xFF] == n:
                continue  # every key has this digit: already in order
            # Counts -> each bucket's first position.
            run_start = 0
            for b in range(256):
                i = fill[b]
                fill[b] = run_start
                run_start += i
            # keys -> a, then a <-> b: the input is never written.
            dst = b_buf if src == a else a
            for i in range(n):
                key = src[i]
                b = (key >> shift) & 0xFF
                dst[fill[b]] = key
                fill[b] += 1
            src = dst
        run_start = 0
        for i in range(1, n + 1):
            if i == n or src[i] != src[run_start]:
                keys_out[m] = src[run_start]
                counts_out[m] = i - run_start
                m += 1
                run_start = i
    free(tally)
    return m


def count_keys_hashed(
    const uint32_t[::1] keys,
    uint32_t[::1] slot_keys,
    int32_t[::1] slot_index,
    int shift,
    uint32_t[::1] distinct_out,
    int64_t[::1] counts_out,
):
    """Distinct values of ``keys`` and how often each occurs, in one pass
    through an open-addressing hash table: for images with few pixels a
    table of ~2N slots stays in cache, where a 2**24-entry one would fault
    in thousands of pages (see :func:`count_dense` for many pixels).

    Parameters
    ----------
    keys : (N,) uint32, all < 0xFFFFFFFF
    slot_keys : (S,) uint32 filled with 0xFFFFFFFF; slot_index : (S,) int32
        S = 2**(32 - shift) >= 2 N. Multiplicative hashing (Knuth), linear
        probing.
    distinct_out : (N,) uint32, OUT — distinct keys in order of first
        occurrence, in ``distinct_out[:m]``.
    counts_out : (N,) int64, zero on entry, OUT — ``counts_out[:m]``.

    Returns
    -------
    m : int — number of distinct keys.
    """
    cdef Py_ssize_t mask = slot_keys.shape[0] - 1
    cdef Py_ssize_t i, s, m = 0, n = keys.shape[0]
    cdef uint32_t key, k
    with nogil:
        for i in range(n):
            key = keys[i]
            s = _slot(key, shift)
            while True:
                k = slot_keys[s]
                if k == key:
                    counts_out[slot_index[s]] += 1
                    break
                if k == 0xFFFFFFFFU:
                    slot_keys[s] = key
                    slot_index[s] = <int32_t>m
                    distinct_out[m] = key
                    counts_out[m] += 1
                    m += 1
                    break
                s = (s + 1) & mask
    return m


def gather(const gathered_t[::1] table, const uint32_t[::1] keys, gathered_t[::1] out):
    """``out[i] = table[keys[i]]`` (a NumPy fancy index without its intp
    temporary of N indices)."""
    cdef Py_ssize_t i, n = keys.shape[0]
    with nogil:
        for i in range(n):
            out[i] = table[keys[i]]


cdef inline Py_ssize_t _bin_key(const uint8_t[:, ::1] colors, Py_ssize_t i, int channels, int bits, int shift) noexcept nogil:
    """The bin of colour i: the top ``bits`` bits of each channel, channel 0
    most significant."""
    cdef Py_ssize_t key = 0
    cdef int c
    for c in range(channels):
        key = (key << bits) | (colors[i, c] >> shift)
    return key


cdef inline Py_ssize_t _popcount(uint64_t v) noexcept nogil:
    # (SWAR: portable; the compiler turns it into popcnt where it can.)
    v = v - ((v >> 1) & 0x5555555555555555ULL)
    v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL)
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0FULL
    return <Py_ssize_t>((v * 0x0101010101010101ULL) >> 56)


def number_bins(const uint8_t[:, ::1] colors, int bits, uint64_t[::1] occupied_inout, int32_t[::1] rank_out):
    """Mark the bins of ``bits`` bits per channel that hold a colour and
    number them in key order.

    colors (M, C) uint8; occupied_inout (ceil(2**(bits * C) / 64),) uint64,
    zeroed: on return, bit t says whether bin t holds a colour; rank_out
    (same length) int32: the number of occupied bins before each word. A
    bin's row is then its word's rank plus the set bits below it in the
    word (:func:`sum_bins`). A bit a bin: 2 MiB for the 2**24 bins of
    4 channels at 6 bits, where a table of rows took 64 MiB to fault in and
    scan. Returns the number of occupied bins.
    """
    cdef int shift = 8 - bits
    cdef Py_ssize_t i, t, key, n = colors.shape[0]
    cdef int channels = colors.shape[1]
    cdef int32_t n_bins = 0
    with nogil:
        for i in range(n):
            key = _bin_key(colors, i, channels, bits, shift)
            occupied_inout[key >> 6] |= (<uint64_t>1) << (key & 63)
        for t in range(occupied_inout.shape[0]):
            rank_out[t] = n_bins
            n_bins += <int32_t>_popcount(occupied_inout[t])
    return n_bins


def sum_points_by_bin(
    const double[:, ::1] points,
    const double[::1] weights,
    const int64_t[::1] bin_of_point,
    double[:, ::1] sums_out,
):
    """sums_out[b, c] += weights[i] * points[i, c] for every point i of bin
    b = bin_of_point[i], in increasing i: the sums of ``np.bincount`` (same
    order, same products) in one pass instead of one per column.

    points (M, D) float64; weights (M,) float64; bin_of_point (M,) int64;
    sums_out (B, D) float64, zeroed.
    """
    cdef Py_ssize_t i, b, c, n = points.shape[0], d = points.shape[1]
    cdef double w
    with nogil:
        for i in range(n):
            b = bin_of_point[i]
            w = weights[i]
            for c in range(d):
                sums_out[b, c] += w * points[i, c]


def sum_bins(
    const uint8_t[:, ::1] colors,
    const int64_t[::1] counts,
    int bits,
    const uint64_t[::1] occupied,
    const int32_t[::1] rank,
    int64_t[::1] bin_of_color_out,
    double[:, ::1] sums_out,
    double[::1] weights_out,
):
    """Row of each colour's bin (numbered by :func:`number_bins`) and, per
    bin, the pixel count and the count-weighted sum of its colours.

    colors (M, C) uint8; counts (M,) int64; occupied, rank as left by
    :func:`number_bins` -> bin_of_color_out (M,) int64; sums_out (B, C)
    float64 and weights_out (B,) float64, zeroed. Sums of integers: exact.
    """
    cdef int shift = 8 - bits
    cdef Py_ssize_t i, key, b, n = colors.shape[0]
    cdef int c, channels = colors.shape[1]
    cdef double w
    with nogil:
        for i in range(n):
            key = _bin_key(colors, i, channels, bits, shift)
            b = rank[key >> 6] + _popcount(occupied[key >> 6] & (((<uint64_t>1) << (key & 63)) - 1))
            bin_of_color_out[i] = b
            w = <double>counts[i]
            weights_out[b] += w
            for c in range(channels):
                sums_out[b, c] += w * colors[i, c]


def hashed_counts(
    const uint32_t[::1] sorted_keys,
    const uint32_t[::1] slot_keys,
    const int32_t[::1] slot_index,
    int shift,
    const int64_t[::1] counts_by_first,
    int64_t[::1] counts_out,
):
    """The counts of :func:`count_keys_hashed` in the order of
    ``sorted_keys`` (its distinct keys, sorted): each key is found again in
    the hash table, which is cheaper than an argsort of the keys.

    sorted_keys (M,) uint32; slot_keys, slot_index, shift: the table as
    left by :func:`count_keys_hashed`; counts_by_first (N,) int64: its
    ``counts_out``; counts_out (M,) int64, OUT.
    """
    cdef Py_ssize_t mask = slot_keys.shape[0] - 1
    cdef Py_ssize_t i, s, m = sorted_keys.shape[0]
    cdef uint32_t key
    with nogil:
        for i in range(m):
            key = sorted_keys[i]
            s = _slot(key, shift)
            while slot_keys[s] != key:
                s = (s + 1) & mask
            counts_out[i] = counts_by_first[slot_index[s]]


def index_keys(const uint32_t[::1] keys, uint32_t[::1] slot_keys, int32_t[::1] slot_index, int shift):
    """Put each of the distinct ``keys`` (M,) uint32 (any value, 0xFFFFFFFF
    too) into an open-addressing hash table with its row: slot_keys (S,)
    uint32 and slot_index (S,) int32 filled with -1 (empty), S =
    2**(32 - shift) >= 2 M; hashing as :func:`count_keys_hashed`'s."""
    cdef Py_ssize_t mask = slot_keys.shape[0] - 1
    cdef Py_ssize_t i, s, m = keys.shape[0]
    cdef uint32_t key
    with nogil:
        for i in range(m):
            key = keys[i]
            s = _slot(key, shift)
            while slot_index[s] >= 0 and slot_keys[s] != key:
                s = (s + 1) & mask
            slot_keys[s] = key
            slot_index[s] = <int32_t>i


def find_keys(
    const uint32_t[::1] pixel_keys,
    const uint32_t[::1] slot_keys,
    const int32_t[::1] slot_index,
    int shift,
    Py_ssize_t start,
    Py_ssize_t stop,
    int32_t[::1] rows_out,
):
    """rows_out[i] = the row given to pixel_keys[i] by :func:`index_keys`
    (-1 if it is not there), for i in [start, stop): pixel_keys (N,)
    uint32, rows_out (N,) int32. Read-only on the table: ranges may run on
    threads at once."""
    cdef Py_ssize_t mask = slot_keys.shape[0] - 1
    cdef Py_ssize_t i, s
    cdef uint32_t key
    cdef int32_t row
    with nogil:
        for i in range(start, stop):
            key = pixel_keys[i]
            s = _slot(key, shift)
            while True:
                row = slot_index[s]
                if row < 0 or slot_keys[s] == key:
                    break
                s = (s + 1) & mask
            rows_out[i] = row
