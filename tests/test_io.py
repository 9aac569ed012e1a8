"""Reading images: formats, sources, modes, and what goes wrong."""

from __future__ import annotations

import http.server
import io
import struct
import sys
import threading
import zlib

import numpy as np
import pytest
from PIL import Image

from kmq import DecodeError, InputError, LimitError, UsageError
from kmq._io import format_for_path, read_image, write_atomic


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "fmt, options, exact",
    [
        ("PNG", {}, True),
        ("BMP", {}, True),
        ("TIFF", {}, True),
        ("WEBP", {"lossless": True}, True),
        ("JPEG", {"quality": 90}, False),
    ],
)
def test_reads_each_format(photo, fmt, options, exact):
    data = _encode(Image.fromarray(photo), fmt, **options)
    source = read_image(data)
    assert source.mode == "RGB"
    assert source.pixels.shape == photo.shape
    assert source.pixels.dtype == np.uint8
    assert source.format == fmt
    assert source.input_bytes == len(data)
    if exact:
        np.testing.assert_array_equal(source.pixels, photo)
    else:
        assert np.abs(source.pixels.astype(int) - photo).mean() < 3


def test_gif_first_frame_and_note():
    frames = [Image.new("RGB", (8, 6), color) for color in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    source = read_image(data)
    assert source.pixels.shape == (6, 8, 3)
    assert (source.pixels == (255, 0, 0)).all()
    assert any("3 frames" in note and "first frame" in note for note in source.notes)


def test_reads_path_and_pathlike(photo_png, photo):
    by_str = read_image(str(photo_png))
    by_path = read_image(photo_png)
    np.testing.assert_array_equal(by_str.pixels, photo)
    np.testing.assert_array_equal(by_path.pixels, photo)
    assert by_path.path == photo_png
    assert by_path.input_bytes == photo_png.stat().st_size


def test_reads_stdin(monkeypatch, photo):
    data = _encode(Image.fromarray(photo), "PNG")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    source = read_image("-")
    assert source.name == "<stdin>"
    np.testing.assert_array_equal(source.pixels, photo)


class _Server:
    """A local HTTP server on 127.0.0.1 serving fixed bytes at /img.png."""

    def __init__(self, payload: bytes):
        payload_bytes = payload

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                if self.path.startswith("/img.png"):
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Content-Length", str(len(payload_bytes)))
                    self.end_headers()
                    self.wfile.write(payload_bytes)
                else:
                    self.send_error(404, "Not Found")

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_reads_url_from_local_server(photo):
    data = _encode(Image.fromarray(photo), "PNG")
    with _Server(data) as server:
        source = read_image(server.url + "/img.png?size=small")
    np.testing.assert_array_equal(source.pixels, photo)
    assert source.input_bytes == len(data)
    assert source.name.endswith("/img.png?size=small")


def test_url_404_is_input_error(photo):
    with _Server(b"") as server:
        with pytest.raises(InputError, match=r"HTTP 404"):
            read_image(server.url + "/missing.png")


def test_unreachable_url_is_input_error():
    # Bind then close a socket to get a port nobody listens on.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(InputError, match=r"cannot download http://127\.0\.0\.1"):
        read_image(f"http://127.0.0.1:{port}/x.png")


def test_exif_orientation_applied(photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = _encode(Image.fromarray(photo), "JPEG", quality=95, exif=exif)
    source = read_image(data)
    assert source.pixels.shape == (photo.shape[1], photo.shape[0], 3)
    assert "EXIF orientation 6 applied" in source.notes
    expected = np.rot90(photo, k=-1)
    assert np.abs(source.pixels.astype(int) - expected).mean() < 3


def test_grayscale_stays_grayscale(photo):
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    source = read_image(_encode(Image.fromarray(gray), "PNG"))
    assert source.mode == "L"
    assert source.pixels.shape == gray.shape + (1,)
    np.testing.assert_array_equal(source.pixels[:, :, 0], gray)


def test_alpha_is_kept():
    rgba = np.random.default_rng(1).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    source = read_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert source.mode == "RGBA"
    np.testing.assert_array_equal(source.pixels, rgba)


def test_palette_image_with_transparency_becomes_rgba():
    image = Image.new("P", (4, 2))
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.putpixel((0, 0), 1)
    data = _encode(image, "PNG", transparency=1)
    source = read_image(data)
    assert source.mode == "RGBA"
    assert tuple(source.pixels[0, 0]) == (0, 0, 255, 0)
    assert tuple(source.pixels[1, 3]) == (255, 0, 0, 255)


def test_16_bit_grayscale_reduced_with_note():
    values = np.array([[0, 255, 256, 65535]], dtype=np.uint16)
    data = _encode(Image.fromarray(values), "PNG")
    source = read_image(data)
    assert source.mode == "L"
    assert source.pixels[:, :, 0].tolist() == [[0, 0, 1, 255]]
    assert "16-bit image reduced to 8 bits per channel" in source.notes


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_16_bit_rgb_png_reduced_with_note():
    # Pillow cannot write 48-bit PNGs, so build one: IHDR depth 16, colour
    # type 2 (RGB), one row of two pixels, filter byte 0.
    rows = b"\x00" + struct.pack(">6H", 0xFFFF, 0x8000, 0x0000, 0x1234, 0x00FF, 0xABCD)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 16, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )
    source = read_image(png)
    assert source.mode == "RGB"
    assert source.pixels.tolist() == [[[255, 128, 0], [18, 0, 171]]]
    assert "16-bit image reduced to 8 bits per channel" in source.notes


def test_cmyk_converted_to_rgb_with_note():
    cmyk = Image.new("CMYK", (3, 2), (0, 255, 255, 0))
    source = read_image(_encode(cmyk, "TIFF"))
    assert source.mode == "RGB"
    assert tuple(source.pixels[0, 0]) == (255, 0, 0)
    assert "CMYK image converted to RGB" in source.notes


def test_pil_image_and_arrays():
    pil = Image.new("RGB", (3, 2), (1, 2, 3))
    assert read_image(pil).pixels.shape == (2, 3, 3)
    assert read_image(np.zeros((2, 3), np.uint8)).mode == "L"
    assert read_image(np.zeros((2, 3, 2), np.uint8)).mode == "LA"
    wide = read_image(np.full((2, 3, 3), 0x1234, np.uint16))
    assert wide.pixels[0, 0].tolist() == [0x12] * 3
    assert read_image(np.full((1, 1, 3), 7, np.int64)).pixels[0, 0, 0] == 7


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((2, 2, 3), 2.0, np.float32), r"floating-point image array must hold values in \[0, 1\], got 2\.\.2"),
        (np.full((2, 2, 3), np.nan, np.float32), r"floating-point image array holds NaN or infinity"),
        (np.zeros((10, 3), np.uint8), r"shape \(10, 3\): that is a list of 3-D points, not an image; cluster points with kmq\.KMeans"),
        (np.zeros((2, 2, 5), np.uint8), r"shape \(H, W\) or \(H, W, C\) with C in 1\.\.4, got shape \(2, 2, 5\)"),
        (np.full((2, 2), 300, np.int32), r"values in 0\.\.255, got 300\.\.300"),
        (np.zeros(4, np.uint8), r"got shape \(4,\)"),
    ],
)
def test_bad_arrays(array, message):
    with pytest.raises(UsageError, match=message):
        read_image(array)


