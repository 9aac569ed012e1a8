"""Hostile and unusual inputs, failed and interrupted writes.

Every case ends in a result or in one line on stderr with a documented exit
code, and never leaves a partial output or a stray temporary file.
"""

from __future__ import annotations

import builtins
import io
import os
import signal
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmq
from kmq import DecodeError, LimitError
from kmq._cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose header claims width x height 8-bit RGB pixels."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", idat or zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- limits ----------------------------------------------------------------------------


def test_decompression_bomb_refused_before_decoding(capsys, in_tmp):
    (in_tmp / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    code, _, err = run(capsys, "compress", "bomb.png", "-k", "4")
    assert code == 6
    assert err.strip() == (
        "kmq: error: bomb.png has 100000x100000 = 10,000,000,000 pixels, more than the limit of "
        "178,956,970; if you trust the file, raise the limit with --max-pixels (max_pixels=)"
    )
    assert names(in_tmp) == ["bomb.png"]


def test_bomb_between_pillow_and_kmq_limits_follows_kmq(in_tmp):
    # 100 M pixels: over Pillow's own warning threshold (89.5 M) but under
    # kmq's default limit, so kmq goes on to decode it (and finds it
    # truncated: it holds only a few bytes of pixel data).
    with pytest.raises(DecodeError, match=r"truncated or corrupt"):
        kmq.compress(png_claiming(10_000, 10_000), 4)
    with pytest.raises(LimitError, match=r"more than the limit of 50,000,000"):
        kmq.compress(png_claiming(10_000, 10_000), 4, max_pixels=50_000_000)


def test_zero_size_image(capsys, in_tmp):
    (in_tmp / "empty.png").write_bytes(png_claiming(0, 10))
    code, _, err = run(capsys, "compress", "empty.png", "-k", "4")
    assert code == 4
    assert err.startswith("kmq: error: empty.png ")
    assert len(err.strip().splitlines()) == 1


# -- tiny and degenerate images ---------------------------------------------------------


def test_one_by_one_image(capsys, in_tmp):
    Image.new("RGB", (1, 1), (12, 34, 56)).save("dot.png")
    code, out, err = run(capsys, "compress", "dot.png", "-k", "16", "-o", "dot.png.kmq")
    assert code == 0, err
    assert "lossless: the image has 1 distinct colour, no more than K=16" in out
    assert "  image         1 x 1 RGB, 1 pixel, 1 distinct colour\n" in out
    assert "  palette       1 colour (lossless: every distinct colour kept)\n" in out
    loaded = kmq.load("dot.png.kmq")
    assert loaded.palette.tolist() == [[12, 34, 56]] and loaded.labels.shape == (1, 1)
    assert run(capsys, "decompress", "dot.png.kmq", "-o", "dot-out.png", "-q")[0] == 0
    assert Image.open("dot-out.png").convert("RGB").getpixel((0, 0)) == (12, 34, 56)


def test_one_colour_image_is_lossless_at_one_bit():
    image = np.full((50, 40, 3), (200, 10, 90), np.uint8)
    c = kmq.compress(image, 8, seed=0)
    assert c.lossless and c.k == 1
    data = c.to_bytes("png")
    assert data[24] == 1  # 1 bit per index
    np.testing.assert_array_equal(kmq.decompress(c.to_bytes()), image)


def test_more_colours_asked_than_pixels():
    image = np.arange(18, dtype=np.uint8).reshape(2, 3, 3) * 10
    c = kmq.compress(image, 256, seed=0)
    assert c.lossless and c.k == 6
    np.testing.assert_array_equal(c.reconstruct(), image)


def test_palette_image_without_transparency():
    image = Image.new("P", (3, 1))
    image.putpalette([10, 20, 30, 40, 50, 60])
    image.putpixel((1, 0), 1)
    c = kmq.compress(image, 4, seed=0)
    assert c.mode == "RGB"
    assert c.reconstruct().tolist() == [[[10, 20, 30], [40, 50, 60], [10, 20, 30]]]


@pytest.mark.parametrize("mode, color, expected", [("CMYK", (0, 255, 255, 0), (255, 0, 0)), ("LAB", (100, 128, 128), (92, 92, 92))])
def test_cmyk_and_lab_inputs(capsys, in_tmp, mode, color, expected):
    Image.new(mode, (6, 4), color).save("odd.tif")
    code, out, err = run(capsys, "compress", "odd.tif", "-k", "2", "-o", "odd.png")
    assert code == 0, err
    assert f"note: {mode} image converted to RGB" in out
    assert Image.open("odd.png").convert("RGB").getpixel((0, 0)) == expected


def test_sixteen_bit_grayscale_reported(capsys, in_tmp):
    Image.fromarray(np.linspace(0, 65535, 64 * 64).astype(np.uint16).reshape(64, 64)).save("deep.png")
    code, out, err = run(capsys, "compress", "deep.png", "-k", "8", "-o", "deep.kmq")
    assert code == 0, err
    assert "64 x 64 L" in out
    assert "note: 16-bit image reduced to 8 bits per channel" in out
    assert kmq.load("deep.kmq").mode == "L"


@pytest.mark.parametrize("fmt, options", [("GIF", {}), ("WEBP", {"lossless": True})])
def test_animated_inputs_use_the_first_frame(capsys, in_tmp, fmt, options):
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(f"anim.{fmt.lower()}", fmt, save_all=True, append_images=frames[1:], **options)
    code, out, err = run(capsys, "compress", f"anim.{fmt.lower()}", "-k", "2", "-o", "first.png", "--json")
    assert code == 0, err
    import json

    assert "animated image with 2 frames: only the first frame was used" in json.loads(out)[0]["notes"]
    assert Image.open("first.png").convert("RGB").getpixel((3, 3)) == (255, 0, 0)


# -- unreadable inputs -------------------------------------------------------------------


def test_path_without_permission_simulated(capsys, in_tmp, photo_png, monkeypatch):
    real_read_bytes = Path.read_bytes

    def denied(self):
        if self.name == "photo.png":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    code, _, err = run(capsys, "compress", str(photo_png), "-k", "4")
    assert code == 3
    assert err.strip() == f"kmq: error: permission denied: cannot read {photo_png}"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_path_without_permission_real(capsys, in_tmp, photo_png):
    photo_png.chmod(0)
    try:
        code, _, err = run(capsys, "compress", str(photo_png), "-k", "4")
    finally:
        photo_png.chmod(0o644)
    assert code == 3
    assert "permission denied" in err


# -- failed and interrupted writes -------------------------------------------------------


def test_full_disk_simulated(capsys, in_tmp, photo_png, monkeypatch):
    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    code, _, err = run(capsys, "compress", str(photo_png), "-k", "4", "-o", "out.kmq")
    assert code == 5
    assert err.strip() == "kmq: error: cannot write out.kmq: No space left on device"
    assert names(in_tmp) == ["photo.png"]


def test_ctrl_c_during_write_leaves_nothing(capsys, in_tmp, photo_png, monkeypatch):
    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    code, _, err = run(capsys, "compress", str(photo_png), "-k", "4", "-o", "out.png")
    assert code == 130
    assert err.strip() == "kmq: interrupted"
    assert names(in_tmp) == ["photo.png"]


def test_sigterm_mid_write_leaves_no_partial_output(tmp_path, photo_png):
    # The child stops inside the write (after the bytes, before the rename)
    # and says so; the parent then sends SIGTERM.
    child = textwrap.dedent(
        f"""
        import os, sys, time
        real_fsync = os.fsync
        def slow_fsync(fd):
            real_fsync(fd)
            print("writing", flush=True)
            time.sleep(60)
        os.fsync = slow_fsync
        from kmq._cli import main
        sys.exit(main(["compress", {str(photo_png)!r}, "-k", "4", "-o", "out.png", "-q"]))
        """
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-c", child], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "writing"
        assert len(list(workdir.iterdir())) == 1  # the temporary file
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 143
    assert err.strip() == "kmq: terminated"
    assert list(workdir.iterdir()) == []


def test_input_never_opened_for_writing(capsys, in_tmp, photo_png, monkeypatch):
    opened = []
    real_open = builtins.open

    def spy(file, mode="r", *args, **kwargs):
        opened.append((str(file), mode))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    before = (photo_png.read_bytes(), photo_png.stat().st_mtime_ns)
    code, _, err = run(capsys, "compress", str(photo_png), "-k", "4", "-o", "out.kmq", "-q")
    assert code == 0, err
    modes = [mode for name, mode in opened if Path(name).name == "photo.png"]
    assert modes and all(set(mode) <= {"r", "b", "t"} for mode in modes)
    assert (photo_png.read_bytes(), photo_png.stat().st_mtime_ns) == before

