"""Working colour spaces, alpha, dithering and same-bytes-every-run."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

import kmq
from kmq import metrics
from kmq._cli import main
from kmq._engine.colorspace import PaletteSearch, from_space, to_space
from kmq._quantize import DEFAULT_SEED

# -- conversions ---------------------------------------------------------------

# Ottosson's published Oklab values (https://bottosson.github.io/posts/oklab/,
# "Table of example Lab values" uses XYZ; these are sRGB primaries through his
# sRGB -> Oklab code), times 100.
OKLAB = {
    (255, 255, 255): (100.0, 0.0, 0.0),
    (255, 0, 0): (62.7955, 22.4863, 12.5846),
    (0, 255, 0): (86.6440, -23.3888, 17.9498),
    (0, 0, 255): (45.2014, -3.2457, -31.1528),
    (0, 0, 0): (0.0, 0.0, 0.0),
}
# CIELAB D65 of the sRGB primaries (Lindbloom's calculator values).
LAB = {
    (255, 255, 255): (100.0, 0.0, 0.0),
    (255, 0, 0): (53.2408, 80.0925, 67.2032),
    (0, 255, 0): (87.7347, -86.1827, 83.1793),
    (0, 0, 255): (32.2970, 79.1875, -107.8602),
}


def _linear_levels():
    """The kernels' table of linear light, level by level, in Python floats."""
    out = []
    for level in range(256):
        c = level / 255.0
        out.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    return out


def _oklab_as_written(r, g, b):
    """_colorspace.pyx's Oklab, operation by operation: Python rounds every
    multiply and add on its own, as C does with contraction off."""
    import math

    l = math.cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b)
    m = math.cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b)
    s = math.cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b)
    return (
        100.0 * (0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s),
        100.0 * (1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s),
        100.0 * (0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s),
    )


def _lab_as_written(r, g, b):
    import math

    delta = 6.0 / 29.0

    def f(t):
        return math.cbrt(t) if t > delta * delta * delta else t / (3.0 * delta * delta) + 4.0 / 29.0

    x = 0.4124564 * r + 0.3575761 * g + 0.1804375 * b
    y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
    z = 0.0193339 * r + 0.1191920 * g + 0.9503041 * b
    fy = f(y / 1.0)
    return (116.0 * fy - 16.0, 500.0 * (f(x / 0.95047) - fy), 200.0 * (fy - f(z / 1.08883)))


def _oklab_chroma_as_written(r, g, b):
    l_, a, b_ = _oklab_as_written(r, g, b)
    return (l_, a * 1.25, b_ * 1.25)


@pytest.mark.parametrize(
    "space, convert", [("oklab", _oklab_as_written), ("oklab-chroma", _oklab_chroma_as_written), ("lab", _lab_as_written)]
)
def test_conversion_is_the_sources_arithmetic_bit_for_bit(space, convert):
    # The same bytes on every build rest on the kernels rounding each
    # multiply and add as written: a fused multiply-add (Clang's default
    # on arm64) would change the last bits and, through ties in the
    # nearest-entry search, the output. meson.build turns contraction off.
    rng = np.random.default_rng(7)
    colors = np.concatenate([np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1), rng.integers(0, 256, (3000, 3), dtype=np.uint8)])
    linear = _linear_levels()
    got = to_space(colors, space)
    expected = np.array([convert(linear[r], linear[g], linear[b]) for r, g, b in colors.tolist()])
    mismatched = np.flatnonzero((got != expected).any(axis=1))
    assert mismatched.size == 0, (colors[mismatched[:5]].tolist(), got[mismatched[:5]].tolist(), expected[mismatched[:5]].tolist())


@pytest.mark.parametrize("space, table", [("oklab", OKLAB), ("lab", LAB)])
def test_conversion_matches_reference_values(space, table):
    colors = np.array(list(table), dtype=np.uint8)
    expected = np.array(list(table.values()))
    np.testing.assert_allclose(to_space(colors, space), expected, atol=2e-3)


def test_mid_gray_lightness():
    gray = np.array([[119, 119, 119]], np.uint8)
    # sRGB 119 is ((119/255 + 0.055)/1.055)^2.4 = 18.45 % linear light:
    # Oklab L = 100 cbrt(0.18448) = 56.93 (a gray's l = m = s), CIELAB L = 50.0.
    linear = ((119 / 255 + 0.055) / 1.055) ** 2.4
    assert to_space(gray, "oklab")[0, 0] == pytest.approx(100 * linear ** (1 / 3), abs=1e-6)
    assert to_space(gray, "oklab")[0, 0] == pytest.approx(56.93, abs=0.005)
    assert to_space(gray, "lab")[0, 0] == pytest.approx(50.0, abs=0.1)
    # A gray is the same in a gray image and in an RGB one.
    assert to_space(np.array([[119]], np.uint8), "oklab")[0, 0] == pytest.approx(to_space(gray, "oklab")[0, 0])


@pytest.mark.parametrize("space", ["oklab", "oklab-chroma", "lab", "rgb"])
def test_every_srgb_colour_round_trips(space):
    keys = np.arange(0, 1 << 24, 7, dtype=np.uint32)
    colors = np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=1).astype(np.uint8)
    np.testing.assert_array_equal(from_space(to_space(colors, space), space), colors)


def _composite(colors, background):
    """sRGB values (M, 3) float64 of RGBA colours (M, 4) uint8 over a grey
    ``background`` (0..255), blended as browsers blend: in sRGB values."""
    a = colors[:, 3:].astype(np.float64) / 255.0
    return colors[:, :3] * a + background * (1.0 - a)


