"""The compiled error-diffusion kernel (src/kmq/_engine/_dither.pyx) against a
plain-Python transcription of the algorithm its docstring gives."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kmq._engine.colorspace import PaletteSearch, to_space
from kmq._engine.dither import MODE_ANY, MODE_FIXED, MODE_OPAQUE, dither_labels

MAX_CELLS = 4194304


def reference(color_index, points, start, mode, palette, opaque_entry, level, edge, cell, settle=0.0, bands=None):
    """Floyd-Steinberg, serpentine: target = colour + level-scaled error,
    clamped to the palette's box; the entry nearest the centre of the
    target's grid cell (ties to the lowest index); the error spread 7/16 ahead, 3/16 behind below, 5/16 below, 1/16
    ahead below. A pixel whose level-scaled error is at most ``settle``
    long (one bound, or (M,) one per colour) takes its ``start`` entry
    (target not clamped).

    bands: (begin, first kept, end) row triples; each band starts with no
    error at its ``begin`` row and keeps the labels of rows first..end
    (default: one band, the whole image)."""
    h = color_index.shape[0]
    out = np.empty(color_index.shape, np.int32)
    for begin, first, end in bands or [(0, 0, h)]:
        rows = _reference_rows(color_index, points, start, mode, palette, opaque_entry, level, edge, cell, settle, begin, end)
        out[first:end] = rows[first - begin :]
    return out


def _reference_rows(color_index, points, start, mode, palette, opaque_entry, level, edge, cell, settle, begin, end):
    """Rows begin..end of the diffusion, started with no error at ``begin``
    (the edge rule still sees the rows around the band)."""
    h, w = color_index.shape
    d = points.shape[1]
    lo, hi = palette.min(axis=0), palette.max(axis=0)
    while True:
        n_axis = [int((hi[c] - lo[c]) / cell) + 1 for c in range(d)]
        if math.prod(n_axis) <= MAX_CELLS:
            break
        cell *= 1.25
    inv = 1.0 / cell
    cur = np.zeros((w + 2, d))
    out = np.empty((h, w), np.int32)
    for y in range(begin, end):
        nxt = np.zeros((w + 2, d))
        step = 1 if y % 2 == 0 else -1
        for xi in range(w):
            x = xi if step == 1 else w - 1 - xi
            p = color_index[y, x]
            if mode[p] == MODE_FIXED:
                out[y, x] = start[p]
                continue
            att = level
            if edge > 0:
                neighbours = [(y, x - 1), (y, x + 1), (y - 1, x), (y + 1, x)]
                contrast = max(
                    (float(((points[p] - points[color_index[v, u]]) ** 2).sum()) for v, u in neighbours if 0 <= v < h and 0 <= u < w),
                    default=0.0,
                )
                contrast = math.sqrt(contrast)
                if contrast > edge:
                    att = level * edge / contrast
            bound = float(settle[p]) if np.ndim(settle) else settle
            if bound > 0 and math.sqrt(float(((att * cur[x + 1]) ** 2).sum())) <= bound:
                best = int(start[p])
                out[y, x] = best
                err = points[p] + att * cur[x + 1] - palette[best]
                cur[x + 1 + step] += err * (7 / 16)
                nxt[x + 1 - step] += err * (3 / 16)
                nxt[x + 1] += err * (5 / 16)
                nxt[x + 1 + step] += err * (1 / 16)
                continue
            target = np.empty(d)
            idx = []
            for c in range(d):
                v = min(max(points[p, c] + att * cur[x + 1, c], lo[c]), hi[c])
                target[c] = v
                idx.append(min(int((v - lo[c]) * inv), n_axis[c] - 1))
            centre = np.array([lo[c] + (idx[c] + 0.5) * cell for c in range(d)])
            allowed = opaque_entry.astype(bool) if mode[p] == MODE_OPAQUE else np.ones(len(palette), bool)
            d2 = ((palette - centre) ** 2).sum(axis=1)
            d2[~allowed] = np.inf
            best = int(np.argmin(d2))
            out[y, x] = best
            err = target - palette[best]
            cur[x + 1 + step] += err * (7 / 16)
            nxt[x + 1 - step] += err * (3 / 16)
            nxt[x + 1] += err * (5 / 16)
            nxt[x + 1 + step] += err * (1 / 16)
        cur = nxt
    return out[begin:end]


def case(seed, channels, k, h=9, w=13, space="oklab"):
    rng = np.random.default_rng(seed)
    colors = rng.integers(0, 256, (40, channels)).astype(np.uint8)
    if channels == 4:
        colors[:5, 3] = 0
        colors[5:25, 3] = 255
    palette = rng.integers(0, 256, (k, channels)).astype(np.uint8)
    if channels == 4:
        palette[0] = 0
        palette[1 : k // 2, 3] = 255
    search = PaletteSearch(palette, space)
    points = to_space(colors, space)
    start, _ = search.nearest(points)
    color_index = rng.integers(0, len(colors), (h, w)).astype(np.int32)
    mode = np.full(len(colors), MODE_ANY, np.uint8)
    opaque_entry = np.ones(k, np.uint8)
    if channels == 4:
        opaque_entry = (palette[:, 3] == 255).astype(np.uint8)
        mode[colors[:, 3] == 0] = MODE_FIXED
        mode[(colors[:, 3] == 255) & opaque_entry.astype(bool)[start]] = MODE_OPAQUE
    return color_index, points, start, mode, search, opaque_entry


@pytest.mark.parametrize(
    "channels, k, level, edge, cell, space, settle",
    [
        (3, 6, 1.0, 0.0, 0.5, "oklab", 0.0),
        (3, 6, 0.7, 0.0, 2.0, "oklab", 0.0),
        (3, 9, 1.0, 6.0, 1.0, "lab", 0.0),
        (3, 5, 1.0, 0.0, 7.0, "rgb", 0.0),
        (1, 4, 1.0, 0.0, 0.5, "oklab", 0.0),
        (2, 4, 0.5, 0.0, 0.25, "oklab", 0.0),
        (4, 8, 1.0, 0.0, 1.0, "oklab", 0.0),
        (4, 8, 0.8, 5.0, 0.5, "rgb", 0.0),
        (3, 300, 1.0, 0.0, 0.5, "oklab", 0.0),  # uint16 labels
        (4, 8, 1.0, 0.0, 1.0, "oklab", 3.0),  # settled pixels keep their entry
        (4, 8, 0.8, 5.0, 0.5, "rgb", 8.0),
        (2, 4, 0.5, 0.0, 0.25, "oklab", 2.0),
        (3, 6, 1.0, 0.0, 0.5, "oklab", "per colour"),  # each colour's own bound
        (4, 8, 0.8, 5.0, 0.5, "rgb", "per colour"),
    ],
)
def test_kernel_matches_the_reference(channels, k, level, edge, cell, space, settle):
    color_index, points, start, mode, search, opaque_entry = case(channels * 10 + k, channels, k, space=space)
    if settle == "per colour":
        settle = _bounds(len(points), 3.0, seed=k)  # 6 and 3 of the 117 labels change
    got = dither_labels(color_index, points, start, mode, search, opaque_entry, level, edge=edge, cell=cell, settle=settle)
    want = reference(color_index, points, start, mode, search.points, opaque_entry, level, edge, cell, settle)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == (np.uint8 if k <= 256 else np.uint16)


def test_the_last_entry_of_256_is_found_and_remembered():
    # A byte a cell stores 255 - entry, 0 meaning "not searched yet":
    # entry 255 of 256 is told apart by the cell's bit.
    color_index, points, start, mode, search, opaque_entry = case(7, 3, 256, h=48, w=64)
    got = dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0, cell=0.5)
    want = reference(color_index, points, start, mode, search.points, opaque_entry, 1.0, 0.0, 0.5)
    np.testing.assert_array_equal(got, want)
    assert (want == 255).sum() >= 2 and (want == 0).sum() >= 2


def test_brute_force_palettes_give_the_same_labels(monkeypatch):
    # Above 1024 entries the palette is searched without neighbour tables;
    # the answer must not change with the search method.
    color_index, points, start, mode, search, opaque_entry = case(3, 3, 12)
    sorted_labels = dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0)
    search.dist = np.zeros((0, 0))
    search.order = np.zeros((0, 0), np.int32)
    np.testing.assert_array_equal(dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0), sorted_labels)


def test_level_zero_passes_no_error_on():
    color_index, points, start, mode, search, opaque_entry = case(5, 3, 7, h=20, w=30)
    got = dither_labels(color_index, points, start, mode, search, opaque_entry, 0.0)
    # Each pixel's entry depends on its colour alone, wherever it is.
    per_colour = {}
    for p, label in zip(color_index.ravel(), got.ravel()):
        assert per_colour.setdefault(int(p), int(label)) == label
    assert len(per_colour) > 20


def test_transparent_pixels_keep_their_entry_and_opaque_ones_stay_opaque():
    color_index, points, start, mode, search, opaque_entry = case(7, 4, 8, h=30, w=40)
    got = dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0)
    fixed = mode[color_index] == MODE_FIXED
    np.testing.assert_array_equal(got[fixed], start[color_index][fixed])
    assert opaque_entry[got[mode[color_index] == MODE_OPAQUE]].all()


def test_bad_arguments_are_refused():
    color_index, points, start, mode, search, opaque_entry = case(1, 3, 4)
    with pytest.raises(ValueError, match="grid cell must be positive"):
        dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0, cell=0.0)


def _bounds(n, high, seed):
    """Per-colour settle bounds: half the colours none, the others up to
    ``high``, so that both kinds of pixel meet."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0, high, n))


