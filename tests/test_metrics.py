"""kmq.metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

import kmq
from kmq import metrics


A = np.array([[[0, 0, 0], [10, 20, 30]]], np.uint8)
B = np.array([[[1, 0, 2], [10, 18, 30]]], np.uint8)


def test_mse_per_channel_and_distortion():
    # Channel errors: R (1, 0) -> 0.5; G (0, 4) -> 2; B (4, 0) -> 2.
    assert metrics.mse_per_channel(A, B).tolist() == [0.5, 2.0, 2.0]
    assert metrics.mse(A, B) == pytest.approx(1.5)
    # J: squared colour distances 5 and 4 per pixel -> mean 4.5 = 3 * MSE.
    assert metrics.distortion(A, B) == 4.5


def test_psnr():
    assert metrics.psnr(A, B) == pytest.approx(10 * math.log10(255**2 / 1.5))
    assert metrics.psnr(A, A) == math.inf


def test_ssim():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert metrics.ssim(image, image) == 1.0
    noisy = np.clip(image.astype(int) + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8)
    value = metrics.ssim(image, noisy)
    assert 0 < value < 1
    assert metrics.ssim(image[:4, :4], noisy[:4, :4]) is not None  # smaller window
    assert metrics.ssim(image[:2, :2], noisy[:2, :2]) is None  # undefined


@pytest.mark.parametrize("k, bits", [(1, 0), (2, 1), (3, 2), (4, 2), (16, 4), (17, 5), (256, 8), (257, 9), (65536, 16)])
def test_index_bits(k, bits):
    assert metrics.index_bits(k) == bits


def test_compression_ratio_is_the_tutorials_formula():
    n, k = 512 * 768, 16
    assert metrics.compression_ratio(n, k) == (n * 4 + 24 * 16) / (24 * n)
    assert metrics.compression_ratio(100, 256) == (100 * 8 + 24 * 256) / 2400
    # Grayscale: 8 bits per raw pixel and per palette entry.
    assert metrics.compression_ratio(100, 4, channels=1) == (100 * 2 + 8 * 4) / 800


def test_shape_mismatch():
    with pytest.raises(ValueError, match=r"images differ in shape"):
        metrics.mse(A, B[:, :1])


# -- kmq's own SSIM and PSNR against scikit-image's (the reference) -------------


def _reference_pairs(sample_pixels):
    """(original, quantized) pairs of several shapes and channel counts."""
    rebuilt = kmq_compress_reconstruct(sample_pixels, 16)
    yield sample_pixels, rebuilt                                   # RGB, 512 x 768
    yield sample_pixels[:, :, 0], rebuilt[:, :, 0]                 # grey
    yield sample_pixels[100:201, 300:337], rebuilt[100:201, 300:337]  # odd sizes
    yield sample_pixels[:5, :9], rebuilt[:5, :9]                   # window 5
    rgba_a = np.dstack([sample_pixels[:64, :80], np.full((64, 80), 255, np.uint8)])
    rgba_b = np.dstack([rebuilt[:64, :80], np.arange(64 * 80, dtype=np.uint8).reshape(64, 80)])
    yield rgba_a, rgba_b                                           # four channels


def kmq_compress_reconstruct(pixels, k):
    import kmq

    return kmq.compress(pixels, k, seed=0).reconstruct()


def test_ssim_and_psnr_equal_scikit_images(sample_pixels):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    for original, rebuilt in _reference_pairs(sample_pixels):
        side = min(original.shape[:2])
        win = min(7, side if side % 2 else side - 1)
        channel_axis = 2 if original.ndim == 3 else None
        expected = structural_similarity(original, rebuilt, data_range=255, channel_axis=channel_axis, win_size=win)
        assert metrics.ssim(original, rebuilt) == pytest.approx(expected, abs=1e-9), original.shape
        assert metrics.psnr(original, rebuilt) == pytest.approx(peak_signal_noise_ratio(original, rebuilt, data_range=255), abs=1e-9)


def test_ssim_is_the_same_on_one_thread_and_several(sample_pixels, monkeypatch):
    from kmq._engine import _parallel

    rebuilt = kmq_compress_reconstruct(sample_pixels, 8)
    monkeypatch.setattr(_parallel, "_thread_limit", 1)
    one = metrics.ssim(sample_pixels, rebuilt)
    monkeypatch.setattr(_parallel, "_thread_limit", 4)
    several = metrics.ssim(sample_pixels, rebuilt)
    assert several == one  # same row ranges, summed in the same order


# -- the perceptual error ---------------------------------------------------------


def _oklab(colors):
    """(M, C) uint8 -> Oklab x 100 through the engine's conversion (the reference)."""
    from kmq._engine.colorspace import to_space

    colors = np.asarray(colors, np.uint8)
    return to_space(colors.reshape(-1, colors.shape[-1]), "oklab")


