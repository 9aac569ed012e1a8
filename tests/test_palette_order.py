"""The palette order chosen for compression (src/kmq/_palette_order.py)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

import kmq
from kmq import ColorQuantizer
from kmq._palette_order import compression_order, reorder


def test_compress_permutes_palette_and_labels_consistently() -> None:
    rng = np.random.default_rng(3)
    image = (rng.integers(0, 256, (40, 50, 3)) // 32 * 32).astype(np.uint8)
    # Undithered, so that fit_transform maps the same pixels the same way.
    c = kmq.compress(image, 16, seed=0, dither=0)
    q = ColorQuantizer(16, seed=0)
    labels = q.fit_transform(image)
    # The same image pixel for pixel, the same set of colours, another order.
    np.testing.assert_array_equal(c.reconstruct(), q.palette_[labels])
    assert sorted(map(tuple, c.palette)) == sorted(map(tuple, q.palette_))
    np.testing.assert_array_equal(kmq.load(c.to_bytes()).reconstruct(), c.reconstruct())
    with Image.open(io.BytesIO(c.to_bytes("png"))) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), c.reconstruct())


def test_greedy_chain_follows_neighbours() -> None:
    # Stripes 3 | 0 0 | 2 2 2 | 1: colour 2, the most frequent, first; its
    # neighbours 0 and 1 touch it equally often, 0 is more frequent; then
    # 0's other neighbour 3, then 1.
    labels = np.repeat(np.array([[3, 0, 0, 2, 2, 2, 1]]), 4, axis=0)
    palette = np.array([[10, 10, 10], [20, 20, 20], [30, 30, 30], [40, 40, 40]], np.uint8)
    assert compression_order(palette, labels).tolist() == [2, 0, 3, 1]
    new_palette, new_labels = reorder(palette, labels)
    assert new_labels.tolist()[0] == [2, 1, 1, 0, 0, 0, 3]
    assert new_labels.dtype == labels.dtype
    np.testing.assert_array_equal(new_palette[new_labels], palette[labels])


def test_transparent_entries_first_so_trns_is_shortest() -> None:
    palette = np.array([[0, 0, 0, 255], [9, 9, 9, 255], [5, 5, 5, 0], [7, 7, 7, 255], [1, 1, 1, 128]], np.uint8)
    labels = np.array([[0, 1, 3, 2, 4, 0, 1, 3]] * 3, np.uint8)
    order = compression_order(palette, labels)
    assert set(order[:2].tolist()) == {2, 4}
    c = kmq.Compressed(*reorder(palette, labels), mode="RGBA", k_requested=5)
    png = c.to_bytes("png")
    with Image.open(io.BytesIO(png)) as im:
        assert len(im.info["transparency"]) == 2


def test_large_palettes_sorted_by_luminance() -> None:
    palette = np.random.default_rng(0).integers(0, 256, (2000, 3), dtype=np.uint8)
    labels = np.arange(2000).reshape(40, 50)
    order = compression_order(palette, labels)
    luma = palette.astype(int) @ [299, 587, 114]
    assert (np.diff(luma[order]) >= 0).all()
    assert sorted(order.tolist()) == list(range(2000))


def test_cooccurrence_kernel_counts_right_and_down_neighbours() -> None:
    from kmq._palette_order_kernels import cooccurrence

    rng = np.random.default_rng(11)
    for dtype, k in ((np.uint8, 7), (np.uint16, 300)):
        labels = rng.integers(0, k, (23, 31)).astype(dtype)
        lab = labels.astype(np.int64)
        pairs = np.concatenate([(lab[:, :-1] * k + lab[:, 1:]).ravel(), (lab[:-1] * k + lab[1:]).ravel()])
        expected = np.bincount(pairs, minlength=k * k).reshape(k, k)
        counts = np.zeros((k, k), np.int64)
        cooccurrence(labels, counts)
        np.testing.assert_array_equal(counts, expected)
        assert counts.sum() == 23 * 30 + 22 * 31


def test_reorder_relabels_uint8_and_uint16_alike() -> None:
    rng = np.random.default_rng(5)
    for dtype, k in ((np.uint8, 200), (np.uint16, 700)):
        palette = rng.integers(0, 256, (k, 3)).astype(np.uint8)
        labels = rng.integers(0, k, (37, 41)).astype(dtype)
        new_palette, new_labels = reorder(palette, labels)
        assert new_labels.dtype == dtype and new_labels.shape == labels.shape
        np.testing.assert_array_equal(new_palette[new_labels], palette[labels])
        # The same as NumPy's fancy index (the non-contiguous path).
        _, strided = reorder(palette, np.asfortranarray(labels))
        np.testing.assert_array_equal(strided, new_labels)