def _space_of_srgb_values(s, space):
    """sRGB values (M, 3) float64, 0..255 (not only integers) -> the space's
    coordinates: the published formulas, written out here (Ottosson's
    matrices; CIELAB with the D65 white)."""
    if space == "rgb":
        return s
    v = s / 255.0
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    if space == "oklab":
        lms = lin @ np.array([[0.4122214708, 0.5363325363, 0.0514459929],
                              [0.2119034982, 0.6806995451, 0.1073969566],
                              [0.0883024619, 0.2817188376, 0.6299787005]]).T
        return 100 * np.cbrt(lms) @ np.array([[0.2104542553, 0.7936177850, -0.0040720468],
                                               [1.9779984951, -2.4285922050, 0.4505937099],
                                               [0.0259040371, 0.7827717662, -0.8086757660]]).T
    xyz = lin @ np.array([[0.4124564, 0.3575761, 0.1804375],
                          [0.2126729, 0.7151522, 0.0721750],
                          [0.0193339, 0.1191920, 0.9503041]]).T / np.array([0.95047, 1.0, 1.08883])
    d = 6 / 29
    f = np.where(xyz > d**3, np.cbrt(xyz), xyz / (3 * d * d) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


@pytest.mark.parametrize("space", ["oklab", "oklab-chroma", "lab", "rgb"])
def test_alpha_is_placed_where_it_is_seen_and_round_trips(space):
    rng = np.random.default_rng(0)
    colors = rng.integers(0, 256, (5000, 4)).astype(np.uint8)
    colors[:, 3] = np.maximum(colors[:, 3], 128)  # at alpha >= 128 the colour survives uint8
    points = to_space(colors, space)
    # The colour coordinates: the pixel composited over the mid-grey 127.5.
    if space == "oklab-chroma":
        expected = _space_of_srgb_values(_composite(colors, 127.5), "oklab") * [1.0, 1.25, 1.25]
    else:
        expected = _space_of_srgb_values(_composite(colors, 127.5), space)
    np.testing.assert_allclose(points[:, :3], expected, atol=1e-9)
    # Alpha: half the distance from black to white in the space.
    scale = {"rgb": 127.5 * 3**0.5, "oklab": 50.0, "oklab-chroma": 50.0, "lab": 50.0}[space]
    np.testing.assert_allclose(points[:, 3], colors[:, 3] / 255.0 * scale)
    np.testing.assert_array_equal(from_space(points, space), colors)
    # Opaque colours are exactly where an RGB image puts them.
    opaque = colors.copy()
    opaque[:, 3] = 255
    np.testing.assert_array_equal(to_space(opaque, space)[:, :3], to_space(np.ascontiguousarray(colors[:, :3]), space))
    # Alpha 0: every hidden colour is the same point, and comes back as the
    # one transparent colour.
    hidden = to_space(np.array([[9, 80, 200, 0], [255, 0, 0, 0], [0, 0, 0, 0]], np.uint8), space)
    assert (hidden == hidden[2]).all()
    assert from_space(hidden[:1], space).tolist() == [[0, 0, 0, 0]]


def test_the_chroma_weight_is_the_kernels():
    from kmq._engine import _colorspace, colorspace

    assert _colorspace.CHROMA_WEIGHT == colorspace.CHROMA_WEIGHT == 1.25
    # Greys: the same lightness, no chroma (to the matrices' rounding), the
    # same coarse bins.
    gray = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    np.testing.assert_array_equal(to_space(gray, "oklab-chroma")[:, 0], to_space(gray, "oklab")[:, 0])
    np.testing.assert_allclose(to_space(gray, "oklab-chroma")[:, 1:], 0.0, atol=1e-5)
    np.testing.assert_array_equal(colorspace.level_scale("oklab-chroma"), colorspace.level_scale("oklab"))
    with pytest.raises(ValueError, match="unknown colour space 'oklch': expected one of oklab, lab, rgb"):
        to_space(gray, "oklch")


@pytest.mark.parametrize(
    "space, k, dither, alpha, expected",
    [("oklab", 2, 0.0, False, "oklab"), ("oklab", 16, 0.0, False, "oklab"), ("oklab", 17, 0.0, False, "oklab-chroma"),
     ("oklab", 256, 0.0, False, "oklab-chroma"), ("oklab", 8, 0.75, False, "oklab"),
     ("oklab", 9, 0.75, False, "oklab-chroma"), ("oklab", 16, 0.01, False, "oklab-chroma"),
     ("oklab", 256, 1.0, False, "oklab-chroma"), ("oklab", 16, 0.75, True, "oklab"),
     ("oklab", 17, 0.75, True, "oklab-chroma"), ("oklab", 17, 0.0, True, "oklab-chroma"),
     ("lab", 256, 0.0, False, "lab"), ("lab", 16, 1.0, False, "lab"), ("rgb", 64, 0.5, True, "rgb")],
)
def test_working_space(space, k, dither, alpha, expected):
    from kmq._quantize import working_space

    assert working_space(space, k, dither, alpha=alpha) == expected
    if dither == 0.0 and not alpha:
        assert working_space(space, k) == expected


def test_images_with_alpha_keep_plain_oklab_at_16_colours_dithered(photo):
    """Dithered or not, an image with alpha gets the same 16-colour palette
    (plain Oklab); an opaque one does not (chroma weighted when dithered)."""
    from kmq._quantize import ColorQuantizer

    rgba = _soft_masked(photo)
    fits = {d: ColorQuantizer(16, seed=0, dither=d).fit(rgba).palette_ for d in (0.0, 0.75)}
    assert fits[0.0].shape == (16, 4)
    np.testing.assert_array_equal(fits[0.0], fits[0.75])
    opaque = {d: ColorQuantizer(16, seed=0, dither=d).fit(photo).palette_ for d in (0.0, 0.75)}
    assert not np.array_equal(opaque[0.0], opaque[0.75])


@pytest.mark.parametrize(
    "k, dither, weight", [(64, 0.0, 1.25), (64, 0.75, 1.25), (16, 0.0, 1.0), (16, 0.75, 1.25), (8, 0.75, 1.0)]
)
def test_oklab_fits_above_16_colours_weigh_chroma(photo, k, dither, weight):
    """The fit's inertia is the sum over pixels of dL^2 + w^2 (da^2 + db^2)
    to the nearest entry, in Oklab x 100: w = 1.25 above 16 colours, or
    above 8 when dithered, 1 otherwise; the dithering level beyond 0 does
    not change the palette, and the user's space is still reported as
    oklab."""
    from kmq._quantize import ColorQuantizer

    q = ColorQuantizer(k, seed=0, dither=dither).fit(photo)
    assert q.space_ == "oklab" and q.palette_.shape == (k, 3)
    colors, counts = np.unique(photo.reshape(-1, 3), axis=0, return_counts=True)
    diff = to_space(colors, "oklab")[:, None, :] - to_space(q.palette_, "oklab")[None]
    scale = np.array([1.0, weight, weight])
    nearest = ((diff * scale) ** 2).sum(axis=2).min(axis=1)
    assert q.inertia_ == pytest.approx(float((counts * nearest).sum()), rel=1e-9)
    other = np.array([1.0, 2.25 - weight, 2.25 - weight])  # the other weight
    assert q.inertia_ != pytest.approx(float((counts * ((diff * other) ** 2).sum(axis=2).min(axis=1)).sum()), rel=1e-3)
    if dither:
        full = ColorQuantizer(k, seed=0, dither=1.0).fit(photo)
        np.testing.assert_array_equal(full.palette_, q.palette_)


def test_la_alpha_is_placed_like_rgba():
    rng = np.random.default_rng(1)
    la = rng.integers(0, 256, (500, 2)).astype(np.uint8)
    la[:, 1] = np.maximum(la[:, 1], 128)
    rgba = np.ascontiguousarray(la[:, [0, 0, 0, 1]])
    for space in ("oklab", "lab"):
        points = to_space(la, space)
        np.testing.assert_allclose(points[:, 0], to_space(rgba, space)[:, 0], atol=1e-3)
        np.testing.assert_allclose(points[:, 1], to_space(rgba, space)[:, 3])
        np.testing.assert_array_equal(from_space(points, space), la)
    np.testing.assert_allclose(to_space(la, "rgb")[:, 0], _composite(rgba, 127.5)[:, 0])
    np.testing.assert_allclose(to_space(la, "rgb")[:, 1], la[:, 1] / 255.0 * 127.5)


def test_rgb_distance_is_the_mean_error_over_black_and_white():
    """In sRGB values (where blending is linear) the squared distance
    between two colours with alpha is exactly the mean of the squared
    differences of what they show over black and over white."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (2000, 4)).astype(np.uint8)
    y = rng.integers(0, 256, (2000, 4)).astype(np.uint8)
    x[:100, 3], y[:50, 3] = 255, 0  # opaque against transparent among them
    d2 = ((to_space(x, "rgb") - to_space(y, "rgb")) ** 2).sum(axis=1)
    seen = [((_composite(x, b) - _composite(y, b)) ** 2).sum(axis=1) for b in (0.0, 255.0)]
    np.testing.assert_allclose(d2, (seen[0] + seen[1]) / 2, rtol=1e-9, atol=1e-6)


def test_out_of_gamut_points_are_clipped():
    out = from_space(np.array([[150.0, 0.0, 0.0], [-10.0, 0.0, 0.0]]), "oklab")
    assert out.tolist() == [[255, 255, 255], [0, 0, 0]]


# -- nearest search --------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 7, 64, 300, 1100])
def test_nearest_is_exact_with_ties_to_the_lowest_index(k):
    rng = np.random.default_rng(k)
    palette = rng.integers(0, 256, (k, 3)).astype(np.uint8)
    palette[k // 2] = palette[0]  # a duplicate entry: the lower index wins
    search = PaletteSearch(palette, "oklab")
    points = to_space(rng.integers(0, 256, (3000, 3)).astype(np.uint8), "oklab")
    points[:10] = search.points[0]
    guess = rng.integers(0, k, len(points)).astype(np.int32)
    labels, dist2 = search.nearest(points, guess=guess)
    brute = ((points[:, None, :] - search.points[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, brute.argmin(axis=1))  # argmin: first minimum
    np.testing.assert_allclose(dist2, brute.min(axis=1))
    assert (labels[:10] == 0).all()
    allowed = np.zeros(k, bool)
    allowed[::3] = True
    labels, _ = search.nearest(points, guess=guess, allowed=allowed)
    np.testing.assert_array_equal(labels, np.flatnonzero(allowed)[brute[:, allowed].argmin(axis=1)])


# -- fitting in a space ----------------------------------------------------------


@pytest.mark.parametrize("space", ["oklab", "lab", "rgb"])
def test_pixels_map_to_the_nearest_entry_in_the_space(photo, space):
    c = kmq.compress(photo, 16, space=space, dither=0)
    assert c.space == space and c.palette.dtype == np.uint8 and len(c.palette) == 16
    points = to_space(photo.reshape(-1, 3), space)
    pal = to_space(c.palette, space)
    brute = ((points[:, None, :] - pal[None]) ** 2).sum(axis=2)
    # Each pixel's entry is a nearest one (on ties any of them: the order of
    # the palette is chosen for compression after the mapping).
    chosen = brute[np.arange(len(points)), c.labels.reshape(-1)]
    np.testing.assert_array_equal(chosen, brute.min(axis=1))
    # The quantizer maps a new image by the same rule.
    q = kmq.ColorQuantizer(16, space=space).fit(photo)
    other = np.ascontiguousarray(photo[::-1, ::-1])
    pal_q = to_space(q.palette_, space)
    np.testing.assert_array_equal(
        q.transform(other).reshape(-1),
        (((to_space(other.reshape(-1, 3), space)[:, None] - pal_q[None]) ** 2).sum(2)).argmin(1),
    )


def test_oklab_fit_lowers_the_oklab_error(sample_pixels):
    crop = np.ascontiguousarray(sample_pixels[::2, ::2])
    errors = {}
    for space in ("oklab", "rgb"):
        c = kmq.compress(crop, 32, space=space, dither=0)
        diff = to_space(crop.reshape(-1, 3), "oklab") - to_space(c.reconstruct().reshape(-1, 3), "oklab")
        errors[space] = np.sqrt((diff**2).sum(1)).mean()
    assert errors["oklab"] < errors["rgb"]


def test_bad_space_and_dither_are_usage_errors(photo):
    with pytest.raises(kmq.UsageError, match="colour space must be one of oklab, lab, rgb"):
        kmq.compress(photo, 4, space="xyz")
    with pytest.raises(kmq.UsageError, match="dithering level must be from 0 to 1"):
        kmq.compress(photo, 4, dither=2)


# -- alpha -----------------------------------------------------------------------


def soft_mask_image(photo):
    h, w = photo.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
    alpha = np.clip((1.0 - r) * 4 * 255, 0, 255).astype(np.uint8)
    return np.dstack([photo, alpha])


@pytest.mark.parametrize("k", [16, 64, 256])
@pytest.mark.parametrize("dither", [0, 1])
def test_opaque_pixels_stay_opaque(sample_pixels, k, dither):
    rgba = soft_mask_image(np.ascontiguousarray(sample_pixels[::2, ::2]))
    alpha = rgba[:, :, 3]
    assert 0.2 < (alpha == 255).mean() < 0.8 and ((alpha > 0) & (alpha < 255)).mean() > 0.1
    out = kmq.compress(rgba, k, dither=dither).reconstruct()
    assert (out[:, :, 3][alpha == 255] == 255).mean() >= 0.99
    # Every fully transparent pixel shares one entry: (0, 0, 0, 0).
    assert (out[alpha == 0] == 0).all()


def test_transparent_pixels_share_one_entry():
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (40, 40, 4)).astype(np.uint8)
    rgba[:20, :, 3] = 0  # hidden colours of every kind
    c = kmq.compress(rgba, 8, dither=1)
    assert len(np.unique(c.labels[:20])) == 1
    assert c.palette[c.labels[0, 0]].tolist() == [0, 0, 0, 0]


def test_nearly_transparent_pixels_share_the_transparent_entry():
    """k-means knows the transparent entry is there: four flat colours, a
    faint shadow (alpha 2) and transparency at K = 5 give the four colours
    exactly, the shadow going to the transparent entry (the entry it would
    otherwise take is one colour short)."""
    rgba = np.zeros((60, 100, 4), np.uint8)
    flat = [(200, 30, 40, 255), (20, 160, 60, 255), (40, 60, 220, 255), (250, 250, 250, 255)]
    for i, colour in enumerate(flat):
        rgba[:20, i * 25:(i + 1) * 25] = colour
    rgba[20:30] = (0, 0, 0, 2)
    c = kmq.compress(rgba, 5, dither=0)
    assert sorted(map(tuple, c.palette.tolist())) == sorted(flat + [(0, 0, 0, 0)])
    out = c.reconstruct()
    np.testing.assert_array_equal(out[:20], rgba[:20])
    assert (out[20:] == 0).all()
    # Deterministic, dithered too.
    assert kmq.compress(rgba, 5).to_bytes("png") == kmq.compress(rgba, 5).to_bytes("png")


def test_near_opaque_snaps_repeat_no_entry():
    """A soft edge of alpha 249-252 in the colour of an opaque fill is a
    cluster of its own at K = 3; snapped to opaque it would repeat the fill's
    entry and serve nobody: it is kept translucent."""
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[:, :30] = (30, 90, 200, 255)
    rgba[:, 30:] = (230, 200, 20, 255)
    for i, a in enumerate((249, 250, 251, 252)):
        rgba[i * 4:(i + 1) * 4, 28:32] = (30, 90, 200, a)
    c = kmq.compress(rgba, 3, dither=0)
    assert len(np.unique(c.palette, axis=0)) == len(c.palette) == 3
    assert ((c.palette[:, 3] >= 248) & (c.palette[:, 3] < 255)).sum() == 1
    out = c.reconstruct()
    np.testing.assert_array_equal(out[rgba[:, :, 3] == 255], rgba[rgba[:, :, 3] == 255])


def test_clusters_mostly_opaque_get_opaque_entries():
    """One cluster of an opaque colour (90 % of its pixels) and the same
    colour at alpha 100: its mean alpha is 239, but the entry is opaque, at
    the cluster's mean colour coordinates (the best opaque centre)."""
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[:, :45] = (200, 50, 50, 255)
    rgba[:, 45:] = (200, 50, 50, 100)
    rgba[:4] = (10, 10, 10, 255)
    c = kmq.compress(rgba, 2, dither=0)
    cluster = to_space(np.array([[200, 50, 50, 255], [200, 50, 50, 100]], np.uint8), "oklab")
    centre = (0.9 * cluster[0] + 0.1 * cluster[1])[None]
    centre[0, 3] = 50.0
    assert sorted(c.palette.tolist()) == sorted([[10, 10, 10, 255], from_space(centre, "oklab")[0].tolist()])
    assert (c.reconstruct()[:, :, 3] == 255).all()


@pytest.mark.parametrize("dither", [0, 1])
def test_alpha_images_with_at_most_k_colours_stay_exact(dither):
    # Far-apart colours make the dithering grid coarse; the pairs one level
    # apart then share its cells.
    colours = np.array([
        [0, 0, 0, 0], [0, 0, 0, 255], [255, 255, 255, 255], [255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 180],
        [100, 100, 100, 255], [100, 100, 101, 255], [100, 101, 100, 255], [120, 80, 60, 200], [120, 80, 61, 200],
        [120, 80, 60, 201],
    ], np.uint8)
    rng = np.random.default_rng(4)
    rgba = colours[rng.integers(0, len(colours), (30, 40))]
    c = kmq.compress(rgba, 16, dither=dither)
    assert c.lossless
    np.testing.assert_array_equal(c.reconstruct(), rgba)


def test_metrics_with_alpha_count_what_is_seen():
    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (32, 32, 4)).astype(np.uint8)
    original[:16, :, 3] = 0  # hidden colour under transparent pixels
    original[16:, :, 3] = 255
    rebuilt = original.copy()
    rebuilt[:16, :, :3] = 0  # differs only where nothing is seen
    assert metrics.psnr_seen(original, rebuilt) == float("inf")
    assert metrics.ssim_seen(original, rebuilt) == 1.0
    assert metrics.psnr(original, rebuilt) < 10
    np.testing.assert_array_equal(metrics.composite(np.array([[[200, 100, 0, 51]]], np.uint8), 255), [[[244, 224, 204]]])
    assert metrics.seen(original).shape == (32, 64, 3)
    c = kmq.compress(original, 64, dither=0)
    m = c.metrics()
    seen_original, seen_rebuilt = metrics.seen(original), metrics.seen(c.reconstruct())
    assert m.psnr == pytest.approx(metrics.psnr(seen_original, seen_rebuilt))
    assert m.mse_per_channel[:3] == pytest.approx(list(metrics.mse_per_channel(seen_original, seen_rebuilt)))