def test_per_colour_bounds_settle_only_their_colours():
    """A bound for one colour and none for the other: only the first
    colour's pixels all keep their undithered entry; a single bound of the
    same length for every colour is the same as that bound given per
    colour; a list of the wrong length is refused."""
    palette = np.array([[0, 0, 0], [128, 128, 128], [255, 255, 255]], np.uint8)
    search = PaletteSearch(palette, "oklab")
    colors = np.array([[70, 70, 70], [190, 190, 190]], np.uint8)
    points = to_space(colors, "oklab")
    start, _ = search.nearest(points)
    color_index = np.zeros((12, 16), np.int32)
    color_index[:, 8:] = 1
    mode = np.zeros(2, np.uint8)
    opaque_entry = np.ones(3, np.uint8)
    args = (color_index, points, start, mode, search, opaque_entry, 1.0)
    plain = dither_labels(*args)
    assert (plain[:, :8] != start[0]).any() and (plain[:, 8:] != start[1]).any()
    first_only = dither_labels(*args, settle=np.array([1000.0, 0.0]))
    assert (first_only[:, :8] == start[0]).all()
    assert (first_only[:, 8:] != start[1]).any()
    np.testing.assert_array_equal(dither_labels(*args, settle=np.full(2, 6.0)), dither_labels(*args, settle=6.0))
    with pytest.raises(ValueError, match="one bound per colour"):
        dither_labels(*args, settle=np.zeros(3))