def _reference_error(original, reconstructed, sigma_l, sigma_c):
    """The definition with scipy's Gaussian filter (mode "reflect", cut at
    4 sigma): Oklab difference, blurred channel by channel, its length
    averaged. (H, W, 1|3) uint8 images."""
    from scipy.ndimage import gaussian_filter

    height, width, channels = original.shape
    diff = (_oklab(original) - _oklab(reconstructed)).reshape(height, width, channels)
    for c in range(channels):
        sigma = sigma_l if c == 0 else sigma_c
        if sigma > 0:
            diff[:, :, c] = gaussian_filter(diff[:, :, c], sigma, mode="reflect", truncate=4.0)
    return float(np.sqrt((diff * diff).sum(axis=2)).mean())


SIGMAS = (metrics.PERCEPTUAL_SIGMA_LIGHTNESS, metrics.PERCEPTUAL_SIGMA_CHROMA)


def test_perceptual_error_of_identical_images_is_zero():
    rng = np.random.default_rng(0)
    for shape in [(9, 7), (9, 7, 1), (9, 7, 2), (9, 7, 3), (9, 7, 4)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        assert metrics.perceptual_error(image, image) == 0.0
        assert metrics.perceptual_score(image, image) == 100.0
        assert type(metrics.perceptual_error(image, image)) is float


def test_white_against_black_is_100():
    # Oklab's lightness runs 0 (black) to 1 (white), its a and b are 0 on
    # grays: x 100, white and black differ by 100; the blur of a uniform
    # difference is that difference.
    white = np.full((6, 5, 3), 255, np.uint8)
    black = np.zeros((6, 5, 3), np.uint8)
    assert metrics.perceptual_error(white, black) == pytest.approx(100.0, abs=1e-6)
    assert metrics.perceptual_error(white[:, :, 0], black[:, :, 0]) == pytest.approx(100.0, abs=1e-6)
    assert metrics.perceptual_score(white, black) == 0.0


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 40), (37, 23)])
def test_a_uniform_difference_is_its_delta_e(shape):
    # However small the image against the blur (the reflection folds more
    # than once on 1 x 1 and 2 x 3), a uniform difference stays uniform.
    pairs = [((200, 30, 90), (180, 60, 80)), ((10, 10, 10), (12, 10, 9)), ((0, 0, 255), (255, 255, 0))]
    for first, second in pairs:
        a = np.broadcast_to(np.array(first, np.uint8), (*shape, 3))
        b = np.broadcast_to(np.array(second, np.uint8), (*shape, 3))
        expected = float(np.linalg.norm(_oklab([first]) - _oklab([second])))
        assert metrics.perceptual_error(a, b) == pytest.approx(expected, rel=1e-12)
        assert metrics.perceptual_score(a, b) == pytest.approx(100.0 * np.exp(-((expected / 1.81) ** 2.2)), rel=1e-12)


def test_small_offset_scores_on_the_quality_scale():
    # Gray 118 against 119: ΔEok x 100 is 0.326..., scored as kmq._quality maps it.
    a = np.full((8, 8), 118, np.uint8)
    b = np.full((8, 8), 119, np.uint8)
    expected = abs(float(_oklab([[118]])[0, 0] - _oklab([[119]])[0, 0]))
    assert 0.3 < expected < 0.35
    assert metrics.perceptual_error(a, b) == pytest.approx(expected, rel=1e-12)
    assert metrics.perceptual_score(a, b) == pytest.approx(100.0 * np.exp(-((expected / 1.81) ** 2.2)), rel=1e-12)


