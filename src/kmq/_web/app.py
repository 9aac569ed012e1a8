"""The web page's server: a Starlette app, run by ``kmq serve`` on uvicorn.

One process keeps the engine and the decoded images warm; every compute
runs in-process in a worker thread, at most ``jobs`` at once.

The JSON API (README.md, "Web page"); every error is a JSON object
``{"error": <kmq error class>, "message": "kmq: error: ...", "status": N}``
whose message is the line the CLI prints for the same input:

=======================================  ======================================
``GET  /api/options``                    the compress() settings the API takes
``POST /api/images``                     upload: the file as the body (or
                                         multipart field ``file``), or JSON
                                         ``{"url": "https://..."}``; -> info
``GET  /api/images/{id}``                the upload's info (size, mode, notes)
``GET  /api/images/{id}/original.png``   the decoded original
``GET  /api/images/{id}/result``         metadata for ``?k=..&space=..``;
                                         ``quick=1``: without webp/kmq/SSIM;
                                         ``webp=0``: without webp
``GET  /api/images/{id}/result.{fmt}``   the result as png, webp, gif or kmq
``GET  /api/images/{id}/curve?ks=2,4``   bytes and quality against K
=======================================  ======================================

Status codes: 400 bad parameter or URL, 403 cross-origin write, 404 no
such image (uploads are kept in a bounded cache: upload again), 413 upload
over the byte cap or image over the pixel cap, 422 not a readable image
(not an image, truncated, corrupt), a format that cannot hold the result or
a quality target missed (``quality`` MIN not reached: the CLI's exit 99),
503 every job slot busy for the whole wait.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .._errors import DecodeError, InputError, KmqError, LimitError, OutputError, UsageError
from .._io import _is_url, read_source_bytes, sample_image_path
from .._quality import QualityError
from ._state import (
    DOWNLOADS, MEDIA_TYPES, OPTIONS, LRU, Busy, Cancelled, Jobs, Result, StoredImage, compress_options, image_id, options_key,
    parse_options,
)

__all__ = ["create_app", "DEFAULT_MAX_UPLOAD_BYTES", "DEFAULT_MAX_PIXELS", "DEFAULT_CURVE_KS"]

STATIC = Path(__file__).with_name("static")
#: Upload caps of ``kmq serve`` (``--max-upload-mb``, ``--max-pixels``).
DEFAULT_MAX_UPLOAD_BYTES = 64 << 20
DEFAULT_MAX_PIXELS = 50_000_000
#: The K values of the page's curve.
DEFAULT_CURVE_KS = (2, 4, 8, 16, 32, 64, 128, 256)

_STATUS = {UsageError: 400, InputError: 400, LimitError: 413, DecodeError: 422, OutputError: 422, QualityError: 422}


class _TooLarge(Exception):
    pass


def _error(status: int, message: str, kind: str = "error", headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": kind, "message": f"kmq: error: {message}", "status": status}, status, headers=headers)


def _kmq_error(exc: KmqError) -> JSONResponse:
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 500)
    return _error(status, str(exc), type(exc).__name__)


def _clean_name(name: str | None) -> str:
    """A client-given file name, reduced to a label for messages and
    download names (never used as a path on the server)."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())[:120].strip()
    return name or "upload"


def _download_name(image_name: str, k: int, ext: str) -> str:
    stem = Path(image_name.split("?")[0].rstrip("/")).stem if image_name else ""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "image"
    return f"{stem}-k{k}.{ext}"