# -- dithering -------------------------------------------------------------------


def gradient(h=64, w=256):
    t = np.linspace(0, 1, w)[None, :, None]
    rows = np.linspace(0.2, 1, h)[:, None, None]
    return np.rint(255 * np.concatenate([t * rows, 0.6 * t + 0 * rows, 1 - t + 0 * rows], axis=2)).astype(np.uint8)


@pytest.mark.parametrize("space", ["oklab", "rgb"])
def test_dithering_is_deterministic_and_palette_only(space):
    image = gradient()
    a = kmq.compress(image, 8, space=space, dither=1)
    b = kmq.compress(image, 8, space=space, dither=1)
    plain = kmq.compress(image, 8, space=space, dither=0)
    assert a == b
    # The same colours (their order is chosen for compression, from the labels).
    np.testing.assert_array_equal(np.unique(a.palette, axis=0), np.unique(plain.palette, axis=0))
    assert int(a.labels.max()) < len(a.palette)
    assert not np.array_equal(a.labels, plain.labels)
    # Error diffusion keeps local averages: a blurred dithered gradient is
    # nearer the blurred original than a blurred banded one.
    def blur(x):
        x = x.astype(np.float64)
        return sum(np.roll(np.roll(x, dy, 0), dx, 1) for dy in range(-2, 3) for dx in range(-2, 3))[4:-4, 4:-4] / 25

    err = {name: np.abs(blur(c.reconstruct()) - blur(image)).mean() for name, c in (("dither", a), ("plain", plain))}
    assert err["dither"] < 0.75 * err["plain"]


