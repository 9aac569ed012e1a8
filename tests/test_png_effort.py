"""PNG effort levels (effort= / -O): same pixels at every level, sizes, errors."""

from __future__ import annotations

import io
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

import kmq
from kmq._cli import main


def _image() -> kmq.Compressed:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:96, 0:128]
    labels = ((xx // 9 + yy // 7 + (rng.random((96, 128)) < 0.05)) % 16).astype(np.uint8)
    palette = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    return kmq.Compressed(palette=palette, labels=labels, mode="RGB", k_requested=16)


def _idat_level(png: bytes) -> int:
    pos = png.index(b"IDAT")
    return png[pos + 5] >> 6  # FLEVEL of the zlib header


def test_every_effort_gives_the_same_pixels_and_effort_orders_size() -> None:
    c = _image()
    sizes = {}
    for effort in range(4):
        png = c.to_bytes("png", effort=effort)
        with Image.open(io.BytesIO(png)) as im:
            assert im.mode == "P"
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), c.reconstruct())
        sizes[effort] = len(png)
    assert sizes[0] > sizes[1] >= sizes[2] >= sizes[3]
    assert _idat_level(c.to_bytes("png", effort=0)) == 0
    assert _idat_level(c.to_bytes("png")) == 2  # default: level 6
    assert c.to_bytes("png") == c.to_bytes("png", effort=1)


def test_effort_checked() -> None:
    c = _image()
    for bad in (4, -1, 1.0, True, "2"):
        with pytest.raises(kmq.UsageError, match=r"effort must be an integer 0\.\.3, got"):
            c.to_bytes("png", effort=bad)


def test_top_effort_without_oxipng_names_the_extra(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "oxipng", None)  # import oxipng -> ImportError
    with pytest.raises(kmq.UsageError, match=r"PNG effort 3 needs pyoxipng: pip install 'kmq\[png\]'"):
        _image().to_bytes("png", effort=3)
    path = tmp_path / "in.kmq"
    _image().save(path)
    out = tmp_path / "out.png"
    assert main(["decompress", str(path), "-o", str(out), "-O", "3"]) == 2
    assert not out.exists()


def test_cli_effort_option(tmp_path, capsys) -> None:
    path = tmp_path / "in.kmq"
    _image().save(path)
    sizes = []
    for effort in ("0", "2"):
        out = tmp_path / f"out{effort}.png"
        assert main(["decompress", str(path), "-o", str(out), "--effort", effort]) == 0
        sizes.append(out.stat().st_size)
    assert sizes[0] > sizes[1]
    capsys.readouterr()
    assert main(["decompress", str(path), "-o", str(tmp_path / "x.png"), "-O", "9"]) == 2
    assert "kmq: error: argument -O/--effort: invalid choice: 9 (choose from 0, 1, 2, 3)" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_trns_only_up_to_last_transparent_entry() -> None:
    palette = np.array([[0, 0, 0, 0], [9, 9, 9, 128], [5, 5, 5, 255], [7, 7, 7, 255]], np.uint8)
    c = kmq.Compressed(palette=palette, labels=np.array([[0, 1, 2, 3]] * 4, np.uint8), mode="RGBA", k_requested=4)
    png = c.to_bytes("png")
    pos = png.index(b"tRNS")
    assert png[pos - 4 : pos] == b"\x00\x00\x00\x02" and png[pos + 4 : pos + 6] == b"\x00\x80"
    assert zlib.crc32(png[pos : pos + 6]) == int.from_bytes(png[pos + 6 : pos + 10], "big")


def test_default_effort_tries_level_9_on_graphics_only(photo) -> None:
    """Flat colours (a UI-like image: level 6 leaves under a tenth of the
    rows) get the smaller of levels 6 and 9; a photograph gets level 6."""
    from kmq import _io

    yy, xx = np.mgrid[0:200, 0:320]
    labels = np.where((xx // 40 + yy // 25) % 3 == 0, 1, 0).astype(np.uint8)
    labels[(yy % 50 == 10) & (xx % 7 < 4)] = 2  # "text" lines
    palette = np.array([[245, 246, 248], [255, 255, 255], [40, 40, 50]], np.uint8)
    graphics = kmq.Compressed(palette=palette, labels=labels, mode="RGB", k_requested=3)
    image = _io._palette_image(palette, labels, "RGB")
    level6, level9 = (_io._indexed_png_threaded(image, labels, level=lv, mem_level=m, threads=False) for lv, m in ((6, 8), (9, 9)))
    assert len(level9) < len(level6)
    assert graphics.to_bytes("png") == level9
    photo_c = kmq.compress(photo, 64, seed=0)
    image = _io._palette_image(photo_c.palette, photo_c.labels, "RGB")
    assert photo_c.to_bytes("png") == _io._indexed_png_threaded(image, photo_c.labels, level=6, mem_level=8, threads=False)