def create_app(
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    jobs: int = 2,
    queue_wait: float = 10.0,
    heavy_wait: float = 60.0,
    max_images: int = 8,
    max_results: int = 32,
    cache_bytes: int = 1 << 30,
    allowed_hosts: tuple[str, ...] | None = None,
) -> Starlette:
    """The app. Caps: ``max_upload_bytes`` per upload (413), ``max_pixels``
    per image (413; None: none); ``jobs`` computes at once, each request
    waiting at most ``queue_wait`` s for a slot (``heavy_wait`` for the slow
    figures, the curve and downloads; see Jobs), then 503. Kept: the last
    ``max_images`` uploads and ``max_results`` results, within
    ``cache_bytes`` each. ``allowed_hosts``: Host header names accepted
    (None: any), against DNS rebinding when serving on loopback."""
    images = LRU(max_images, cache_bytes, lambda image: image.nbytes)
    results = LRU(max_results, cache_bytes, lambda result: result.nbytes)
    limiter = Jobs(jobs, queue_wait, heavy_wait)

    async def run(request, fn, *args, heavy=False):
        try:
            return await limiter.run(request, fn, *args, heavy=heavy)
        except KmqError as exc:
            return _kmq_error(exc)
        except MemoryError:
            return _error(503, "out of memory; try a smaller image", "MemoryError")

    def busy() -> JSONResponse:
        return _error(503, f"the server is busy ({limiter.n} jobs running); try again", "Busy", {"Retry-After": "1"})

    async def guarded(request, fn, *args, heavy=False):
        try:
            return await run(request, fn, *args, heavy=heavy)
        except Busy:
            return busy()
        except Cancelled:
            return Response(status_code=204)  # nobody is listening

    def find_image(request) -> StoredImage | JSONResponse:
        image = images.get(request.path_params["id"])
        if image is None:
            return _error(404, f"no image {request.path_params['id']} on the server (uploads are kept in a bounded cache: upload it again)", "NotFound")
        return image

    def find_result(request, image, options) -> tuple[Result, bool]:
        # Keyed by what kmq.compress is given: speed=4 and its n_init and
        # tol spelled out are one result.
        key = (image.id, options_key(compress_options(options)))
        result, hit = results.get_or_add(key, lambda: Result(image, options))
        return result, hit and result.computed

    def trim():
        # Results and the images' kept analyses grow as their parts are made.
        results.trim()
        images.trim()

    # -- routes ---------------------------------------------------------------

    async def index(request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def get_options(request):
        return JSONResponse({
            "options": [o.describe() for o in OPTIONS],
            "curve_ks": list(DEFAULT_CURVE_KS),
            "downloads": list(DOWNLOADS),
            "max_upload_bytes": max_upload_bytes,
            "max_pixels": max_pixels,
        })

    async def read_body(request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_upload_bytes:
            raise _TooLarge(int(declared))
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_upload_bytes:
                raise _TooLarge(None)
            chunks.append(chunk)
        return b"".join(chunks)

    def too_large(size) -> JSONResponse:
        what = f"the upload is {size:,} bytes" if size else "the upload is larger than the limit"
        return _error(413, f"{what}, more than the limit of {max_upload_bytes:,} bytes (kmq serve --max-upload-mb)", "LimitError")

    async def upload(request):
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            data = await read_body(request)
        except _TooLarge as exc:
            return too_large(exc.args[0])
        name = request.query_params.get("name")
        if content_type == "application/json":
            try:
                payload = json.loads(data)
                url, sample = payload.get("url"), payload.get("sample")
            except (ValueError, AttributeError):
                url = sample = None
            if sample is True:
                # The photograph shipped with kmq (the page's "try the sample").
                data, name = sample_image_path().read_bytes(), sample_image_path().name
            elif not isinstance(url, str) or not _is_url(url):
                return _error(400, f"give an image as the request body, or JSON {{\"url\": \"https://...\"}} with an http(s) URL, got {data[:80]!r}", "UsageError")

            else:
                def fetch(cancel):
                    # kmq's own reader, as for `kmq compress URL`: only http(s).
                    return read_source_bytes(url)[0]

                fetched = await guarded(request, fetch)
                if isinstance(fetched, Response):
                    return fetched
                if len(fetched) > max_upload_bytes:
                    return too_large(len(fetched))
                data, name = fetched, url
        elif content_type == "multipart/form-data":
            body = data

            async def replay():
                return {"type": "http.request", "body": body, "more_body": False}

            form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
            field = form.get("file")
            if field is None or isinstance(field, str):
                return _error(400, "the multipart upload has no file field named 'file'", "UsageError")
            data, name = await field.read(), name or field.filename
        name = name if name and _is_url(name) else _clean_name(name)
        if not data:
            return _error(422, f"{name} is empty (0 bytes), not an image", "DecodeError")
        key = image_id(data)
        known = images.get(key)
        if known is not None:
            return JSONResponse(known.info())

        def decode(cancel):
            return StoredImage.decode(key, data, name=name, max_pixels=max_pixels)

        stored = await guarded(request, decode)
        if isinstance(stored, Response):
            return stored
        image, _ = images.get_or_add(key, lambda: stored)
        return JSONResponse(image.info(), 201)

    async def image_info(request):
        image = find_image(request)
        return image if isinstance(image, Response) else JSONResponse(image.info())

    async def original(request):
        image = find_image(request)
        if isinstance(image, Response):
            return image
        png = await guarded(request, lambda cancel: image.png())
        if isinstance(png, Response):
            return png
        images.trim()
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    async def result(request):
        image = find_image(request)
        if isinstance(image, Response):
            return image
        try:
            options = parse_options(request.query_params, allowed_extra=("quick", "webp"))
        except UsageError as exc:
            return _kmq_error(exc)
        full = request.query_params.get("quick") not in ("1", "true")
        webp = request.query_params.get("webp") not in ("0", "false")
        entry, hit = find_result(request, image, options)
        meta = await guarded(request, lambda cancel: entry.metadata(full=full, webp=webp, cancel=cancel), heavy=full)
        if isinstance(meta, Response):
            return meta
        trim()
        return JSONResponse(meta, headers={"X-Kmq-Cache": "hit" if hit else "miss"})

    async def download(request):
        image = find_image(request)
        if isinstance(image, Response):
            return image
        fmt = request.path_params["fmt"]
        if fmt not in DOWNLOADS:
            return _error(404, f"no result format {fmt!r}; use one of {', '.join(DOWNLOADS)}", "NotFound")
        try:
            options = parse_options(request.query_params)
        except UsageError as exc:
            return _kmq_error(exc)
        entry, hit = find_result(request, image, options)
        # The page's preview is the PNG: interactive; other formats are heavy.
        data = await guarded(request, lambda cancel: entry.encoded(fmt, cancel), heavy=fmt != "png")
        if isinstance(data, Response):
            return data
        trim()
        filename = _download_name(image.source.name, options["k"], DOWNLOADS[fmt])
        return Response(data, media_type=MEDIA_TYPES[fmt], headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, max-age=3600",
            "X-Kmq-Cache": "hit" if hit else "miss",
        })

    async def curve(request):
        image = find_image(request)
        if isinstance(image, Response):
            return image
        try:
            options = parse_options(request.query_params, allowed_extra=("ks",))
            text = request.query_params.get("ks")
            ks = DEFAULT_CURVE_KS if not text else tuple(OPTIONS[0].parse(t.strip()) for t in text.split(","))
            if len(ks) > 16:
                raise UsageError(f"at most 16 values of K in one curve request, got {len(ks)}")
        except UsageError as exc:
            return _kmq_error(exc)
        points = []
        for k in ks:
            entry, _ = find_result(request, image, {**options, "k": k})
            point = await guarded(request, entry.curve_point, heavy=True)
            if isinstance(point, Response):
                return point
            trim()
            points.append(point)
        return JSONResponse({"image": image.id, "options": {**options, "k": None}, "points": points})

    async def not_found(request):
        return _error(404, f"no such API endpoint: {request.method} {request.url.path}", "NotFound")

    routes = [
        Route("/", index),
        Route("/api/options", get_options),
        Route("/api/images", upload, methods=["POST"]),
        Route("/api/images/{id}", image_info),
        Route("/api/images/{id}/original.png", original),
        Route("/api/images/{id}/result", result),
        Route("/api/images/{id}/result.{fmt}", download),
        Route("/api/images/{id}/curve", curve),
        Route("/api/{rest:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.images = images
    app.state.results = results
    app.state.jobs = limiter
    return _Guard(app, allowed_hosts)


class _Guard:
    """ASGI wrapper: checks the Host header (DNS rebinding), refuses
    cross-origin writes (another site's page posting to this server), and
    adds headers that keep the page on its own origin (no CDN, no frames)."""

    _HEADERS = [
        (b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
         b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]

    def __init__(self, app, allowed_hosts):
        self.app = app
        self.state = app.state
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        hostname = hostname.lower()
        if self.allowed is not None and hostname not in self.allowed:
            return await _error(400, f"unexpected Host header {host!r}", "UsageError")(scope, receive, send)
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD") and origin is not None and origin.split("://", 1)[-1] != host:
            return await _error(403, "cross-origin requests are refused", "Forbidden")(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self._HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