def test_half_dithering_lies_between():
    image = gradient()
    changed = {
        level: int((kmq.compress(image, 8, dither=level).labels != kmq.compress(image, 8, dither=0).labels).sum())
        for level in (0.5, 1.0)
    }
    assert 0 < changed[0.5] < changed[1.0]


def test_dithering_gray_and_la_images():
    image = gradient()[:, :, 0]
    c = kmq.compress(image, 4, dither=1)
    assert c.mode == "L" and set(np.unique(c.reconstruct())) <= set(c.palette[:, 0].tolist())
    la = np.dstack([image, np.full_like(image, 255)])
    la[:, :10, 1] = 0
    c = kmq.compress(la, 4, dither=1)
    out = c.reconstruct()
    assert (out[:, 10:, 1] == 255).all() and (out[:, :10] == 0).all()


# -- the same bytes every run ------------------------------------------------------


def test_same_bytes_every_run_without_a_seed(photo):
    a = kmq.compress(photo, 16).to_bytes("png")
    b = kmq.compress(photo, 16).to_bytes("png")
    assert a == b
    assert kmq.compress(photo, 16).seed == DEFAULT_SEED == 0
    assert kmq.compress(photo, 16, seed=5).to_bytes("png") != a


def test_cli_same_bytes_every_run(tmp_path, photo_png, capsys):
    for name in ("a.png", "b.png"):
        assert main(["compress", str(photo_png), "-k", "16", "-q", "-o", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert main(["compress", str(photo_png), "-k", "16", "-q", "--nofs", "-o", str(tmp_path / "c.png")]) == 0
    assert main(["compress", str(photo_png), "-k", "16", "-q", "--dither", "0", "-o", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "c.png").read_bytes() == (tmp_path / "d.png").read_bytes() != (tmp_path / "a.png").read_bytes()
    capsys.readouterr()


def _soft_masked(image):
    """The image under a soft elliptical alpha mask (arithmetic only, so
    the same on every machine)."""
    h, w = image.shape[:2]
    y, x = np.mgrid[:h, :w]
    r2 = ((y - h / 2) / (0.45 * h)) ** 2 + ((x - w / 2) / (0.45 * w)) ** 2
    return np.dstack([image, np.clip((1.2 - r2) * 600, 0, 255).astype(np.uint8)])


# What this version writes for the shipped photograph: (K asked, options)
# -> (K, digest of palette and indices, digest of the PNG file). A build on
# another compiler, processor or NumPy that fits or maps differently fails
# here; a change to the engine that is meant to change the output updates
# these pins in the same commit, and its message says so: every user's
# files change with it.
PINNED_OUTPUTS = {
    (16, ()): (16, "f9a5f89b3f6eb653", "b2a2ced77fb67dcd"),
    (64, ()): (64, "c9a2ff344a69274c", "76a9584d38c35874"),
    (64, (("space", "lab"), ("dither", 0))): (64, "e5d6de55252e1f87", "7806ecab5f7776d3"),
    (256, (("space", "rgb"),)): (256, "46860cc341702639", "4ccaff2a13d09aa3"),
    (32, (("alpha", True),)): (32, "80a0a457479e3776", "32c8833d6aaa0f10"),
    (256, (("quality", (50, 70)),)): (143, "cf8d2bb0e42df5d3", "d6549ad9d49cee68"),
}


@pytest.mark.parametrize(
    "k, options", list(PINNED_OUTPUTS), ids=["default-16", "default-64", "lab-64-nofs", "rgb-256", "alpha-32", "quality"]
)
def test_the_shipped_photograph_gives_this_versions_bytes(k, options):
    import hashlib
    import zlib

    k_out, pixels, png = PINNED_OUTPUTS[(k, options)]
    image = np.asarray(Image.open(kmq.sample_image_path()).convert("RGB"))
    options = dict(options)
    if options.pop("alpha", False):
        image = _soft_masked(image)
    c = kmq.compress(image, k, **options)
    digest = hashlib.sha256(c.palette.astype(np.uint8).tobytes())
    digest.update(c.labels.astype("<u2").tobytes())
    assert (c.k, digest.hexdigest()[:16]) == (k_out, pixels)
    if "ng" in zlib.ZLIB_RUNTIME_VERSION:  # zlib-ng's compatible build says "1.3.0.zlib-ng"
        pytest.skip(f"zlib {zlib.ZLIB_RUNTIME_VERSION} is zlib-ng: its deflate writes other PNG bytes (README)")
    assert hashlib.sha256(c.to_bytes("png")).hexdigest()[:16] == png


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--space", "xyz"], "argument --space: invalid choice: 'xyz' (choose from 'oklab', 'lab', 'rgb')"),
        (["--dither", "2"], "argument --dither: the dithering level must be from 0 to 1, got 2.0"),
        (["--dither", "-0.5"], "argument --dither: the dithering level must be from 0 to 1, got -0.5"),
        (["--dither", "x"], "argument --dither: the dithering level must be a number from 0 to 1, got 'x'"),
    ],
)
def test_cli_bad_perceptual_options(tmp_path, photo_png, capsys, argv, message):
    code = main(["compress", str(photo_png), "-o", str(tmp_path / "x.png"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"kmq: error: {message}")
    assert not (tmp_path / "x.png").exists()


# -- quality targets ---------------------------------------------------------------

from kmq._quality import QualityError, error_from_quality, quality_error, quality_from_error, ward_palettes  # noqa: E402


def test_quality_scale():
    assert quality_from_error(0.0) == 100.0
    assert quality_from_error(2.49) == pytest.approx(100 / np.e)
    assert quality_from_error(1.0) == pytest.approx(100 * np.exp(-((1 / 2.49) ** 2.17)))
    assert round(quality_from_error(1.0)) == 87 and round(quality_from_error(2.0)) == 54
    assert round(quality_from_error(3.0)) == 22 and quality_from_error(30.0) < 1e-9
    errors = np.linspace(0, 6, 61)
    assert (np.diff([quality_from_error(e) for e in errors]) < 0).all()


def test_quality_error_is_the_power_mean_of_order_3():
    assert quality_error(np.array([1.0, 1.0, 1.0])) == pytest.approx(1.0)
    # One pixel off by 3 among 26 exact ones: the mean says 0.11, order 3 says 1.
    assert quality_error(np.r_[np.zeros(26), 3.0]) == pytest.approx(1.0)
    assert quality_error(np.array([0.0, 2.0]), np.array([7.0, 1.0])) == pytest.approx(1.0)
    # A flat image with a few badly mapped pixels scores below a photograph
    # whose every pixel is off a little, though its plain mean is 3x lower.
    assert quality_from_error(quality_error(np.r_[np.zeros(90), np.full(10, 3.0)])) < quality_from_error(
        quality_error(np.full(100, 1.0))
    )


def test_ward_merges_the_cheapest_pair_first():
    centers = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [30.0, 0.0]])
    weights = np.array([1.0, 3.0, 1.0, 1.0])
    merged = ward_palettes(centers, weights)
    assert [len(m) for m in merged] == [1, 2, 3, 4]
    np.testing.assert_allclose(merged[2], [[0.75, 0.0], [10.0, 0.0], [30.0, 0.0]])
    np.testing.assert_allclose(merged[0], [[(0.75 * 4 + 10 + 30) / 6, 0.0]])


def test_error_from_quality_inverts_the_scale():
    assert error_from_quality(100) == 0.0 and error_from_quality(0) == np.inf
    assert error_from_quality(100 / np.e) == pytest.approx(2.49)
    for q in (1.0, 22.0, 54.0, 80.0, 99.5):
        assert quality_from_error(error_from_quality(q)) == pytest.approx(q)


def test_ward_costs_are_the_squared_error_the_merges_add():
    centers = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [30.0, 0.0]])
    weights = np.array([1.0, 3.0, 1.0, 1.0])
    merged, added = ward_palettes(centers, weights, return_costs=True)
    assert [len(m) for m in merged] == [1, 2, 3, 4]
    # 0 and 1 first (1 x 3 / 4 x 1^2), then 0.75 and 10 (4 x 1 / 5 x 9.25^2),
    # then the last two.
    first, second = 0.75, 4 / 5 * 9.25**2
    third = 5 * 1 / 6 * (30 - 2.6) ** 2
    np.testing.assert_allclose(added, [first + second + third, first + second, first, 0.0])
    # The sum of costs is the weighted squared error of the merged palette
    # with every centre in its merged cluster.
    points = np.repeat(centers, weights.astype(int), axis=0)
    assert ((points - merged[0][0]) ** 2).sum() == pytest.approx(added[0])


