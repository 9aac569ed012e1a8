"""Stage 2 of the pipeline: the colour histogram.

k-means on the distinct colours weighted by their pixel counts minimises
exactly the same objective as k-means on the pixels, and a photograph has
far fewer distinct colours than pixels. Mapping an image to a palette is
one nearest-palette search per distinct colour plus one table lookup per
pixel (:meth:`ColorHistogram.lookup`, :meth:`ColorHistogram.rows`).

Colours are packed into one unsigned integer key per pixel (channel 0 in the
most significant byte). For up to 3 channels the key space is at most 2**24,
small enough for a dense table indexed by key: counting many pixels is one
pass over them (``_histogram.count_dense``), the distinct colours come out of
the table in key order. Few pixels are counted in a small hash table
instead (``_histogram.count_keys_hashed``), which stays in cache; between
the two, by bucket of the top 12 bits (``_histogram.count_keys_bucketed``:
three streaming passes, no sort). 4-channel keys are sorted by a radix
sort, a byte a pass (``_histogram.count_keys_radix``). Mapping
pixels back to their colours is one gather from a dense table for 1 and 2
channels, and through a hash table of the distinct keys for 3 and 4
(``_histogram.find_keys``): a 2**24-entry table costs more to fault in
than the hashed search of a photograph's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _histogram

__all__ = ["ColorHistogram", "pack_colors", "unpack_keys", "color_histogram"]

#: Largest key space mapped with a dense table (1 and 2 channels); wider
#: keys are mapped through a hash table of the distinct keys.
_DENSE_LOOKUP_MAX_KEYS = 1 << 16
#: Value types :func:`_histogram.gather` spreads without NumPy's intp copy
#: of the indices.
_GATHERED = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.int32), np.dtype(np.int64))
#: Hash tables up to 2**this slots; more pixels than half that are counted
#: in a dense table, which is then cheaper than hashing (measured: 393k
#: pixels 2.5 ms hashed against 7-11 ms dense; 12 M pixels, dense wins).
_HASH_MAX_BITS = 22
#: ... and up to this many pixels of three channels counted by bucket
#: (``_histogram.count_keys_bucketed``), more in a dense table: its 64 MiB
#: are faulted in and scanned whatever the image. Bucket counting replaced
#: numpy's sort (np.unique), whose speed varies from machine to machine:
#: on the 2-core AMD EPYC VM of docs/benchmarks.md, 2.1-2.5 MP photographs
#: took 30-77 ms by bucket against 114-179 ms sorted, 9.8 MP 76-142 ms
#: against 0.69 s (an earlier run had recorded 15-35 ms sorted at 2.5 MP).
_BUCKET_MAX_PIXELS = 1 << 24


def pack_colors(pixels: np.ndarray) -> np.ndarray:
    """Pack colours into integer keys.

    Parameters
    ----------
    pixels : ndarray, shape (N, C), uint8
        C in 1..4.

    Returns
    -------
    keys : ndarray, shape (N,), uint32
        ``sum(pixels[:, c] << 8 * (C - 1 - c))``.
    """
    n, channels = pixels.shape
    if channels == 1:
        return pixels[:, 0].astype(np.uint32)
    # A contiguous view of each row as one big-endian integer is the
    # cheapest pack: no per-channel shifts and adds over N pixels.
    if channels == 4:
        return np.ascontiguousarray(pixels).view(">u4").reshape(n).astype(np.uint32)
    if channels == 3:

        keys = np.empty(n, dtype=np.uint32)
        _histogram.pack_rgb(np.ascontiguousarray(pixels), keys)
        return keys
    if channels == 2:
        return np.ascontiguousarray(pixels).view(">u2").reshape(n).astype(np.uint32)
    raise ValueError(f"pixels must have 1 to 4 channels, got {channels}")


def unpack_keys(keys: np.ndarray, channels: int) -> np.ndarray:
    """Inverse of :func:`pack_colors`: keys (M,) -> colours (M, C) uint8."""
    shifts = 8 * np.arange(channels - 1, -1, -1, dtype=np.uint32)
    return ((keys[:, None] >> shifts) & 0xFF).astype(np.uint8)


@dataclass(frozen=True)
class ColorHistogram:
    """The distinct colours of an image with their pixel counts.

    Attributes
    ----------
    colors : ndarray, shape (M, C), uint8
        Distinct colours, in increasing key order.
    counts : ndarray, shape (M,), int64
        Pixels of each colour; sums to N.
    keys : ndarray, shape (M,), uint32
        Packed colours (see :func:`pack_colors`), increasing.
    """

    colors: np.ndarray
    counts: np.ndarray
    keys: np.ndarray

    @property
    def n_colors(self) -> int:
        return len(self.counts)

    def lookup(self, values: np.ndarray, pixel_keys: np.ndarray) -> np.ndarray:
        """Spread one value per distinct colour to every pixel.

        Parameters
        ----------
        values : ndarray, shape (M,)
            One value per distinct colour (e.g. its palette index).
        pixel_keys : ndarray, shape (N,), uint32
            Packed colours of the pixels; every key must be in ``self.keys``.

        Returns
        -------
        ndarray, shape (N,), dtype of ``values``
        """
        top = int(self.keys[-1]) + 1
        if top <= _DENSE_LOOKUP_MAX_KEYS and values.dtype in _GATHERED:
            # A small key space (grey, grey + alpha): a dense table maps in
            # one gather and stays in cache.
            table = np.zeros(top, dtype=values.dtype)
            table[self.keys] = values
            out = np.empty(len(pixel_keys), dtype=values.dtype)
            _histogram.gather(table, np.ascontiguousarray(pixel_keys), out)
            return out
        rows = self.rows(pixel_keys)
        if values.dtype in _GATHERED:
            out = np.empty(len(rows), dtype=values.dtype)
            _histogram.gather(np.ascontiguousarray(values), rows.view(np.uint32), out)
            return out
        return values[rows]

    def rows(self, pixel_keys: np.ndarray) -> np.ndarray:
        """Each pixel's row in the histogram.

        Parameters
        ----------
        pixel_keys : ndarray, shape (N,), uint32
            Packed colours of the pixels; every key must be in ``self.keys``.

        Returns
        -------
        ndarray, shape (N,), int32

        Raises
        ------
        ValueError
            If a key is not in the histogram.
        """
        pixel_keys = np.ascontiguousarray(pixel_keys, dtype=np.uint32)
        top = int(self.keys[-1]) + 1
        if top <= _DENSE_LOOKUP_MAX_KEYS:
            if len(pixel_keys) and int(pixel_keys.max()) >= top:
                raise ValueError("a pixel's colour is not in the histogram")
            table = np.full(top, -1, dtype=np.int32)
            table[self.keys] = np.arange(len(self.keys), dtype=np.int32)
            rows = np.empty(len(pixel_keys), dtype=np.int32)
            _histogram.gather(table, pixel_keys, rows)
        else:
            # A hash table of the distinct keys, ~2 slots a key, searched
            # on all cores. (A binary search per pixel took 0.27 s on 2.5 MP
            # of RGBA; a dense table of 2**24 entries, 64 MiB faulted in and
            # scattered into, 13-150 ms on 2.1 MP of RGB against 12-16 ms
            # hashed, and 125-215 against 48-70 ms on 9.8 MP, in fresh
            # processes.)
            from ._parallel import run_chunked

            bits = max(4, int(2 * len(self.keys) - 1).bit_length())
            slot_keys = np.zeros(1 << bits, dtype=np.uint32)
            slot_index = np.full(1 << bits, -1, dtype=np.int32)
            _histogram.index_keys(self.keys, slot_keys, slot_index, 32 - bits)
            rows = np.empty(len(pixel_keys), dtype=np.int32)
            run_chunked(_histogram.find_keys, len(pixel_keys), (pixel_keys, slot_keys, slot_index, 32 - bits), (rows,))
        if len(rows) and rows.min() < 0:
            raise ValueError("a pixel's colour is not in the histogram")
        return rows


def color_histogram(keys: np.ndarray, channels: int) -> ColorHistogram:
    """Count the distinct colours of a set of pixels.

    Parameters
    ----------
    keys : ndarray, shape (N,), uint32
        Packed pixels from :func:`pack_colors`, N >= 1.
    channels : int
        C in 1..4, the channels packed into each key.

    Returns
    -------
    ColorHistogram
    """
    if channels <= 3:

        keys = np.ascontiguousarray(keys, dtype=np.uint32)
        slot_bits = max(4, int(2 * len(keys) - 1).bit_length())
        if slot_bits < min(8 * channels, _HASH_MAX_BITS):
            distinct = np.empty(len(keys), dtype=np.uint32)
            counts_all = np.zeros(len(keys), dtype=np.int64)
            slot_keys = np.full(1 << slot_bits, 0xFFFFFFFF, dtype=np.uint32)
            slot_index = np.empty(1 << slot_bits, dtype=np.int32)
            n_distinct = _histogram.count_keys_hashed(keys, slot_keys, slot_index, 32 - slot_bits, distinct, counts_all)
            # First-occurrence order -> key order: sorting the keys and
            # finding each in the table again is 1.5x faster than an argsort
            # (CPU time, 393k pixels with 63k and with 253k distinct colours).
            unique_keys = np.sort(distinct[:n_distinct])
            counts = np.empty(n_distinct, dtype=np.int64)
            _histogram.hashed_counts(unique_keys, slot_keys, slot_index, 32 - slot_bits, counts_all, counts)
        elif len(keys) > _BUCKET_MAX_PIXELS or channels < 3:
            table = np.zeros(1 << (8 * channels), dtype=np.int32)
            _histogram.count_dense(keys, table)
            unique_keys, counts, colors = _histogram.dense_entries(table, channels)
            return ColorHistogram(colors, counts, unique_keys)
        else:
            unique_keys, counts = _count_sorted(_histogram.count_keys_bucketed, keys, np.uint16)
    else:
        unique_keys, counts = _count_sorted(_histogram.count_keys_radix, keys, np.uint32, np.uint32)
    return ColorHistogram(unpack_keys(unique_keys, channels), counts, unique_keys)


def _count_sorted(kernel, keys: np.ndarray, *scratch_dtypes):
    """(distinct keys (M,) uint32 in increasing order, counts (M,) int64)
    from a counting kernel ``kernel(keys, *scratch, keys_out, counts_out)
    -> M`` of ``_histogram``, given N-sized scratch arrays of these dtypes."""
    keys = np.ascontiguousarray(keys, dtype=np.uint32)
    n = len(keys)
    unique_all, counts_all = np.empty(n, dtype=np.uint32), np.empty(n, dtype=np.int64)
    n_distinct = kernel(keys, *(np.empty(n, dtype=dtype) for dtype in scratch_dtypes), unique_all, counts_all)
    # Copies: the N-sized buffers would otherwise live as long as the
    # histogram.
    return unique_all[:n_distinct].copy(), counts_all[:n_distinct].copy()