def test_compiled_oklab_equals_the_engines():
    # One pixel against black, no blur: the distance of each colour's Oklab
    # from black's, for all gray levels and a spread of colours.
    rng = np.random.default_rng(1)
    colors = np.concatenate([np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1), rng.integers(0, 256, (300, 3), dtype=np.uint8)])
    black = np.zeros((1, 1, 3), np.uint8)
    reference = np.linalg.norm(_oklab(colors) - _oklab(black), axis=1)
    for color, expected in zip(colors, reference):
        got = metrics._perceptual_error(color.reshape(1, 1, 3), black, 0.0, 0.0)
        assert got == pytest.approx(expected, rel=1e-13, abs=1e-13), color
    grays = np.arange(256, dtype=np.uint8)
    assert metrics._perceptual_error(grays[None, :], np.zeros((1, 256), np.uint8), 0.0, 0.0) == pytest.approx(
        float(np.abs(_oklab(grays[:, None])[:, 0] - _oklab([[0]])[0, 0]).mean()), rel=1e-13
    )


@pytest.mark.parametrize("sigmas", [SIGMAS, (0.0, 0.0), (1.7, 0.0), (0.4, 5.7), (3.0, 12.0)])
def test_perceptual_error_equals_the_definition(sigmas):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (41, 57, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    b[:5, :9] = a[:5, :9]  # some pixels equal (they are skipped)
    assert metrics._perceptual_error(a, b, *sigmas) == pytest.approx(_reference_error(a, b, *sigmas), rel=1e-12)
    gray_a, gray_b = a[:, :, :1], b[:, :, :1]
    assert metrics._perceptual_error(gray_a, gray_b, *sigmas) == pytest.approx(
        _reference_error(gray_a, gray_b, *sigmas), rel=1e-12
    )


def test_default_widths_are_perceptual_error():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert metrics.perceptual_error(a, b) == metrics._perceptual_error(a, b, *SIGMAS)


def test_a_checkerboard_is_seen_as_its_average():
    # Two grays alternating pixel by pixel against the gray between them
    # (in Oklab lightness): per pixel every dot is off by ~10 units, but the
    # eye, and the blur, see the average.
    light, dark = 160, 100
    middle = int(np.argmin(np.abs(_oklab(np.arange(256)[:, None])[:, 0] - 0.5 * (_oklab([[light]])[0, 0] + _oklab([[dark]])[0, 0]))))
    y, x = np.indices((32, 48))
    checker = np.where((x + y) % 2 == 0, light, dark).astype(np.uint8)
    flat = np.full_like(checker, middle)
    rgb = np.repeat(checker[:, :, None], 3, 2), np.repeat(flat[:, :, None], 3, 2)
    per_pixel = metrics._perceptual_error(flat, checker, 0.0, 0.0)
    assert per_pixel > 9.0
    seen = metrics.perceptual_error(flat, checker)
    assert seen < per_pixel / 10
    assert seen == pytest.approx(_reference_error(flat[:, :, None], checker[:, :, None], *SIGMAS), rel=1e-12)
    # The same grays as RGB: Oklab's matrices give grays a and b of ~1e-8.
    assert metrics.perceptual_error(rgb[1], rgb[0]) == pytest.approx(seen, rel=1e-6)
    # A colour checkerboard too: red and green dots against their Oklab mean.
    colors = np.array([[220, 40, 40], [40, 180, 40]], np.uint8)
    dots = colors[(x + y) % 2]
    mean_lab = _oklab(colors).mean(axis=0)
    nearest = np.argmin(np.linalg.norm(_oklab(_all_colors_sample()) - mean_lab, axis=1))
    average = np.broadcast_to(_all_colors_sample()[nearest], dots.shape)
    assert metrics.perceptual_error(average, dots) < metrics._perceptual_error(average, dots, 0.0, 0.0) / 4
    # Coarser dots (4 x 4 pixel squares) are seen as such, not averaged away.
    squares = colors[(x // 4 + y // 4) % 2]
    assert metrics._perceptual_error(average, squares, 0.0, 0.0) == pytest.approx(metrics._perceptual_error(average, dots, 0.0, 0.0))
    assert metrics.perceptual_error(average, squares) > 2 * metrics.perceptual_error(average, dots)
    assert metrics.perceptual_score(average, dots) > metrics.perceptual_score(average, squares)


def _all_colors_sample():
    """Every sRGB colour on a grid of step 5, (52^3, 3) uint8."""
    levels = np.arange(0, 256, 5, dtype=np.uint8)
    return np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)


def test_alpha_hidden_colour_does_not_count():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (16, 20, 4), dtype=np.uint8)
    a[:, :10, 3] = 0  # transparent on the left
    b = a.copy()
    b[:, :10, :3] = rng.integers(0, 256, (16, 10, 3), dtype=np.uint8)  # other hidden colour
    assert metrics.perceptual_error(a, b) == 0.0
    assert metrics.perceptual_score(a, b) == 100.0
    la_a, la_b = a[:, :, [0, 3]], b[:, :, [0, 3]]
    assert metrics.perceptual_error(la_a, la_b) == 0.0
    # Seen colour that differs counts: the mean over black and white composites.
    b[:, 10:, :3] = 255 - b[:, 10:, :3]
    expected = 0.5 * sum(
        _reference_error(metrics.composite(a, bg), metrics.composite(b, bg), *SIGMAS) for bg in (0, 255)
    )
    assert metrics.perceptual_error(a, b) == pytest.approx(expected, rel=1e-12)
    # A pixel made fully transparent shows the background: it counts.
    c = a.copy()
    c[:, 10:, 3] = 0
    assert metrics.perceptual_error(a, c) > 1.0


def test_perceptual_error_takes_floats_and_shapes():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)
    expected = metrics.perceptual_error(a, b)
    assert metrics.perceptual_error(a / 255.0, b) == pytest.approx(expected, rel=1e-12)
    assert metrics.perceptual_error(a.astype(np.float64), b.astype(np.int32)) == pytest.approx(expected, rel=1e-12)
    # (H, W) is (H, W, 1); a non-contiguous view is measured as its copy.
    assert metrics.perceptual_error(a[:, :, 0], b[:, :, 0]) == metrics.perceptual_error(a[:, :, :1], b[:, :, :1])
    assert metrics.perceptual_error(a[::2, ::-1], b[::2, ::-1]) == metrics.perceptual_error(
        np.ascontiguousarray(a[::2, ::-1]), np.ascontiguousarray(b[::2, ::-1])
    )


