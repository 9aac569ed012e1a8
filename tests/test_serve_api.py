"""kmq serve's JSON API through Starlette's test client: exact figures
against kmq.compress, downloads against reconstruct(), and every refusal
(400, 403, 404, 413, 422, 503) with the CLI's own message."""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

import kmq
from kmq._cli import main
from kmq._quantize import DEFAULT_DITHER

pytest.importorskip("starlette")
with warnings.catch_warnings():
    # Starlette's notice about its test client's HTTP library, not about kmq.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from kmq._web._state import Busy, Cancelled, Jobs  # noqa: E402
from kmq._web.app import create_app  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def client():
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def photo_bytes(photo_png):
    return photo_png.read_bytes()


def upload(client, data, name="photo.png", headers=None):
    headers = {"content-type": "image/png", **(headers or {})}
    return client.post(f"/api/images?name={name}", content=data, headers=headers)


def cli_error(args, capsys) -> tuple[int, str]:
    """The exit code and the stderr line `kmq` gives for ``args``."""
    code = main(args)
    return code, capsys.readouterr().err.strip().splitlines()[-1]


def test_upload_then_metadata_equals_compress(client, photo_bytes):
    r = upload(client, photo_bytes)
    assert r.status_code == 201
    info = r.json()
    assert (info["width"], info["height"], info["mode"], info["bytes"]) == (128, 96, "RGB", len(photo_bytes))
    assert info["name"] == "photo.png" and len(info["id"]) == 32
    # The same bytes again: the same image, already known (200, not 201).
    assert upload(client, photo_bytes).json()["id"] == info["id"]

    meta = client.get(f"/api/images/{info['id']}/result?k=12&seed=3").json()
    c = kmq.compress(photo_bytes, 12, seed=3)
    m = c.metrics()
    assert meta["k"] == c.k == 12 and meta["options"]["seed"] == 3
    assert [p["value"] for p in meta["palette"]] == c.palette.tolist()
    counts = np.bincount(c.labels.ravel(), minlength=12)
    assert [p["pixels"] for p in meta["palette"]] == counts.tolist()
    assert [p["share"] for p in meta["palette"]] == (counts / c.labels.size).tolist()
    assert meta["palette"][0]["hex"] == "#%02x%02x%02x" % tuple(c.palette[0])
    assert meta["bytes"] == {
        "original": len(photo_bytes),
        "raw": 128 * 96 * 3,
        "png": len(c.to_bytes("png")),
        "webp": len(c.to_bytes("webp")),
        "kmq": len(c.to_bytes("kmq")),
    }
    assert meta["psnr"] == m.psnr and meta["ssim"] == m.ssim and meta["mse"] == m.mse
    assert meta["perceptual_score"] == kmq.metrics.perceptual_score(c.source.pixels, c.reconstruct())
    assert 0 < meta["perceptual_score"] < 100
    assert meta["ratio"] == m.ratio and meta["ratio_to_1"] == m.ratio_to_1
    assert meta["n_iter"] == c.n_iter and meta["complete"] is True

    quick = client.get(f"/api/images/{info['id']}/result?k=12&seed=3&quick=1").json()
    assert quick["bytes"]["png"] == meta["bytes"]["png"] and quick["psnr"] == m.psnr
    assert quick["bytes"]["webp"] is None and quick["ssim"] is None and quick["perceptual_score"] is None
    assert quick["complete"] is False


def test_alpha_kept_is_the_metrics_and_none_without_alpha(client, masked_photo, photo_bytes):
    # An RGB photograph: no alpha figures.
    image_id = upload(client, photo_bytes).json()["id"]
    meta = client.get(f"/api/images/{image_id}/result?k=12&quick=1").json()
    assert meta["opaque_kept"] is None and meta["transparent_kept"] is None

    # The same photograph under a soft round mask.
    buffer = io.BytesIO()
    Image.fromarray(masked_photo, "RGBA").save(buffer, format="PNG")
    data = buffer.getvalue()
    image_id = upload(client, data, name="masked.png").json()["id"]
    for k in (4, 16):
        meta = client.get(f"/api/images/{image_id}/result?k={k}&quick=1").json()
        m = kmq.compress(data, k).metrics()
        assert (meta["opaque_kept"], meta["transparent_kept"]) == (m.opaque_kept, m.transparent_kept)
        assert meta["transparent_kept"] == 1.0 and 0 < meta["opaque_kept"] <= 1