def test_zero_size_array_refused():
    with pytest.raises(DecodeError, match=r"has no pixels \(0x2\)"):
        read_image(np.zeros((2, 0, 3), np.uint8))


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, this is text")
    with pytest.raises(DecodeError, match=r"notes\.png is not an image kmq can read"):
        read_image(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(DecodeError, match=r"empty \(0 bytes\)"):
        read_image(path)


def test_truncated_png(photo, tmp_path):
    data = _encode(Image.fromarray(photo), "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match=r"cut\.png is truncated or corrupt"):
        read_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match=r"no such file: .*nothing\.png"):
        read_image(tmp_path / "nothing.png")
    with pytest.raises(InputError, match=r"is a directory, not an image file"):
        read_image(tmp_path)


def test_pixel_limit(photo):
    data = _encode(Image.fromarray(photo), "PNG")
    n = photo.shape[0] * photo.shape[1]
    with pytest.raises(LimitError, match=rf"{n:,} pixels, more than the limit of 1,000.*--max-pixels"):
        read_image(data, max_pixels=1000)
    assert read_image(data, max_pixels=None).pixels.shape == photo.shape


def test_format_for_path():
    assert format_for_path("a.KMQ") == "kmq"
    assert format_for_path("a.jpeg") == "jpeg"
    assert format_for_path("a.tif") == "tiff"
    assert format_for_path("-", override="png") == "png"
    with pytest.raises(Exception, match=r"cannot tell the output format of a\.xyz \(\.xyz\)"):
        format_for_path("a.xyz")


def test_write_atomic_refuses_existing_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.bin"
    write_atomic(target, b"one")
    with pytest.raises(Exception, match=r"already exists; use --force"):
        write_atomic(target, b"two")
    assert target.read_bytes() == b"one"
    write_atomic(target, b"two", force=True)
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_write_atomic_never_overwrites_input(tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(b"original")
    with pytest.raises(Exception, match=r"refusing to overwrite the input"):
        write_atomic(source, b"new", force=True, inputs=(source,))
    assert source.read_bytes() == b"original"


def test_write_atomic_failure_leaves_nothing(tmp_path, monkeypatch):
    import os

    target = tmp_path / "out.bin"

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    monkeypatch.setattr(os, "link", broken_replace)  # the move without --force
    for force in (False, True):
        with pytest.raises(Exception, match=r"cannot write .*out\.bin: No space left on device"):
            write_atomic(target, b"data", force=force)
        assert list(tmp_path.iterdir()) == []
