"""Colour profiles and metadata: ICC profiles kept in the outputs that can
carry them (unless --strip), float TIFFs scaled, NaN refused, notes only
when true."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

import kmq
from kmq import _io
from kmq._cli import main


@pytest.fixture(scope="module")
def icc() -> bytes:
    # A real profile (Pillow's built-in LAB-free sRGB), tagged so it differs
    # from anything a format adds by itself.
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def photo_with_profile(tmp_path, photo, icc):
    path = tmp_path / "p3.png"
    Image.fromarray(photo).save(path, icc_profile=icc)
    return path


@pytest.mark.parametrize("fmt", ["png", "webp", "jpeg", "tiff"])
def test_icc_profile_is_kept(photo_with_profile, icc, fmt):
    c = kmq.compress(photo_with_profile, 8, seed=0)
    assert c.source.icc_profile == icc and c.icc_profile == icc
    with Image.open(io.BytesIO(c.to_bytes(fmt))) as out:
        assert out.info.get("icc_profile") == icc
    with Image.open(io.BytesIO(c.to_bytes(fmt, strip=True))) as out:
        assert not out.info.get("icc_profile")


def test_icc_profile_in_the_threaded_png_writer(monkeypatch, photo, icc):
    monkeypatch.setattr(_io, "_THREADED_PNG_MIN_PIXELS", 1)
    monkeypatch.setattr(_io, "_PNG_RUN_BYTES", 4096)  # several deflate runs
    c = kmq.compress(Image.frombytes("RGB", (photo.shape[1], photo.shape[0]), photo.tobytes()), 8, seed=0)
    data = _io.encode_export(c.palette, c.labels, c.mode, "png", icc_profile=icc)
    with Image.open(io.BytesIO(data)) as out:
        assert out.info.get("icc_profile") == icc
        np.testing.assert_array_equal(np.asarray(out.convert("RGB")), c.reconstruct())


def test_cli_keeps_the_profile_unless_strip(capsys, in_tmp, photo_with_profile, icc):
    assert main(["compress", str(photo_with_profile), "-k", "8", "-o", "kept.png", "-q"]) == 0
    assert main(["compress", str(photo_with_profile), "-k", "8", "-o", "bare.png", "-q", "--strip"]) == 0
    with Image.open("kept.png") as kept, Image.open("bare.png") as bare:
        assert kept.info.get("icc_profile") == icc and not bare.info.get("icc_profile")


def _float_tiff(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values.astype(np.float32), "F").save(buffer, "TIFF")
    return buffer.getvalue()


def test_float_tiff_in_0_1_is_scaled():
    values = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    source = _io.read_image(_float_tiff(values))
    np.testing.assert_array_equal(source.pixels[:, :, 0], np.rint(values * 255).astype(np.uint8))
    assert source.notes == ["floating-point image in [0, 1] scaled to 0..255"]
    assert len(np.unique(source.pixels)) == 64  # not two colours


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_float_tiff_with_nan_or_inf_is_refused(capsys, in_tmp, bad):
    values = np.zeros((4, 4), np.float32)
    values[1, 1] = bad
    (in_tmp / "bad.tif").write_bytes(_float_tiff(values))
    code = main(["compress", "bad.tif", "-k", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4 and len(err) == 1
    assert err[0] == "kmq: error: bad.tif is truncated or corrupt: the floating-point image holds NaN or infinity"


def test_no_16_bit_note_for_a_32_bit_integer_image():
    buffer = io.BytesIO()
    Image.fromarray(np.arange(16, dtype=np.int32).reshape(4, 4) * 10, "I").save(buffer, "TIFF")
    source = _io.read_image(buffer.getvalue())
    assert not any("16-bit" in note for note in source.notes)
    np.testing.assert_array_equal(source.pixels[:, :, 0], np.arange(16).reshape(4, 4) * 10)
    buffer16 = io.BytesIO()
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(buffer16, "PNG")
    assert "16-bit image reduced to 8 bits per channel" in _io.read_image(buffer16.getvalue()).notes


@pytest.mark.parametrize("orientation", [0, 9, 300])
def test_exif_orientation_outside_1_to_8_is_ignored_silently(photo, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", quality=95, exif=exif)
    source = _io.read_image(buffer.getvalue())
    assert source.pixels.shape == photo.shape and source.notes == []


def test_icc_profile_round_trips_through_kmq(photo_with_profile, icc, tmp_path):
    c = kmq.compress(photo_with_profile, 8, seed=0)
    loaded = kmq.load(c.to_bytes("kmq"))
    assert loaded.icc_profile == icc and loaded == c
    assert kmq.load(c.to_bytes("kmq", strip=True)).icc_profile is None
    # Decompressed to PNG, the profile is there again.
    with Image.open(io.BytesIO(loaded.to_bytes("png"))) as out:
        assert out.info.get("icc_profile") == icc


def test_an_empty_icc_profile_is_no_profile_in_kmq(photo):
    c = kmq.compress(photo, 4, seed=0)
    c.icc_profile = b""
    assert kmq.load(c.to_bytes("kmq")).icc_profile is None
