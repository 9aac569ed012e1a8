"""kmq.metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: 1)
    one = metrics.ssim(sample_pixels, rebuilt)
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: 4)
    several = metrics.ssim(sample_pixels, rebuilt)
    assert several == pytest.approx(one, abs=1e-12)
