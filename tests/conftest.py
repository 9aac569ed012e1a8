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