def test_settled_pixels_keep_their_exact_entry():
    """Two entries inside one grid cell: without ``settle`` a flat area of
    the second one's exact colour takes the cell's entry (the first); with
    it, pixels that receive (almost) no error keep their own."""
    palette = np.array([[100, 100, 100, 255], [100, 100, 101, 255], [0, 0, 0, 0]], np.uint8)
    search = PaletteSearch(palette, "oklab")
    assert search.dist[0, 1] < 0.5
    points = search.points[1:2].copy()
    color_index = np.zeros((6, 8), np.int32)
    start = np.array([1], np.int32)
    mode = np.array([MODE_OPAQUE], np.uint8)
    opaque_entry = (palette[:, 3] == 255).astype(np.uint8)
    plain = dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0, cell=2.0)
    assert (plain != 1).any()
    settled = dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0, cell=2.0, settle=1.0)
    assert (settled == 1).all()


# -- bands of rows, on threads ---------------------------------------------------


@pytest.mark.parametrize(
    "channels, k, level, edge, space, settle",
    [
        (3, 6, 1.0, 0.0, "oklab", 0.0),
        (3, 9, 1.0, 6.0, "lab", 0.0),  # the edge rule reads the rows around a band
        (4, 8, 0.8, 5.0, "rgb", 8.0),  # alpha modes and settled pixels
        (3, 300, 1.0, 0.0, "oklab", 0.0),  # uint16 labels, int16 tables
        (3, 6, 1.0, 0.0, "oklab", "per colour"),
    ],
)
def test_bands_match_the_reference(channels, k, level, edge, space, settle):
    color_index, points, start, mode, search, opaque_entry = case(channels + k, channels, k, h=17, w=11, space=space)
    if settle == "per colour":
        settle = _bounds(len(points), 10.0, seed=k)  # 14 of the 187 labels change
    bands = [(0, 0, 5), (2, 5, 6), (3, 6, 12), (12, 12, 17)]  # warm-up rows of 3, 3 and 0
    got = dither_labels(color_index, points, start, mode, search, opaque_entry, level, edge=edge, cell=0.5, settle=settle, bands=bands)
    want = reference(color_index, points, start, mode, search.points, opaque_entry, level, edge, 0.5, settle, bands=bands)
    np.testing.assert_array_equal(got, want)


