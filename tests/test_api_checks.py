"""The Python API checks what it is given: each bad argument is a
UsageError with a message, never an IndexError, NaN centres or inf."""

from __future__ import annotations

import io

import numpy as np
import pytest

import kmq
from kmq import ColorQuantizer, KMeans, UsageError, kmeans_plusplus


def test_kmeans_plusplus_with_fewer_points_than_clusters():
    with pytest.raises(UsageError, match=r"n_clusters=5 is larger than the number of points, 3"):
        kmeans_plusplus(np.zeros((3, 2)), 5, random_state=0)


def test_kmeans_init_with_nan_is_refused():
    init = np.array([[0.0, 0.0], [np.nan, 1.0]])
    with pytest.raises(UsageError, match=r"init array of centres contains NaN or infinity"):
        KMeans(2, init=init).fit(np.arange(8.0).reshape(4, 2))


@pytest.mark.parametrize("value", [1e308, -1e308])
def test_points_too_large_for_squared_distances(value):
    X = np.array([[0.0, 0.0], [value, 0.0], [1.0, 1.0]])
    with pytest.raises(UsageError, match=r"squared distances would overflow"):
        KMeans(2, random_state=0).fit(X)
    with pytest.raises(UsageError, match=r"squared distances would overflow"):
        kmeans_plusplus(X, 2, random_state=0)


def test_inverse_transform_refuses_negative_labels():
    q = ColorQuantizer(2, seed=0).fit(np.array([[[0, 0, 0], [200, 200, 200]]], np.uint8))
    with pytest.raises(UsageError, match=r"labels hold index -1: palette indices are 0\.\.1"):
        q.inverse_transform(np.array([[0, -1]]))


@pytest.mark.parametrize("limit", [0, -5])
def test_max_pixels_zero_or_negative_is_a_usage_error(limit, photo):
    with pytest.raises(UsageError, match=rf"max_pixels must be a whole number >= 1, or None for no limit, got {limit}"):
        kmq.compress(photo, 4, max_pixels=limit)
    assert kmq.compress(photo, 4, seed=0, max_pixels=None).k == 4


def test_float_images_in_0_1_are_scaled(photo):
    as_float = photo / 255.0  # what matplotlib's imread gives for a PNG
    c = kmq.compress(as_float, 8, seed=0)
    assert c == kmq.compress(photo, 8, seed=0)
    assert "floating-point image in [0, 1] scaled to 0..255" in c.source.notes
    q = ColorQuantizer(8, seed=0).fit(as_float.astype(np.float32))
    # The palette order is chosen for compression by compress(), not by fit().
    np.testing.assert_array_equal(np.unique(q.palette_, axis=0), np.unique(c.palette, axis=0))


def test_float_scaling_rounds_to_nearest():
    # 10.6 / 255 rounds up to 11 (truncation would give 10).
    assert kmq.compress(np.full((2, 2, 3), 10.6 / 255), 1).palette.tolist() == [[11, 11, 11]]
    grey = kmq.compress(np.array([[0.0, 0.2, 1.0]]).reshape(1, 3, 1), 3)
    assert sorted(grey.palette[:, 0].tolist()) == [0, 51, 255]


def test_points_array_points_to_kmeans():
    with pytest.raises(UsageError, match=r"list of 3-D points, not an image; cluster points with kmq\.KMeans"):
        kmq.compress(np.zeros((100, 3), np.uint8), 4)


def test_save_to_a_file_object_and_metrics_after_save(tmp_path, photo):
    c = kmq.compress(photo, 8, seed=0)
    assert c.metrics().output_bytes is None
    buffer = io.BytesIO()
    written = c.save(buffer, format="png")
    assert written == len(buffer.getvalue()) and buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    assert c.metrics().output_bytes == written
    with open(tmp_path / "x.gif", "wb") as handle:  # the name's extension picks the format
        c.save(handle)
    assert (tmp_path / "x.gif").read_bytes()[:4] == b"GIF8"
    kmq_bytes = io.BytesIO()
    c.save(kmq_bytes)  # no name, no format: .kmq
    assert kmq.load(kmq_bytes.getvalue()) == c
    n = c.save(tmp_path / "x.kmq")
    assert c.metrics().output_bytes == n == (tmp_path / "x.kmq").stat().st_size


def test_to_pil_is_a_palette_image(photo):
    c = kmq.compress(photo, 16, seed=0)
    pil = c.to_pil()
    assert pil.mode == "P" and len(pil.getpalette()) == 3 * 16
    np.testing.assert_array_equal(np.asarray(pil), c.labels)
    rgba = np.dstack([photo, np.where(photo[..., 0] > 128, 255, 0).astype(np.uint8)])
    ca = kmq.compress(rgba, 8, seed=0)
    pa = ca.to_pil()
    assert pa.mode == "P" and "transparency" in pa.info
    np.testing.assert_array_equal(np.asarray(pa.convert("RGBA")), ca.reconstruct())
    big = kmq.compress(photo, 300, seed=0)
    assert big.to_pil().mode == "RGB"


def test_metrics_scale_float_images_in_0_1(photo):
    c = kmq.compress(photo, 8, seed=0)
    rebuilt = c.reconstruct()
    truth = kmq.metrics.psnr(photo, rebuilt)
    assert 20 < truth < 35
    # matplotlib.pyplot.imread gives floats in [0, 1]: same figures.
    assert kmq.metrics.psnr(photo / 255.0, rebuilt) == pytest.approx(truth, abs=1e-9)
    assert kmq.metrics.psnr(photo / 255.0, rebuilt / 255.0) == pytest.approx(truth, abs=1e-9)
    assert kmq.metrics.mse(photo.astype(np.float32) / 255, rebuilt) == pytest.approx(kmq.metrics.mse(photo, rebuilt), rel=1e-6)
    assert kmq.metrics.ssim(photo / 255.0, rebuilt) == pytest.approx(kmq.metrics.ssim(photo, rebuilt), abs=1e-6)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((4, 4, 3), np.nan), r"original image holds NaN or infinity"),
        (np.full((4, 4, 3), 300.0), r"original image holds 300\.\.300; give floats in \[0, 1\] or values in 0\.\.255"),
        (np.full((4, 4, 3), 1000, np.int32), r"original image holds 1000\.\.1000; kmq's metrics take 8-bit images"),
    ],
)
def test_metrics_refuse_values_off_the_scale(bad, message):
    with pytest.raises(UsageError, match=message):
        kmq.metrics.mse(bad, np.zeros((4, 4, 3), np.uint8))


def test_public_modules_define_all_and_the_package_is_typed():
    import importlib.resources

    assert "psnr" in kmq.metrics.__all__ and "measure" in kmq.metrics.__all__
    assert importlib.resources.files("kmq").joinpath("py.typed").is_file()