def test_gif_note_says_what_the_gif_download_changes(client, masked_photo, photo_bytes):
    from kmq import _io

    image_id = upload(client, photo_bytes).json()["id"]
    assert client.get(f"/api/images/{image_id}/result?k=8&quick=1").json()["gif_note"] is None
    buffer = io.BytesIO()
    Image.fromarray(masked_photo, "RGBA").save(buffer, format="PNG")
    image_id = upload(client, buffer.getvalue(), name="masked.png").json()["id"]
    meta = client.get(f"/api/images/{image_id}/result?k=16&quick=1").json()
    c = kmq.compress(buffer.getvalue(), 16)
    assert meta["gif_note"] == _io.export_notes(c.palette, c.mode, "gif")[0]
    assert meta["gif_note"].startswith("GIF has on/off transparency: ")
    translucent = sum(0 < entry["alpha"] < 255 for entry in meta["palette"])
    assert f": {translucent} translucent palette entries were made" in meta["gif_note"]


def test_figures_of_an_image_with_alpha_are_of_what_is_seen(client, hidden_colour_photo):
    # PSNR, SSIM and the perceptual score are the CLI's, which do not count
    # the hidden colour under transparent pixels.
    rgba = hidden_colour_photo
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    image_id = upload(client, buffer.getvalue(), name="hidden.png").json()["id"]
    meta = client.get(f"/api/images/{image_id}/result?k=8").json()
    c = kmq.compress(rgba, 8)
    m = c.metrics()
    rebuilt = c.reconstruct()
    assert meta["psnr"] == m.psnr and meta["ssim"] == m.ssim
    assert meta["perceptual_score"] == m.perceptual_score
    assert m.ssim == kmq.metrics.ssim_seen(rgba, rebuilt) != kmq.metrics.ssim(rgba, rebuilt)


def test_downloads_are_the_result(client, photo_bytes):
    image_id = upload(client, photo_bytes).json()["id"]
    c = kmq.compress(photo_bytes, 20, seed=0)
    r = client.get(f"/api/images/{image_id}/result.png?k=20")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == 'attachment; filename="photo-k20.png"'
    with Image.open(io.BytesIO(r.content)) as png:
        assert png.mode == "P"
        assert np.array_equal(np.asarray(png.convert("RGB")), c.reconstruct())
    assert r.content == c.to_bytes("png")
    for fmt in ("webp", "gif"):
        with Image.open(io.BytesIO(client.get(f"/api/images/{image_id}/result.{fmt}?k=20").content)) as im:
            assert np.array_equal(np.asarray(im.convert("RGB")), c.reconstruct()), fmt
    assert kmq.load(client.get(f"/api/images/{image_id}/result.kmq?k=20").content) == c
    with Image.open(io.BytesIO(client.get(f"/api/images/{image_id}/original.png").content)) as original:
        assert np.array_equal(np.asarray(original), c.source.pixels)
    assert client.get(f"/api/images/{image_id}/result.jpg?k=20").status_code == 404


def test_multipart_upload_and_curve(client, photo_bytes):
    r = client.post("/api/images", files={"file": ("parrots.png", photo_bytes, "image/png")})
    assert r.status_code == 201 and r.json()["name"] == "parrots.png"
    image_id = r.json()["id"]
    curve = client.get(f"/api/images/{image_id}/curve?ks=2,8&seed=1").json()
    for point, k in zip(curve["points"], (2, 8)):
        c = kmq.compress(photo_bytes, k, seed=1)
        m = c.metrics()
        assert point == {
            "k": k, "k_used": c.k, "png": len(c.to_bytes("png")), "kmq": len(c.to_bytes("kmq")),
            "psnr": m.psnr, "ssim": m.ssim,
        }
    assert client.post("/api/images", files={"other": ("a.png", photo_bytes)}).status_code == 400