def test_a_band_starts_afresh():
    # Without its warm-up rows a band is not the run from the top.
    color_index, points, start, mode, search, opaque_entry = case(9, 3, 6, h=17, w=11)
    bands = [(0, 0, 5), (5, 5, 17)]
    got = dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0, cell=0.5, bands=bands)
    whole = dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0, cell=0.5)
    np.testing.assert_array_equal(got[:5], whole[:5])
    assert not np.array_equal(got[5:], whole[5:])
    np.testing.assert_array_equal(got, reference(color_index, points, start, mode, search.points, opaque_entry, 1.0, 0.0, 0.5, bands=bands))


def test_band_layout_depends_on_the_size_alone():
    from kmq._engine.dither import WARM_ROWS, dither_bands

    assert WARM_ROWS == 8
    # Below 2^18 pixels: one band, the run from the top.
    assert dither_bands(300, 500) == [(0, 0, 300)]
    assert dither_bands(100, 10000) == [(0, 0, 100)]  # too few rows for two
    # A power of two of bands of at least 2^17 pixels and 80 rows, at most 8.
    assert dither_bands(512, 768) == [(0, 0, 256), (248, 256, 512)]
    assert dither_bands(768, 512) == [(0, 0, 384), (376, 384, 768)]
    assert dither_bands(1000, 1000) == [(0, 0, 250), (242, 250, 500), (492, 500, 750), (742, 750, 1000)]
    assert len(dither_bands(1080, 1920)) == 8
    big = dither_bands(2560, 3840)
    assert len(big) == 8 and big[0] == (0, 0, 320) and big[-1] == (2232, 2240, 2560)
    for bands in (big, dither_bands(1081, 1919), dither_bands(7, 3), dither_bands(0, 5)):
        kept = [first for _, first, _ in bands] + [bands[-1][2]]
        assert kept[0] == 0 and all(a < b for a, b in zip(kept, kept[1:])) or kept == [0, 0]
        assert all(begin == max(0, first - WARM_ROWS) for begin, first, _ in bands[1:])


def test_bands_give_the_same_labels_on_any_number_of_threads_in_any_order():
    """The bands share the tables of cells' entries, filled by whichever band
    meets a cell first: the labels must not depend on which one that is."""
    from kmq._engine._parallel import threads_limited
    from kmq._engine.dither import dither_bands

    color_index, points, start, mode, search, opaque_entry = case(11, 3, 256, h=512, w=600)
    bands = dither_bands(512, 600)
    assert len(bands) == 2
    args = (color_index, points, start, mode, search, opaque_entry, 0.75)
    threaded = dither_labels(*args, edge=4.0)
    with threads_limited(1):
        serial = dither_labels(*args, edge=4.0)
        backwards = dither_labels(*args, edge=4.0, bands=bands[::-1])
    np.testing.assert_array_equal(threaded, serial)
    np.testing.assert_array_equal(backwards, serial)
    # Each band is its own run, from its warm-up rows on.
    rows = slice(bands[1][1], bands[1][1] + 3)
    alone = dither_labels(*args, edge=4.0, bands=[bands[1]])
    np.testing.assert_array_equal(alone[rows], serial[rows])


def test_bad_bands_and_tables_are_refused():
    from kmq._engine import _dither

    color_index, points, start, mode, search, opaque_entry = case(1, 3, 4)
    with pytest.raises(ValueError, match="0 <= y_begin <= y_out <= y_end <= H"):
        dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0, bands=[(3, 2, 9)])
    with pytest.raises(ValueError, match="0 <= y_begin <= y_out <= y_end <= H"):
        dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0, bands=[(0, 0, 10)])
    with pytest.raises(ValueError, match="kept rows overlap"):
        dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0, bands=[(0, 0, 5), (2, 4, 9)])
    # Rows that no band keeps are 0.
    part = dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0, bands=[(2, 4, 9)])
    assert (part[:4] == 0).all()
    np.testing.assert_array_equal(part[4:], dither_labels(color_index, points, start, mode, search, opaque_entry, 1.0, bands=[(0, 0, 4), (2, 4, 9)])[4:])
    pal = search.points
    low, high = pal.min(axis=0), pal.max(axis=0)
    cell, table_bytes = _dither.grid(low, high, 0.5, len(pal))
    out = np.empty(color_index.shape, np.uint8)
    args = (color_index, points, start, mode, pal, search.dist, search.order, opaque_entry, 1.0, 0.0, cell, low, high)
    with pytest.raises(ValueError, match="tables are smaller than the grid"):
        _dither.floyd_steinberg(*args, np.zeros((2, table_bytes - 1), np.uint8), out, 0, 0, 9)
    with pytest.raises(ValueError, match="the labels must have the image's shape"):
        _dither.floyd_steinberg(*args, np.zeros((2, table_bytes), np.uint8), out[:5], 0, 0, 5)
