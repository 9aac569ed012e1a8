"""Colour histograms and the exact nearest-palette search."""

from __future__ import annotations

import numpy as np
import pytest

from kmq._engine import histogram as _histogram, kmeans as _kmeans, remap as _remap
from kmq._engine.histogram import color_histogram, pack_colors, unpack_keys
from kmq._engine.remap import map_pixels, nearest_palette_index


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_pack_unpack_round_trip(channels):
    rng = np.random.default_rng(channels)
    pixels = rng.integers(0, 256, (500, channels), dtype=np.uint8)
    pixels[0] = 255
    keys = pack_colors(pixels)
    assert keys.dtype == np.uint32
    np.testing.assert_array_equal(unpack_keys(keys, channels), pixels)
    if channels == 3:
        assert int(pack_colors(np.array([[1, 2, 3]], np.uint8))[0]) == (1 << 16) + (2 << 8) + 3


@pytest.mark.parametrize(
    ("channels", "n_pixels"),
    [(1, 50), (1, 5000), (2, 1000), (2, 70000), (3, 20), (3, 100000), (4, 3000), (4, 300000)],
)
def test_histogram_equals_numpy_unique(channels, n_pixels):
    # Small inputs take the hash table, large ones the dense table.
    rng = np.random.default_rng(n_pixels)
    pixels = rng.integers(0, 256, (n_pixels, channels), dtype=np.uint8)
    pixels[: n_pixels // 2] = pixels[n_pixels // 2 : 2 * (n_pixels // 2)]  # repeats
    pixels[-1] = 255  # the largest key is allowed
    keys = pack_colors(pixels)
    histogram = color_histogram(keys, channels)
    expected_keys, expected_counts = np.unique(keys, return_counts=True)
    np.testing.assert_array_equal(histogram.keys, expected_keys)
    np.testing.assert_array_equal(histogram.counts, expected_counts)
    np.testing.assert_array_equal(histogram.colors, unpack_keys(expected_keys, channels))
    assert histogram.counts.dtype == np.int64 and histogram.counts.sum() == n_pixels
    expected_rows = np.searchsorted(expected_keys, keys)
    rows = histogram.rows(keys)
    assert rows.dtype == np.int32
    np.testing.assert_array_equal(rows, expected_rows)
    # Values of every type the compiled gather spreads, and one it does not.
    for dtype in (np.uint8, np.uint16, np.int32, np.int64, np.float64):
        values = (np.arange(histogram.n_colors) % 251).astype(dtype)
        looked_up = histogram.lookup(values, keys)
        assert looked_up.dtype == dtype
        np.testing.assert_array_equal(looked_up, values[expected_rows])


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_a_colour_missing_from_the_histogram_is_refused(channels):
    colors = np.array([[1, 2, 3, 4], [255, 255, 255, 255]], np.uint8)[:, :channels]
    histogram = color_histogram(pack_colors(colors), channels)
    for missing in ([9, 9, 9, 9], [0, 0, 0, 0]):  # inside and below the keys' range
        keys = pack_colors(np.array([[255, 255, 255, 255], missing], np.uint8)[:, :channels])
        with pytest.raises(ValueError, match="not in the histogram"):
            histogram.rows(keys)
        if channels >= 3:
            with pytest.raises(ValueError, match="not in the histogram"):
                histogram.lookup(np.arange(2), keys)
    # Above the largest key: refused, not read past the dense table.
    small = color_histogram(pack_colors(np.array([[1, 1, 1, 1], [3, 3, 3, 3]], np.uint8)[:, :channels]), channels)
    with pytest.raises(ValueError, match="not in the histogram"):
        small.rows(pack_colors(np.full((1, channels), 200, np.uint8)))


def test_histogram_of_one_colour():
    keys = pack_colors(np.full((7, 3), 9, np.uint8))
    histogram = color_histogram(keys, 3)
    assert histogram.n_colors == 1 and histogram.counts.tolist() == [7]
    assert histogram.colors.tolist() == [[9, 9, 9]]


def test_coarse_histogram_weighted_means():
    colors = np.array([[0, 0, 0], [3, 0, 0], [4, 0, 0], [255, 255, 255]], np.uint8)
    counts = np.array([1, 3, 2, 5])
    means, weights, bin_of_color = _kmeans.coarse_histogram(colors, counts, 6)
    # 6 bits: bins of 4 values per channel; 0 and 3 share a bin.
    np.testing.assert_array_equal(weights, [4.0, 2.0, 5.0])
    np.testing.assert_allclose(means, [[9 / 4, 0, 0], [4, 0, 0], [255, 255, 255]])
    np.testing.assert_array_equal(bin_of_color, [0, 0, 1, 2])


@pytest.mark.parametrize(
    ("channels", "bits"),
    # (1, 2) and (3, 1): fewer bins than one 64-bit word of the occupancy map;
    # (4, 6): its 2**24 bins.
    [(1, 2), (2, 5), (3, 1), (3, 5), (3, 6), (3, 7), (4, 4), (4, 5), (4, 6)],
)
def test_coarse_histogram_equals_numpy_reference(channels, bits):
    """Bins in key order, exact pixel counts and exactly the count-weighted
    means numpy's bincount gives."""
    rng = np.random.default_rng(bits * 10 + channels)
    keys = np.unique(rng.integers(0, 1 << (8 * channels), 20000, dtype=np.int64))
    colors = unpack_keys(keys.astype(np.uint32), channels)
    counts = rng.integers(1, 1000, len(colors))
    bin_keys = np.zeros(len(colors), dtype=np.int64)
    for c in range(channels):
        bin_keys = (bin_keys << bits) | (colors[:, c] >> (8 - bits)).astype(np.int64)
    occupied, bin_of_color = np.unique(bin_keys, return_inverse=True)
    weights = np.bincount(bin_of_color, weights=counts).astype(np.float64)
    sums = np.stack([np.bincount(bin_of_color, weights=counts * colors[:, c].astype(np.float64)) for c in range(channels)], axis=1)
    means, got_weights, got_bins = _kmeans.coarse_histogram(colors, counts, bits)
    np.testing.assert_array_equal(got_bins, bin_of_color)
    np.testing.assert_array_equal(got_weights, weights)
    np.testing.assert_array_equal(means, sums / weights[:, None])
    assert len(means) == len(occupied)


def brute_nearest(colors, palette):
    d2 = ((colors.astype(np.int64)[:, None, :] - palette.astype(np.int64)[None]) ** 2).sum(axis=2)
    return d2.argmin(axis=1), d2.min(axis=1)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("k", [1, 2, 16, 255])
def test_nearest_palette_is_exact_with_lowest_index_ties(channels, k):
    rng = np.random.default_rng(k * 10 + channels)
    colors = rng.integers(0, 256, (3000, channels), dtype=np.uint8)
    # A coarse palette with duplicate entries: plenty of exact ties.
    palette = (rng.integers(0, 8, (k, channels)) * 32).astype(np.uint8)
    labels, dist2 = nearest_palette_index(colors, palette, return_dist2=True)
    expected, expected_d2 = brute_nearest(colors, palette)
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(dist2, expected_d2)
    assert labels.dtype == np.uint8
    # Any starting guess gives the same answer.
    guess = rng.integers(0, k, len(colors))
    np.testing.assert_array_equal(nearest_palette_index(colors, palette, guess=guess), expected)


def test_nearest_palette_large_k_brute_force_path(monkeypatch):
    rng = np.random.default_rng(0)
    colors = rng.integers(0, 256, (500, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (300, 3), dtype=np.uint8)
    expected, _ = brute_nearest(colors, palette)
    monkeypatch.setattr(_remap, "_MAX_SORTED_K", 10)
    labels = nearest_palette_index(colors, palette)
    assert labels.dtype == np.uint16
    np.testing.assert_array_equal(labels, expected)


def test_map_pixels_spreads_the_colour_labels():
    pixels = np.array([[0, 0, 0], [250, 250, 250], [0, 0, 0], [120, 130, 140]], np.uint8)
    keys = pack_colors(pixels)
    palette = np.array([[255, 255, 255], [0, 0, 10], [128, 128, 128]], np.uint8)
    labels = map_pixels(color_histogram(keys, 3), keys, palette)
    assert labels.tolist() == [1, 0, 1, 2]


def test_dense_bucketed_and_hashed_counts_agree_for_rgb(monkeypatch):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 64, (20000, 3), dtype=np.uint8) * 4  # many repeats
    keys = pack_colors(pixels)
    hashed = color_histogram(keys, 3)
    monkeypatch.setattr(_histogram, "_HASH_MAX_BITS", 4)  # no hash table: buckets
    bucketed = color_histogram(keys, 3)
    monkeypatch.setattr(_histogram, "_BUCKET_MAX_PIXELS", 100)  # the dense 2**24 table
    dense = color_histogram(keys, 3)
    for other in (hashed, bucketed):
        np.testing.assert_array_equal(dense.keys, other.keys)
        np.testing.assert_array_equal(dense.counts, other.counts)
        np.testing.assert_array_equal(dense.colors, other.colors)
        assert (other.keys.dtype, other.counts.dtype, other.colors.dtype) == (np.uint32, np.int64, np.uint8)
    expected_keys, expected_counts = np.unique(keys, return_counts=True)
    np.testing.assert_array_equal(dense.keys, expected_keys)
    np.testing.assert_array_equal(dense.counts, expected_counts)
    np.testing.assert_array_equal(dense.colors, unpack_keys(expected_keys, 3))
    assert (dense.keys.dtype, dense.counts.dtype, dense.colors.dtype) == (np.uint32, np.int64, np.uint8)


@pytest.mark.parametrize(
    "keys",
    [
        np.array([0], np.uint32),
        np.array([0xFFFFFF, 0, 0xFFFFFF, 0xFFF, 0x1000, 0xFFF000, 0xFFF], np.uint32),  # bucket edges
        np.full(3000, 0x123456, np.uint32),  # one colour
        np.arange(1 << 13, dtype=np.uint32)[::-1].copy(),  # two full buckets, descending
        np.random.default_rng(8).integers(0, 1 << 24, 200_000).astype(np.uint32),  # all buckets
        (np.random.default_rng(9).integers(0, 40, 50_000) * 0x010101).astype(np.uint32),  # greys
    ],
    ids=["one-key", "bucket-edges", "one-colour", "two-buckets", "random-24-bit", "greys"],
)
def test_bucketed_count_equals_numpy_unique(keys):
    from kmq._engine import _histogram as kernels

    n = len(keys)
    unique_out, counts_out = np.empty(n, np.uint32), np.empty(n, np.int64)
    m = kernels.count_keys_bucketed(keys, np.empty(n, np.uint16), unique_out, counts_out)
    expected_keys, expected_counts = np.unique(keys, return_counts=True)
    assert m == len(expected_keys)
    np.testing.assert_array_equal(unique_out[:m], expected_keys)
    np.testing.assert_array_equal(counts_out[:m], expected_counts)
    assert counts_out[:m].sum() == n


@pytest.mark.parametrize(
    "keys",
    [
        np.array([0], np.uint32),
        np.array([0xFFFFFFFF, 0, 5, 0xFFFFFFFF, 0x80000000, 0xFF], np.uint32),  # extremes
        np.full(3000, 0x123456FF, np.uint32),  # one colour: no digit dealt
        (np.random.default_rng(10).integers(0, 1 << 24, 50_000).astype(np.uint32) << 8) | 0xFF,  # opaque RGBA
        np.random.default_rng(11).integers(0, 1 << 32, 200_000, dtype=np.uint64).astype(np.uint32),  # every digit
        np.arange(70_000, dtype=np.uint32)[::-1].copy(),  # descending, three digits dealt
    ],
    ids=["one-key", "extremes", "one-colour", "opaque-rgba", "random-32-bit", "descending"],
)
def test_radix_count_equals_numpy_unique_and_leaves_the_keys(keys):
    from kmq._engine import _histogram as kernels

    before = keys.copy()
    n = len(keys)
    unique_out, counts_out = np.empty(n, np.uint32), np.empty(n, np.int64)
    m = kernels.count_keys_radix(keys, np.empty(n, np.uint32), np.empty(n, np.uint32), unique_out, counts_out)
    expected_keys, expected_counts = np.unique(keys, return_counts=True)
    assert m == len(expected_keys)
    np.testing.assert_array_equal(unique_out[:m], expected_keys)
    np.testing.assert_array_equal(counts_out[:m], expected_counts)
    np.testing.assert_array_equal(keys, before)  # the input is never a scratch buffer


def test_rgba_histogram_equals_numpy_unique():
    rng = np.random.default_rng(12)
    pixels = (rng.integers(0, 6, (40_000, 4)) * 51).astype(np.uint8)  # many repeats
    pixels[:5000, 3] = 255
    keys = pack_colors(pixels)
    hist = color_histogram(keys, 4)
    expected_keys, expected_counts = np.unique(keys, return_counts=True)
    np.testing.assert_array_equal(hist.keys, expected_keys)
    np.testing.assert_array_equal(hist.counts, expected_counts)
    np.testing.assert_array_equal(hist.colors, unpack_keys(expected_keys, 4))
    assert (hist.keys.dtype, hist.counts.dtype, hist.colors.dtype) == (np.uint32, np.int64, np.uint8)


def test_bin_means_equal_numpy_bincount_bit_for_bit():
    from kmq._engine.kmeans import _bin_means

    rng = np.random.default_rng(5)
    points = rng.normal(size=(5000, 3)) * 40
    weights = rng.integers(1, 50, 5000).astype(np.float64)
    bins = rng.integers(0, 97, 5000).astype(np.int64)
    bins[:97] = np.arange(97)  # every bin occupied
    bin_weights = np.bincount(bins, weights=weights, minlength=97)
    expected = np.stack([np.bincount(bins, weights=weights * points[:, c], minlength=97) for c in range(3)], axis=1)
    np.testing.assert_array_equal(_bin_means(points, weights, bins, bin_weights), expected / bin_weights[:, None])