def test_sample_upload(client):
    r = client.post("/api/images", json={"sample": True})
    assert r.status_code == 201
    assert r.json()["name"] == "kodim23.png" and r.json()["bytes"] == kmq.sample_image_path().stat().st_size


def test_hostile_files_get_the_cli_message_and_the_server_goes_on(client, photo_bytes, in_tmp, capsys):
    (in_tmp / "notes.txt").write_text("not an image\n")
    (in_tmp / "cut.png").write_bytes(photo_bytes[: len(photo_bytes) // 2])
    (in_tmp / "empty.png").write_bytes(b"")
    for name in ("notes.txt", "cut.png", "empty.png"):
        code, line = cli_error(["compress", name, "-k", "4"], capsys)
        assert code == 4
        r = upload(client, (in_tmp / name).read_bytes(), name=name)
        assert r.status_code == 422, name
        assert r.json() == {"error": "DecodeError", "message": line, "status": 422}
    assert upload(client, photo_bytes).status_code == 201


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height RGB pixels and holds one row."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (3 * width + 1))) + chunk(b"IEND", b"")


def test_caps_413(photo_bytes, in_tmp, capsys):
    bomb = _png_header_only(20000, 20000)  # 400 megapixels in 1 kB
    (in_tmp / "bomb.png").write_bytes(bomb)
    code, line = cli_error(["compress", "bomb.png"], capsys)
    assert code == 6
    with TestClient(create_app(max_pixels=kmq.DEFAULT_MAX_PIXELS)) as client:
        r = upload(client, bomb, name="bomb.png")
        assert r.status_code == 413 and r.json()["message"] == line
    (in_tmp / "photo.png").write_bytes(photo_bytes)
    code, line = cli_error(["compress", "photo.png", "--max-pixels", "1000"], capsys)
    with TestClient(create_app(max_pixels=1000, max_upload_bytes=len(photo_bytes))) as client:
        r = upload(client, photo_bytes)
        assert r.status_code == 413 and r.json()["message"] == line
        r = upload(client, photo_bytes + b"\0")
        assert r.status_code == 413
        assert r.json()["message"] == (
            f"kmq: error: the upload is {len(photo_bytes) + 1:,} bytes, more than the limit of "
            f"{len(photo_bytes):,} bytes (kmq serve --max-upload-mb)"
        )
        # Without a Content-Length (a chunked upload), counted as it comes.
        r = client.post("/api/images", content=iter([photo_bytes, b"\0"]), headers={"content-type": "image/png"})
        assert r.status_code == 413 and "larger than the limit" in r.json()["message"]


def test_bad_parameters_400_and_404(client, photo_bytes):
    image_id = upload(client, photo_bytes).json()["id"]
    cases = {
        "k=300": "kmq: error: k must be in [1, 256], got 300",
        "k=abc": "kmq: error: k must be a whole number, got 'abc'",
        "sample=0": "kmq: error: sample must be in (0, 1], got 0",
        "tol=nan": "kmq: error: tol must be a finite number, got 'nan'",
        "init=best": "kmq: error: init must be one of k-means++, random, got 'best'",
        "colours=3": "kmq: error: unknown parameter 'colours'; the parameters are k, space, dither, quality, speed, seed, "
        "sample, n_init, max_iter, tol, init, quick, webp",
    }
    for query, message in cases.items():
        r = client.get(f"/api/images/{image_id}/result?{query}")
        assert (r.status_code, r.json()["message"]) == (400, message), query
    r = client.get("/api/images/0123456789abcdef0123456789abcdef/result?k=4")
    assert r.status_code == 404 and "upload it again" in r.json()["message"]
    assert client.get("/api/nothing").status_code == 404
    r = client.post("/api/images", json={"url": "file:///etc/passwd"})
    assert r.status_code == 400 and "http(s) URL" in r.json()["message"]
    assert client.post("/api/images", content=b"{", headers={"content-type": "application/json"}).status_code == 400


#: Settings of kmq compress as API queries, their CLI flags, and the
#: keywords kmq.compress gets for them (the CLI's resolution of --speed).
PERCEPTUAL_CASES = [
    ("k=12&space=rgb&dither=0", ["-k", "12", "--space", "rgb", "--dither", "0"], dict(k=12, space="rgb", dither=0.0)),
    ("k=12&space=lab&dither=0.5", ["-k", "12", "--space", "lab", "--dither", "0.5"], dict(k=12, space="lab", dither=0.5)),
    # --speed 11: one start, a loose tol, no dithering ...
    ("k=12&speed=11", ["-k", "12", "--speed", "11"], dict(k=12, n_init=1, tol=3e-2, dither=0.0)),
    # ... unless the dithering is given.
    ("k=12&speed=8&dither=0.25", ["-k", "12", "--speed", "8", "--dither", "0.25"],
     dict(k=12, n_init=1, tol=3e-3, dither=0.25)),
    ("k=64&quality=0-60", ["-k", "64", "--quality", "0-60"], dict(k=64, quality=(0.0, 60.0))),
]


@pytest.mark.parametrize("query, flags, kwargs", PERCEPTUAL_CASES)
def test_space_dither_quality_speed_equal_compress_and_the_cli(client, photo_bytes, in_tmp, query, flags, kwargs):
    image_id = upload(client, photo_bytes).json()["id"]
    meta = client.get(f"/api/images/{image_id}/result?{query}").json()
    kwargs = dict(kwargs)
    k = kwargs.pop("k")
    c = kmq.compress(photo_bytes, k, **kwargs)
    m = c.metrics()
    expected = {"k": k, "seed": 0, "max_iter": 300, "init": "k-means++", "space": "oklab", "dither": DEFAULT_DITHER, "sample": None,
                "n_init": 2, "tol": 1e-4, "quality": None, **kwargs}
    expected["quality"] = None if expected["quality"] is None else list(expected["quality"])
    assert meta["compress"] == expected
    assert [p["value"] for p in meta["palette"]] == c.palette.tolist() and meta["k"] == c.k
    assert meta["bytes"]["png"] == len(c.to_bytes("png")) and meta["bytes"]["kmq"] == len(c.to_bytes("kmq"))
    assert meta["bytes"]["webp"] == len(c.to_bytes("webp")) and meta["complete"] is True
    assert meta["psnr"] == m.psnr and meta["ssim"] == m.ssim
    assert meta["perceptual_score"] == kmq.metrics.perceptual_score(c.source.pixels, c.reconstruct())
    assert (meta["quality"], meta["quality_note"]) == (c.quality, c.quality_note)
    # The file is the one `kmq compress` writes with the same flags.
    (in_tmp / "photo.png").write_bytes(photo_bytes)
    assert main(["compress", "photo.png", *flags, "-o", "out.png", "-q"]) == 0
    assert client.get(f"/api/images/{image_id}/result.png?{query}").content == (in_tmp / "out.png").read_bytes()


def test_webp_0_leaves_out_only_the_webp_size(client, photo_bytes):
    image_id = upload(client, photo_bytes).json()["id"]
    meta = client.get(f"/api/images/{image_id}/result?k=10&webp=0").json()
    c = kmq.compress(photo_bytes, 10)
    assert meta["bytes"]["webp"] is None and meta["complete"] is False
    assert meta["bytes"]["kmq"] == len(c.to_bytes("kmq")) and meta["ssim"] == c.metrics().ssim
    assert meta["perceptual_score"] == kmq.metrics.perceptual_score(c.source.pixels, c.reconstruct())


def test_quality_target_picks_k_and_a_missed_minimum_is_422(client, photo_bytes, in_tmp, capsys):
    image_id = upload(client, photo_bytes).json()["id"]
    meta = client.get(f"/api/images/{image_id}/result?quality=0-60&quick=1").json()
    # No K: up to 256, as kmq compress --quality.
    c = kmq.compress(photo_bytes, 256, quality=(0, 60))
    assert meta["k_requested"] == 256 and meta["options"]["k"] == 256 and meta["options"]["quality"] == [0.0, 60.0]
    assert meta["k"] == c.k < 256 and meta["quality"] == c.quality >= 60
    assert meta["quality_note"].startswith(f"quality {c.quality:.0f}: {c.k} colours, the fewest reaching the target 60")
    (in_tmp / "photo.png").write_bytes(photo_bytes)
    code, line = cli_error(["compress", "photo.png", "-k", "2", "--quality", "99-100"], capsys)
    assert code == 99
    for _ in range(2):  # the second answer comes from the cache: the same error
        r = client.get(f"/api/images/{image_id}/result?k=2&quality=99-100&quick=1")
        assert r.status_code == 422 and r.json() == {"error": "QualityError", "message": line, "status": 422}
    assert client.get(f"/api/images/{image_id}/result.png?k=2&quality=99-100").status_code == 422


def test_bad_space_dither_quality_speed_get_the_cli_check(client, photo_bytes, in_tmp, capsys):
    image_id = upload(client, photo_bytes).json()["id"]
    (in_tmp / "photo.png").write_bytes(photo_bytes)
    for name, value in [("dither", "2"), ("dither", "-0.5"), ("dither", "abc"), ("quality", "90-10"), ("quality", "abc"),
                        ("quality", "50-150"), ("speed", "12"), ("speed", "x")]:
        code, line = cli_error(["compress", "photo.png", f"--{name}={value}"], capsys)
        assert code == 2
        # The CLI's line, the option named as the API names it, without the pointer to --help.
        expected = line.replace(f"argument --{name}: ", f"{name}: ").removesuffix(" (see 'kmq compress --help')")
        assert expected != line
        r = client.get(f"/api/images/{image_id}/result?{name}={value}")
        assert (r.status_code, r.json()["message"]) == (400, expected), (name, value)
    # The space is one of the library's spaces: the library's check.
    with pytest.raises(kmq.UsageError) as error:
        kmq.compress(photo_bytes, 4, space="xyz")
    r = client.get(f"/api/images/{image_id}/result?space=xyz")
    assert (r.status_code, r.json()["message"]) == (400, f"kmq: error: space: {error.value}")
    assert r.json()["message"] == "kmq: error: space: the colour space must be one of oklab, lab, rgb, got 'xyz'"


def test_moving_k_reuses_the_image_histogram_and_points(client, photo_bytes, monkeypatch):
    """After the first result of an image, a new K (or dithering, or seed)
    refits and remaps: the histogram is not made again, nor the points of a
    working space already used."""
    from kmq import _quantize

    calls = []
    for name in ("color_histogram", "to_space"):
        real = getattr(_quantize, name)

        def counting(colors, *args, real=real, name=name):
            if len(colors) > 1000:  # the image's colours, not a palette
                calls.append(name)
            return real(colors, *args)

        monkeypatch.setattr(_quantize, name, counting)
    image_id = upload(client, photo_bytes).json()["id"]
    client.get(f"/api/images/{image_id}/result?k=8&quick=1")
    assert sorted(calls) == ["color_histogram", "to_space"]
    # All in plain Oklab (kmq._quantize.working_space).
    for query in ("k=9&dither=0", "k=4", "k=6&dither=0.5", "k=12&dither=0&seed=4"):
        client.get(f"/api/images/{image_id}/result?{query}&quick=1")
    assert len(calls) == 2
    # A new working space computes its points once: 16 colours dithered and
    # 32 are chroma-weighted Oklab, then Lab.
    for query in ("k=16", "k=32&dither=0", "k=8&space=lab", "k=64&space=lab"):
        client.get(f"/api/images/{image_id}/result?{query}&quick=1")
    assert calls == ["color_histogram", "to_space", "to_space", "to_space"]
    analysis = client.app.state.images.get(image_id).analysis
    assert analysis.nbytes > analysis.histogram().colors.nbytes


def test_a_cancelled_compression_stops_and_is_not_kept(photo_bytes):
    from kmq._web._state import Result, StoredImage, parse_options

    image = StoredImage.decode("x", photo_bytes, name="photo.png", max_pixels=None)
    result = Result(image, parse_options({"k": "6"}))
    gone = threading.Event()
    gone.set()
    with pytest.raises(Cancelled):
        result.compressed(gone)
    assert not result.computed
    assert result.compressed() == kmq.compress(photo_bytes, 6)


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_url_upload_through_kmq_reader(client, photo_bytes, tmp_path, capsys):
    (tmp_path / "photo.png").write_bytes(photo_bytes)
    handler = lambda *a, **kw: _Files(*a, directory=str(tmp_path), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        r = client.post("/api/images", json={"url": f"{url}/photo.png"})
        assert r.status_code == 201
        assert r.json()["id"] == upload(client, photo_bytes).json()["id"] and r.json()["name"] == f"{url}/photo.png"
        code, line = cli_error(["compress", f"{url}/missing.png"], capsys)
        assert code == 3
        r = client.post("/api/images", json={"url": f"{url}/missing.png"})
        assert r.status_code == 400 and r.json()["message"] == line
    finally:
        server.shutdown()
        server.server_close()


def test_busy_503_and_a_slot_kept_for_the_slider(photo_bytes):
    with TestClient(create_app(jobs=2, queue_wait=0.05, heavy_wait=0.05)) as client:
        image_id = upload(client, photo_bytes).json()["id"]
        jobs = client.app.state.jobs
        assert jobs.heavy_slots.acquire(blocking=False)  # a slow job is running
        try:
            # The slider's quick request still runs; the slow figures wait, then 503.
            assert client.get(f"/api/images/{image_id}/result?k=5&quick=1").status_code == 200
            r = client.get(f"/api/images/{image_id}/result?k=5")
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json()["message"] == "kmq: error: the server is busy (2 jobs running); try again"
            assert jobs.slots.acquire(blocking=False) and jobs.slots.acquire(blocking=False)
            try:
                assert client.get(f"/api/images/{image_id}/result?k=6&quick=1").status_code == 503
            finally:
                jobs.slots.release()
                jobs.slots.release()
        finally:
            jobs.heavy_slots.release()
        assert client.get(f"/api/images/{image_id}/result?k=5").status_code == 200


def test_result_cache_is_bounded_lru(photo_bytes):
    with TestClient(create_app(max_results=2)) as client:
        image_id = upload(client, photo_bytes).json()["id"]
        seen = [
            client.get(f"/api/images/{image_id}/result?k={k}&quick=1").headers["x-kmq-cache"]
            for k in (2, 3, 2, 4, 3, 4)
        ]
        assert seen == ["miss", "miss", "hit", "miss", "miss", "hit"]
        results = client.app.state.results
        assert len(results) == 2
        assert [key[1][0] for key in results.keys()] == [3, 4]


def test_images_cache_is_bounded(photo, tmp_path):
    with TestClient(create_app(max_images=2)) as client:
        ids = []
        for shift in range(3):
            buffer = io.BytesIO()
            Image.fromarray(np.roll(photo, shift, axis=1)).save(buffer, "PNG")
            ids.append(upload(client, buffer.getvalue()).json()["id"])
        assert len(set(ids)) == 3
        assert client.get(f"/api/images/{ids[0]}").status_code == 404
        assert client.get(f"/api/images/{ids[2]}").status_code == 200


def test_cross_origin_and_host_checks(photo_bytes):
    with TestClient(create_app(allowed_hosts=("127.0.0.1", "localhost")), base_url="http://127.0.0.1:8765") as client:
        assert upload(client, photo_bytes).status_code == 201
        r = upload(client, photo_bytes, headers={"origin": "http://evil.example"})
        assert r.status_code == 403 and r.json()["message"] == "kmq: error: cross-origin requests are refused"
        assert upload(client, photo_bytes, headers={"origin": "http://127.0.0.1:8765"}).status_code == 200
        r = client.get("/api/options", headers={"host": "evil.example:8765"})
        assert r.status_code == 400 and "unexpected Host header" in r.json()["message"]


def test_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    html = r.text
    for attr in ("src=", "href="):
        for part in html.split(attr)[1:]:
            target = part[1:].split(part[0], 1)[0]
            assert target.startswith(("/static/", "data:")) or target == "", target
    for name in ("app.js", "app.css"):
        # Nothing fetched from elsewhere (the SVG namespace is a name, not a fetch).
        body = client.get(f"/static/{name}").text.replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in body and "https://" not in body and "@import" not in body
    options = client.get("/api/options").json()
    assert [o["name"] for o in options["options"]] == [
        "k", "space", "dither", "quality", "speed", "seed", "sample", "n_init", "max_iter", "tol", "init",
    ]
    by_name = {o["name"]: o for o in options["options"]}
    assert by_name["space"]["choices"] == ["oklab", "lab", "rgb"] and by_name["space"]["default"] == "oklab"
    assert by_name["speed"]["default"] == 4 and (by_name["speed"]["low"], by_name["speed"]["high"]) == (1, 11)
    # Not given: kmq compress's rule (its default, or 0 at speed 11), said in words.
    assert by_name["dither"]["default"] is None and by_name["dither"]["auto"] == f"{DEFAULT_DITHER:g} (0 at speed 11)"
    assert by_name["dither"]["auto_value"] == DEFAULT_DITHER


class _Client:
    """The part of a Starlette request that Jobs looks at."""

    def __init__(self, gone: bool):
        self.gone = gone

    async def is_disconnected(self):
        return self.gone


def test_jobs_drop_stale_requests():
    jobs = Jobs(1, wait=5.0)
    ran = []

    async def scenario():
        assert jobs.slots.acquire(blocking=False)
        try:
            # A client that went away while waiting is dropped at once, not after the wait.
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(Cancelled):
                await jobs.run(_Client(gone=True), lambda cancel: ran.append(1))
            assert loop.time() - started < 1.0
            jobs.wait = 0.05
            with pytest.raises(Busy):
                await jobs.run(_Client(gone=False), lambda cancel: ran.append(2))
        finally:
            jobs.slots.release()
        # A running job is told that its client has gone.
        def job(cancel):
            return cancel.wait(5.0)

        assert await jobs.run(_Client(gone=True), job) is True
        assert await jobs.run(None, lambda cancel: 7) == 7

    asyncio.run(scenario())
    assert ran == []


def test_serve_without_web_extra(monkeypatch, capsys):
    import sys

    for name in ("starlette", "uvicorn", "kmq._web.app"):
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["serve", "--port", "0"]) == 2
    assert capsys.readouterr().err == "kmq: error: kmq serve needs the web extra: pip install 'kmq[web]'\n"


def test_serve_port_in_use_and_warning(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
        err = capsys.readouterr().err
        assert err == f"kmq: error: cannot listen on 127.0.0.1:{port}: address already in use; choose another --port\n"
        # Any other address than loopback: warned about (binding fails here,
        # on the port taken, so nothing listens beyond this machine).
        assert main(["serve", "--host", "0.0.0.0", "--port", str(port)]) == 2
        lines = capsys.readouterr().err.splitlines()
        assert lines[0].startswith("kmq: warning: listening on 0.0.0.0, not on loopback")
        assert lines[1].startswith(f"kmq: error: cannot listen on 0.0.0.0:{port}")
    assert main(["serve", "--port", "70000"]) == 2


@pytest.mark.parametrize("stop, code, last", [(signal.SIGINT, 130, "kmq: interrupted"), (signal.SIGTERM, 143, "kmq: terminated")])
def test_serve_subprocess_answers_then_stops_cleanly(stop, code, last):
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmq", "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("kmq: serving http://127.0.0.1:") and line.endswith("/ (Ctrl-C to stop)\n"), line
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/options", timeout=30) as response:
            assert json.load(response)["options"][0]["name"] == "k"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b"<title>kmq" in response.read()
        proc.send_signal(stop)
        assert proc.wait(timeout=30) == code
        assert proc.stderr.read().splitlines()[-1] == last
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_open_opens_the_page_in_the_browser(tmp_path):
    # webbrowser runs $BROWSER: here a script that writes down the URL it is given.
    opened = tmp_path / "opened.txt"
    script = tmp_path / "browser.py"
    script.write_text(f"import sys\nopen({str(opened)!r}, 'w').write(sys.argv[1])\n")
    env = {**os.environ, "BROWSER": f"{sys.executable} {script} %s"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmq", "serve", "--port", "0", "--open"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        url = proc.stdout.readline().split()[2]
        for _ in range(600):
            if opened.exists() and opened.read_text():
                break
            time.sleep(0.05)
        assert opened.read_text() == url
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