def test_perceptual_error_refuses_bad_input():
    a = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(kmq.UsageError, match=r"images differ in shape: \(4, 5, 3\) vs \(4, 4, 3\)"):
        metrics.perceptual_error(a, a[:, :4])
    with pytest.raises(ValueError, match=r"images differ in shape"):
        metrics.perceptual_score(a, a[:, :, :1])
    with pytest.raises(kmq.UsageError, match=r"1 to 4 channels\), got 5 channels"):
        metrics.perceptual_error(np.zeros((4, 5, 5), np.uint8), np.zeros((4, 5, 5), np.uint8))
    with pytest.raises(kmq.UsageError, match=r"without pixels is undefined, got shape \(0, 5, 3\)"):
        metrics.perceptual_error(a[:0], a[:0])
    with pytest.raises(kmq.UsageError, match=r"NaN or infinity"):
        metrics.perceptual_error(np.full((2, 2), np.nan), np.zeros((2, 2)))
    with pytest.raises(kmq.UsageError, match=r"must be a number >= 0"):
        metrics._perceptual_error(a, a, -1.0, 1.0)


def test_perceptual_error_is_the_same_on_one_thread_and_several(sample_pixels, monkeypatch):
    from kmq._engine import _parallel

    rebuilt = kmq_compress_reconstruct(sample_pixels, 8)
    # Twice as tall: tall enough for three row ranges on four cores.
    original, rebuilt = np.concatenate([sample_pixels, sample_pixels[::-1]]), np.concatenate([rebuilt, rebuilt[::-1]])
    calls = []
    real = metrics._metrics.perceptual_rows
    monkeypatch.setattr(metrics._metrics, "perceptual_rows", lambda *args: calls.append(args[4:6]) or real(*args))
    monkeypatch.setattr(_parallel, "_thread_limit", 1)
    one = metrics.perceptual_error(original, rebuilt)
    on_one = sorted(calls)
    # The row ranges are fixed by the image, not the cores: contiguous, all rows.
    assert len(on_one) > 1 and on_one[0][0] == 0 and on_one[-1][1] == 1024
    assert all(a[1] == b[0] for a, b in zip(on_one, on_one[1:]))
    calls.clear()
    monkeypatch.setattr(_parallel, "_thread_limit", 4)
    several = metrics.perceptual_error(original, rebuilt)
    assert sorted(calls) == on_one
    assert several == one  # summed in range order: bit for bit
    assert one > 0