def test_quality_search_picks_the_smallest_k_reaching_the_target(photo):
    c = kmq.compress(photo, 256, quality=(0, 80), dither=0)
    assert c.quality >= 80 and 2 < c.k < 256
    assert c.quality_note.startswith(f"quality {c.quality:.0f}: {c.k} colours, the fewest reaching the target 80")
    # The measured quality is that of the output: the order-3 mean of its
    # Oklab differences.
    diff = to_space(photo.reshape(-1, 3), "oklab") - to_space(c.reconstruct().reshape(-1, 3), "oklab")
    assert c.quality == pytest.approx(quality_from_error(quality_error(np.sqrt((diff**2).sum(1)))))
    # A tenth fewer colours, fitted from scratch, fall short. (The search
    # follows merged palettes, so a full fit at K - 1 may sometimes reach
    # the target too: "fewest" is to within a colour or two.)
    fewer = kmq.compress(photo, int(c.k * 0.9), dither=0).reconstruct()
    diff = to_space(photo.reshape(-1, 3), "oklab") - to_space(fewer.reshape(-1, 3), "oklab")
    assert quality_from_error(quality_error(np.sqrt((diff**2).sum(1)))) < 80


def test_quality_search_with_alpha_keeps_the_transparent_entry():
    """A large histogram (72k colours: the search fits on its bins) under a
    soft mask: the transparent pixels keep their own entry, counted in K,
    and the quality reported is that of the palette written."""
    image = _soft_masked(np.asarray(Image.open(kmq.sample_image_path()).convert("RGB")))
    c = kmq.compress(image, 256, quality=(0, 60), dither=0)
    assert c.quality >= 60 and 2 < c.k < 256 and len(c.palette) == c.k
    assert c.quality_note.startswith(f"quality {c.quality:.0f}: {c.k} colours, the fewest reaching the target 60")
    out = c.reconstruct()
    transparent = image[..., 3] == 0
    assert (out[transparent, 3] == 0).all() and (c.labels[transparent] == c.labels[transparent][0]).all()
    opaque = image[..., 3] == 255
    assert (out[opaque, 3] == 255).mean() >= 0.99
    # The scale's error of what was written, on the Oklab points the
    # engine measures (premultiplied alpha as a coordinate).
    diff = to_space(image.reshape(-1, 4), "oklab") - to_space(out.reshape(-1, 4), "oklab")
    assert c.quality == pytest.approx(quality_from_error(quality_error(np.sqrt((diff**2).sum(1)))), abs=1e-6)


