"""Shared fixtures: small real and synthetic images, made in memory.

The real photograph is a crop of the sample shipped inside the package
(Kodak kodim23), so the tests need nothing outside the repository.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import kmq


@pytest.fixture(scope="session")
def sample_pixels() -> np.ndarray:
    """The shipped photograph, (512, 768, 3) uint8."""
    with Image.open(kmq.sample_image_path()) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="session")
def photo(sample_pixels) -> np.ndarray:
    """A 96x128 crop of the photograph (parrots' heads), (96, 128, 3) uint8."""
    return np.ascontiguousarray(sample_pixels[150:246, 200:328])


def _round_mask(height: int, width: int) -> np.ndarray:
    """(H, W) uint8 alpha: 255 in the middle, 0 in the corners, a linear
    ramp between (elliptic radius 0.5 to 1.1 of the half-sides)."""
    yy, xx = np.mgrid[0:height, 0:width]
    r = np.hypot((yy - height / 2) / (height / 2), (xx - width / 2) / (width / 2))
    return np.clip((1.1 - r) / 0.6 * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def round_mask():
    """``round_mask(height, width)``: a soft round alpha mask, (H, W) uint8."""
    return _round_mask


@pytest.fixture(scope="session")
def masked_photo(photo) -> np.ndarray:
    """The crop under the round mask, (96, 128, 4) uint8."""
    return np.dstack([photo, _round_mask(*photo.shape[:2])])


@pytest.fixture(scope="session")
def hidden_colour_photo(photo) -> np.ndarray:
    """The crop, opaque, with its 40 left columns fully transparent over
    vivid colour that must not count in any metric, (96, 128, 4) uint8."""
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[:, :40] = (255, 0, 255, 0)
    rgba[:, :40, 0] = np.arange(40, dtype=np.uint8)[None, :] * 6
    return rgba


@pytest.fixture
def photo_png(tmp_path, photo):
    """The crop saved as an RGB PNG; returns its path."""
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test with the current directory set to a fresh temp folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