def test_dithering_is_credited(sample_pixels):
    # Per-pixel ΔE says dithering makes K = 16 worse; after the eye's blur
    # it is better (as SSIMULACRA2 says, docs/benchmarks.md).
    import kmq

    plain = kmq.compress(sample_pixels, 16, seed=0, dither=0).reconstruct()
    dithered = kmq.compress(sample_pixels, 16, seed=0).reconstruct()
    assert metrics._perceptual_error(sample_pixels, dithered, 0, 0) > metrics._perceptual_error(sample_pixels, plain, 0, 0)
    assert metrics.perceptual_error(sample_pixels, dithered) < metrics.perceptual_error(sample_pixels, plain)


def test_measure_reports_the_perceptual_metric(photo):
    rgba = np.dstack([photo, np.tile(np.arange(0, 256, 2, dtype=np.uint8), (96, 1))])
    for image in (photo, photo[:, :, 0], rgba):
        c = kmq.compress(image, 8, seed=0)
        m = c.metrics(with_ssim=False)
        rebuilt = c.reconstruct().reshape(image.shape)
        assert m.perceptual_error == metrics.perceptual_error(image, rebuilt) > 0
        assert m.perceptual_score == metrics.perceptual_score(image, rebuilt) < 100
        record = m.as_dict()
        assert record["perceptual_error"] == m.perceptual_error and record["perceptual_score"] == m.perceptual_score
        assert list(record).index("perceptual_error") == list(record).index("ssim") + 1


def test_measure_gives_the_figures_of_the_metric_functions(photo):
    rgba = np.dstack([photo, np.tile(np.arange(0, 256, 2, dtype=np.uint8), (96, 1))])
    for image in (photo, photo[:, :, 0], rgba):
        c = kmq.compress(image, 8, seed=0)
        m = c.metrics()
        rebuilt = c.reconstruct().reshape(image.shape)
        if image.ndim == 3 and image.shape[2] == 4:
            assert m.psnr == metrics.psnr_seen(image, rebuilt)
            assert m.ssim == metrics.ssim_seen(image, rebuilt)
            assert m.mse_per_channel == [float(v) for v in metrics._mse_seen(image, rebuilt)]
        else:
            assert m.psnr == metrics.psnr(image, rebuilt)
            assert m.ssim == metrics.ssim(image, rebuilt)
            assert m.mse_per_channel == [float(v) for v in metrics.mse_per_channel(image, rebuilt)]
            assert m.mse == metrics.mse(image, rebuilt)


def _composite_by_formula(image, background):
    """The composite's definition, pixel by pixel in float64:
    round(colour * a + background * (1 - a)), a = alpha / 255, half to even."""
    alpha = image[:, :, -1:].astype(np.float64) / 255.0
    return np.rint(image[:, :, :-1].astype(np.float64) * alpha + float(background) * (1.0 - alpha)).astype(np.uint8)


@pytest.mark.parametrize("background", [0, 255, 127, 3])
def test_composite_equals_its_formula_for_every_colour_and_alpha(background):
    # Every (level, alpha) pair once: the compiled table read must give the
    # formula's bits, rounding ties included.
    alpha, level = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    rgba = np.stack([level, level[::-1], 255 - level, alpha], axis=2).astype(np.uint8)
    la = np.stack([level, alpha], axis=2).astype(np.uint8)
    np.testing.assert_array_equal(metrics.composite(rgba, background), _composite_by_formula(rgba, background))
    np.testing.assert_array_equal(metrics.composite(la, background), _composite_by_formula(la, background))
    assert metrics.composite(rgba, background).shape == (256, 256, 3)
    assert metrics.composite(la, background).shape == (256, 256, 1)