def _darkened(image, stops=5):
    """``image`` (H, W, 3) uint8 with its top two thirds ``stops`` stops
    darker in linear light (a photograph with deep shadows)."""
    srgb = image / 255.0
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    linear[: image.shape[0] * 2 // 3] /= 2.0**stops
    srgb = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.rint(srgb * 255), 0, 255).astype(np.uint8)


def test_quality_search_on_a_dark_photograph_measures_its_bins_truly():
    """A photograph with deep shadows and 39,655 colours: the search fits and
    measures on bins cut on the Oklab lightness scale, where the shadows
    are not crowded into a few sRGB bins whose scatter the order-3 mean
    cannot see. So the palette the bins chose reaches the target on the
    exact colours, or nearly: at most one more fit, and a palette a fifth
    smaller, fitted from scratch, falls short. (On sRGB bins the search
    refined 6 times and wrote 154 colours at quality 86.)"""
    image = _darkened(np.asarray(Image.open(kmq.sample_image_path()).convert("RGB")))
    assert len(np.unique(image.reshape(-1, 3), axis=0)) == 39655
    stages = []
    c = kmq.compress(image, 256, quality=(0, 80), dither=0, progress=stages.append)
    assert c.quality_note.startswith(f"quality {c.quality:.0f}: {c.k} colours, the fewest reaching the target 80")
    assert 80 <= c.quality < 82
    assert sum(s.startswith("quality search: refining") for s in stages) <= 2
    fewer = kmq.compress(image, int(c.k * 0.8), dither=0).reconstruct()
    diff = to_space(image.reshape(-1, 3), "oklab") - to_space(fewer.reshape(-1, 3), "oklab")
    assert quality_from_error(quality_error(np.sqrt((diff**2).sum(1)))) < 80


def test_quality_below_the_minimum_raises_and_writes_nothing(photo, photo_png, tmp_path, capsys):
    with pytest.raises(QualityError, match="below the minimum 99"):
        kmq.compress(photo, 4, quality=(99, 100))
    code = main(["compress", str(photo_png), "-k", "4", "--quality", "99-100", "-o", str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 99 and len(err) == 1 and err[0].startswith("kmq: error: the quality reached with 4 colours is")
    assert not (tmp_path / "x.png").exists()


def test_a_hopeless_quality_minimum_is_given_up_before_refining(sample_pixels):
    """The shipped photograph (72,079 colours: the search fits on bins, then
    refines on the exact colours). Far below the minimum at the largest K,
    the search stops before the refinement (which lowers the error by a
    few per cent at most); close to it, it refines first, and judges the
    refined palette."""
    stages = []
    with pytest.raises(QualityError, match=r"^the quality reached with 32 colours is \d+, below the minimum 90; nothing written$"):
        kmq.compress(sample_pixels, 32, quality=(90, 100), dither=0, progress=stages.append)
    assert "quality search: K=32 (measurement 2)" in stages
    assert not any(s.startswith("quality search: refining") for s in stages)
    stages = []
    reached = kmq.compress(sample_pixels, 32, quality=(0, 100), dither=0, progress=stages.append)
    assert stages[-2:] == ["quality search: refining K=32", "quality search: K=32 (measurement 3)"]
    assert 10 < reached.quality < 30
    assert kmq.compress(sample_pixels, 32, quality=(reached.quality - 0.5, 100), dither=0) == reached
    with pytest.raises(QualityError, match=rf"with 32 colours is {reached.quality:.0f}, below the minimum"):
        kmq.compress(sample_pixels, 32, quality=(reached.quality + 0.5, 100), dither=0)


def test_quality_search_keeps_the_small_shapes_of_a_graphic():
    """20 small squares of distinct colours on a flat background: 3 colours
    leave a plain mean error under 1 ΔEok x 100 (most pixels are exact), but
    the order-3 mean sees the squares, so quality 80 takes all 21 colours."""
    image = np.full((200, 200, 3), 250, np.uint8)
    rng = np.random.default_rng(3)
    for i in range(20):
        y, x = divmod(i, 5)
        image[20 + y * 40 : 30 + y * 40, 15 + x * 38 : 25 + x * 38] = rng.integers(0, 256, 3)
    c = kmq.compress(image, 256, quality=(0, 80), dither=0)
    assert c.k == 21 and c.quality == 100.0
    np.testing.assert_array_equal(c.reconstruct(), image)
    three = kmq.compress(image, 3, dither=0).reconstruct()
    diff = to_space(image.reshape(-1, 3), "oklab") - to_space(three.reshape(-1, 3), "oklab")
    e = np.sqrt((diff**2).sum(1))
    assert e.mean() < 1.0 and quality_from_error(quality_error(e)) < 5


@pytest.mark.parametrize("tol", [None, -1.0, "x"])
def test_quality_search_with_a_bad_tol_is_a_usage_error(photo, tol):
    for quality in (None, (0, 80)):
        with pytest.raises(kmq.UsageError, match=f"^tol must be a number >= 0, got {re.escape(repr(tol))}$"):
            kmq.compress(photo, 8, tol=tol, quality=quality)


def test_quality_range_not_reached_uses_the_most_colours(photo):
    c = kmq.compress(photo, 4, quality=(0, 100), dither=0)
    assert c.k == 4 and "the most allowed" in c.quality_note
    # Past the first fit (32 colours), quality 100 goes straight to the most.
    stages = []
    c = kmq.compress(photo, 64, quality=(0, 100), dither=0, progress=stages.append)
    assert c.k == 64 and "the most allowed" in c.quality_note
    assert [s for s in stages if "k-means" in s] == ["quality search: k-means K=32", "quality search: k-means K=64"]


def test_cli_quality_reports_the_k(photo_png, tmp_path, capsys):
    code = main(["compress", str(photo_png), "--quality", "60-80", "--json", "-o", str(tmp_path / "q.png")])
    out = capsys.readouterr().out
    import json

    (report,) = json.loads(out)  # --json prints a list, one report per input
    assert code == 0 and report["quality"] >= 80 and report["k"] <= 256
    assert any(note.startswith(f"quality {report['quality']:.0f}: {report['k']} colours") for note in report["notes"])


@pytest.mark.parametrize("speed", ["1", "4", "11"])
def test_cli_speed_levels_run(photo_png, tmp_path, capsys, speed):
    assert main(["compress", str(photo_png), "-k", "8", "--speed", speed, "-q", "-o", str(tmp_path / "s.png")]) == 0
    assert len(Image.open(tmp_path / "s.png").getcolors()) <= 8


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--quality", "80-60"], "argument --quality: the minimum must not exceed the maximum (expected MIN-MAX with 0 <= MIN <= MAX <= 100), got '80-60'"),
        (["--quality", "0-120"], "argument --quality: quality values must be from 0 to 100"),
        (["--quality=-5-50"], "argument --quality: expected MIN-MAX with 0 <= MIN <= MAX <= 100, got '-5-50'"),
        (["--speed", "0"], "argument --speed: the speed must be from 1 to 11, got 0"),
        (["--speed", "12"], "argument --speed: the speed must be from 1 to 11, got 12"),
    ],
)
def test_cli_bad_quality_and_speed(tmp_path, photo_png, capsys, argv, message):
    code = main(["compress", str(photo_png), "-o", str(tmp_path / "x.png"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"kmq: error: {message}")
    assert not (tmp_path / "x.png").exists()


def test_api_bad_quality():
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(kmq.UsageError, match="quality minimum must not exceed the maximum"):
        kmq.compress(image, 4, quality=(80, 60))
    with pytest.raises(kmq.UsageError, match="quality values must be from 0 to 100"):
        kmq.compress(image, 4, quality=(0, 101))


@pytest.mark.parametrize("k, scale", [(8, 1.0), (32, 1.25)])
def test_the_settle_bound_is_in_the_working_spaces_units(monkeypatch, masked_photo, photo, k, scale):
    """With alpha, a pixel whose received error is within DITHER_SETTLE of
    the grid's cell keeps its entry; in "oklab-chroma" (here 32 colours)
    colour errors are up to 1.25 times longer, and so is that bound.
    Without alpha nothing settles."""
    from kmq import _quantize

    seen = []
    real = _quantize.dither_labels

    def spy(*args, **kwargs):
        seen.append((args[4], kwargs["cell"], kwargs["settle"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(_quantize, "dither_labels", spy)
    kmq.compress(masked_photo, k, seed=0)
    kmq.compress(photo, k, seed=0)
    (search, cell, settle), (_, _, no_alpha) = seen
    assert cell == _quantize._dither_cell(search) and 0.25 <= cell <= 1.0
    assert settle == pytest.approx(_quantize.DITHER_SETTLE * cell * scale, rel=1e-12)
    assert no_alpha == 0.0


def test_dark_settle_bounds():
    """Each colour's bound: DITHER_DARK_SETTLE x (r - 1) where Oklab's
    lightness grows r times faster than CIELAB's (r = 369.02 / L^2 in
    CIELAB's toe), capped; none for light colours, translucent ones, or the
    RGB and CIELAB spaces."""
    from kmq._quantize import _DARK_SETTLE_MAX, _TOE_RATIO, _dark_settle

    assert _TOE_RATIO == pytest.approx(369.0188, abs=1e-4)
    greys = np.array([[0, 0, 0], [10, 10, 10], [20, 20, 20], [21, 21, 21], [200, 200, 200]], np.uint8)
    points = to_space(greys, "oklab")
    bound = _dark_settle(points, greys, "oklab")
    lightness = points[:, 0]
    assert lightness[1] == pytest.approx(14.48, abs=0.01)
    np.testing.assert_allclose(bound, [_DARK_SETTLE_MAX, _TOE_RATIO / lightness[1] ** 2 - 1, _TOE_RATIO / lightness[2] ** 2 - 1, 0, 0])
    assert bound[1] == pytest.approx(0.760, abs=1e-3) and 0 < bound[2] < 0.1
    assert _dark_settle(to_space(greys, "oklab-chroma"), greys, "oklab-chroma") == pytest.approx(bound)
    assert _dark_settle(to_space(greys, "lab"), greys, "lab") is None
    assert _dark_settle(to_space(greys, "rgb"), greys, "rgb") is None
    assert _dark_settle(points[3:], greys[3:], "oklab") is None
    rgba = np.array([[10, 10, 10, 255], [10, 10, 10, 128], [0, 0, 0, 0]], np.uint8)
    np.testing.assert_allclose(_dark_settle(to_space(rgba, "oklab"), rgba, "oklab"), [bound[1], 0, 0])


def _dark_gradient(lift=0):
    """A night-sky gradient, sRGB levels 0-33 with sensor noise (923
    colours), ``lift`` levels lighter: (96, 160, 3) uint8."""
    rng = np.random.default_rng(0)
    base = np.linspace(3, 20, 160)[None, :, None] + np.linspace(0, 4, 96)[:, None, None]
    noisy = base * np.array([1.0, 1.05, 1.3]) + rng.normal(0, 0.8, (96, 160, 3)) + lift
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def test_dark_colours_settle_while_light_ones_dither_as_before(monkeypatch):
    """At 32 colours the dark gradient's entries are a fraction of a visible
    step apart: with the dark bound 90 % of its pixels keep their
    undithered colour (76 % without it) and the PNG is smaller; the same
    gradient made light is dithered exactly as without the bound."""
    from kmq import _quantize

    def run(image, weight):
        monkeypatch.setattr(_quantize, "DITHER_DARK_SETTLE", weight)
        dithered = kmq.compress(image, 32, seed=0)
        plain = kmq.compress(image, 32, seed=0, dither=0)
        buffer = io.BytesIO()
        dithered.save(buffer, format="png")
        same = (dithered.reconstruct() == plain.reconstruct()).all(-1).mean()
        return dithered.reconstruct(), float(same), len(buffer.getvalue())

    dark = _dark_gradient()
    _, kept, size = run(dark, 1.0)
    _, kept_without, size_without = run(dark, 0.0)
    assert kept == pytest.approx(0.900, abs=0.005) and kept_without == pytest.approx(0.765, abs=0.005)
    assert size < size_without
    light = _dark_gradient(lift=150)
    with_bound, light_kept, light_size = run(light, 1.0)
    without, _, light_size_without = run(light, 0.0)
    assert light_kept < 0.9  # it is dithered
    np.testing.assert_array_equal(with_bound, without)
    assert light_size == light_size_without