def test_seen_puts_the_black_and_white_composites_side_by_side():
    rng = np.random.default_rng(13)
    image = rng.integers(0, 256, (37, 23, 4), dtype=np.uint8)
    seen = metrics.seen(image)
    assert seen.shape == (37, 46, 3) and seen.dtype == np.uint8
    np.testing.assert_array_equal(seen[:, :23], _composite_by_formula(image, 0))
    np.testing.assert_array_equal(seen[:, 23:], _composite_by_formula(image, 255))
    # Float input keeps the float path, with the same result.
    np.testing.assert_array_equal(metrics.composite(image.astype(np.float64), 255), _composite_by_formula(image, 255))


@pytest.mark.parametrize("shape", [(0, 5, 4), (5, 0, 4), (0, 0, 2)])
def test_composite_of_an_empty_image_is_empty(shape):
    image = np.zeros(shape, np.uint8)
    assert metrics.composite(image, 255).shape == (*shape[:2], shape[2] - 1)
    assert metrics.seen(image).shape == (shape[0], 2 * shape[1], shape[2] - 1)


# -- alpha kept ------------------------------------------------------------------


def test_alpha_kept_counts_exact_alpha_only():
    original = np.zeros((2, 4, 4), np.uint8)
    original[0, :, 3] = 255  # 4 opaque pixels
    original[1, :2, 3] = 0  # 2 transparent
    original[1, 2:, 3] = 128  # 2 translucent: neither kind
    result = original.copy()
    result[0, 0, 3] = 254  # one opaque pixel lets the page through
    result[1, 2:, 3] = 0  # translucent ones may change freely
    assert metrics.alpha_kept(original, result) == (0.75, 1.0)
    result[1, 0, 3] = 2
    assert metrics.alpha_kept(original, result) == (0.75, 0.5)
    # Float images in [0, 1], as for the other metrics.
    assert metrics.alpha_kept(original / 255.0, result / 255.0) == (0.75, 0.5)
    # Any size: rows are counted in ranges on several threads.
    tall_original, tall_result = np.tile(original, (40000, 1, 1)), np.tile(result, (40000, 1, 1))
    assert metrics.alpha_kept(tall_original, tall_result) == (0.75, 0.5)
    # LA images too; a kind with no pixel is None, not 0 or 1.
    la = np.full((3, 3, 2), 255, np.uint8)
    assert metrics.alpha_kept(la, la) == (1.0, None)
    la[:, :, 1] = 7
    assert metrics.alpha_kept(la, la) == (None, None)
    empty = np.zeros((3, 0, 4), np.uint8)
    assert metrics.alpha_kept(empty, empty) == (None, None)


def test_alpha_kept_needs_alpha():
    rgb = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(kmq.UsageError, match=r"alpha_kept needs images with alpha, \(H, W, 2\) or \(H, W, 4\); got shape \(2, 2, 3\)"):
        metrics.alpha_kept(rgb, rgb)
    with pytest.raises(kmq.UsageError, match="images differ in shape"):
        metrics.alpha_kept(np.zeros((2, 2, 4), np.uint8), np.zeros((2, 3, 4), np.uint8))


def test_measure_reports_the_alpha_kept(photo):
    h, w = photo.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    alpha = np.clip((1.0 - np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))) * 4 * 255, 0, 255).astype(np.uint8)
    rgba = np.dstack([photo, alpha])
    c = kmq.compress(rgba, 16)
    m = c.metrics()
    assert (m.opaque_kept, m.transparent_kept) == metrics.alpha_kept(rgba, c.reconstruct())
    # kmq's promise, as the report states it.
    assert m.opaque_kept >= 0.99 and m.transparent_kept == 1.0
    record = m.as_dict()
    assert record["opaque_kept"] == m.opaque_kept and record["transparent_kept"] == 1.0
    plain = kmq.compress(photo, 16).metrics()
    assert plain.opaque_kept is None and plain.transparent_kept is None
