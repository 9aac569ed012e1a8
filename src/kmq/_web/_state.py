"""What the web server keeps between requests: uploaded images, results,
the options a result depends on, and the limit on jobs running at once.

Everything here is plain Python and threads (the compute runs in worker
threads); app.py puts it behind HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from .. import metrics as _metrics
from .._cli._args import _dither_level, _quality_range, _speed, engine_options
from .._engine.colorspace import SPACES
from .._errors import KmqError, UsageError
from .._io import SourceImage, export_notes, read_image
from .._quantize import (
    DEFAULT_DITHER, DEFAULT_MAX_ITER, DEFAULT_SPACE, DEFAULT_SPEED, ImageAnalysis, _check_space, _compress,
)

__all__ = ["Option", "OPTIONS", "parse_options", "compress_options", "LRU", "Jobs", "Busy", "Cancelled", "StoredImage", "Result", "image_id"]


# -- options ------------------------------------------------------------------


def _cli_check(convert):
    """A ``kmq compress`` argument type (kmq._cli._args: text -> value or
    argparse.ArgumentTypeError) as the check of a query value: the CLI's
    own check and words, the parameter named as the API names it."""

    def check(name: str, text: str):
        try:
            return convert(text)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"{name}: {exc}") from None

    return check


def _space_check(name: str, text: str) -> str:
    """The library's check of a colour space (the CLI's --space offers the
    same choices)."""
    try:
        return _check_space(text)
    except UsageError as exc:
        raise UsageError(f"{name}: {exc}") from None


@dataclass(frozen=True)
class Option:
    """One setting of :func:`kmq.compress` as the API takes it (a query
    parameter of the same name) and as the page shows it (``describe()``).

    kind : "int", "float", "choice" or "range" (quality's MIN-MAX);
    ``low``/``high`` bound numbers (``low_open``: the lower bound itself is
    refused); ``choices`` for a choice. ``default`` None means "not given":
    kmq compress's own rule then applies, which ``auto`` says in words (the
    --speed level picks n_init, tol and the dithering) and
    ``auto_value`` gives at the default speed, where it is one value. ``check``:
    ``(name, text) -> value`` for the settings ``kmq compress`` has, so that
    a bad value gets the CLI's check and words; the others are checked here
    against the bounds. ``group``: "main" (shown beside K) or "more".
    """

    name: str
    kind: str
    default: object
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple = ()
    check: object = field(default=None, compare=False, repr=False)
    auto: str | None = None
    auto_value: object = None
    group: str = "more"

    def parse(self, text: str):
        if self.check is not None:
            return self.check(self.name, text)
        if self.kind == "choice":
            if text not in self.choices:
                raise UsageError(f"{self.name} must be one of {', '.join(self.choices)}, got {text!r}")
            return text
        convert = int if self.kind == "int" else float
        what = "a whole number" if self.kind == "int" else "a number"
        try:
            value = convert(text)
        except ValueError:
            raise UsageError(f"{self.name} must be {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{self.name} must be a finite number, got {text!r}")
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and value > self.high
        if too_low or too_high:
            left = "(" if self.low_open else "["
            raise UsageError(f"{self.name} must be in {left}{self.low:g}, {self.high:g}], got {text}")
        return value

    def describe(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "default": self.default,
            "help": self.help,
            "low": self.low,
            "high": self.high,
            "low_open": self.low_open,
            "choices": list(self.choices),
            "auto": self.auto,
            "auto_value": self.auto_value,
            "group": self.group,
        }


_SPEED_AUTO = "from speed"

#: The settings a result depends on: each is a query parameter of the API
#: and, but for ``speed``, a keyword of kmq.compress; the page draws a
#: control for each from GET /api/options. ``speed`` and the unset
#: n_init, tol, sample and dither become compress()'s keywords as in
#: ``kmq compress`` (compress_options). A new compress() setting is one
#: line here.
OPTIONS: tuple[Option, ...] = (
    Option("k", "int", 16, "number of colours (PNG and GIF hold at most 256); with a quality target, the most allowed",
           low=1, high=256, group="main"),
    Option("space", "choice", DEFAULT_SPACE, "colour space of k-means and of the mapping to the palette",
           choices=tuple(SPACES), check=_space_check, group="main"),
    Option("dither", "float", None, "Floyd-Steinberg dithering level, 0 (none) to 1 (full)", low=0, high=1,
           check=_cli_check(_dither_level), auto=f"{DEFAULT_DITHER:g} (0 at speed 11)", auto_value=DEFAULT_DITHER,
           group="main"),
    Option("quality", "range", None, "quality target MIN-MAX (0-100, kmq's scale): the fewest colours, up to K, "
           "reaching MAX; an error if even K colours fall short of MIN", low=0, high=100,
           check=_cli_check(_quality_range), auto="off", group="main"),
    Option("speed", "int", DEFAULT_SPEED, "1 (slowest, best) to 11 (fastest): sets n_init and tol unless given",
           low=1, high=11, check=_cli_check(_speed), group="main"),
    Option("seed", "int", 0, "random seed: the same seed gives the same result", low=0, high=2**32 - 1),
    Option("sample", "float", None, "fit the palette on this fraction of the pixels", low=0, high=1, low_open=True,
           auto=_SPEED_AUTO),
    Option("n_init", "int", None, "k-means runs, the best kept", low=1, high=10, auto=_SPEED_AUTO),
    Option("max_iter", "int", DEFAULT_MAX_ITER, "maximum k-means iterations", low=1, high=1000),
    Option("tol", "float", None, "k-means convergence tolerance", low=0, high=1, auto=_SPEED_AUTO),
    Option("init", "choice", "k-means++", "k-means seeding", choices=("k-means++", "random")),
)
_BY_NAME = {option.name: option for option in OPTIONS}
#: K when a quality target is given without one: kmq compress's rule.
K_WITH_QUALITY = 256


def parse_options(query, *, allowed_extra: tuple = ()) -> dict:
    """Query parameters -> every option's value (defaults filled in), in
    OPTIONS order; unknown names are refused (UsageError) so that a typo is
    not silently a default. A quality target without K allows 256 colours,
    as in kmq compress."""
    for name in query.keys():
        if name not in _BY_NAME and name not in allowed_extra:
            known = ", ".join([*_BY_NAME, *allowed_extra])
            raise UsageError(f"unknown parameter {name!r}; the parameters are {known}")
    values = {}
    for option in OPTIONS:
        text = query.get(option.name)
        values[option.name] = option.default if text in (None, "") else option.parse(text)
    if values["quality"] is not None and query.get("k") in (None, ""):
        values["k"] = K_WITH_QUALITY
    return values


def compress_options(values: dict) -> dict:
    """parse_options' values -> the keyword arguments of kmq.compress
    (``k`` included), resolved as ``kmq compress`` resolves its options
    (kmq._cli._args.engine_options: --speed sets what is not given)."""
    args = SimpleNamespace(**{name: values[name] for name in ("speed", "sample", "n_init", "tol", "space", "dither", "quality")})
    return {"k": values["k"], "seed": values["seed"], "max_iter": values["max_iter"], "init": values["init"], **engine_options(args)}


def options_key(kwargs: dict) -> tuple:
    """A result's cache key from compress_options: K first."""
    return (kwargs["k"], *(kwargs[name] for name in sorted(kwargs) if name != "k"))


# -- a bounded cache ----------------------------------------------------------


class LRU:
    """Least-recently-used mapping bounded by entry count and by total size
    (``sizeof(value)`` in bytes; the newest entry is always kept)."""

    def __init__(self, max_items: int, max_bytes: int, sizeof):
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._sizeof = sizeof
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def get_or_add(self, key, make):
        """(value, True if it was there); ``make()`` must be cheap."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                return value, True
            value = self._items[key] = make()
            self._trim()
            return value, False

    def trim(self) -> None:
        """Re-apply the bounds (values grow as their lazy parts are made)."""
        with self._lock:
            self._trim()

    def _trim(self) -> None:
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        while len(self._items) > 1 and sum(self._sizeof(v) for v in self._items.values()) > self.max_bytes:
            self._items.popitem(last=False)

    def keys(self) -> list:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


# -- jobs -----------------------------------------------------------------------


class Busy(Exception):
    """Every job slot stayed taken for the whole wait."""


class Cancelled(Exception):
    """The client went away: the job stopped between two of its steps."""


class Jobs:
    """At most ``n`` compute jobs at once, each in a worker thread.

    Heavy jobs (the slow figures: SSIM, .kmq and WebP sizes, the curve,
    downloads) take at most ``n - 1`` of the slots when ``n > 1``, so that
    one is always left for the page's interactive job (the picture and its
    quick figures after a move of the slider).

    A request waits for a slot up to ``wait`` seconds (``heavy_wait`` for
    heavy jobs), then gets Busy (503). While it waits, and while its job
    runs, the client is watched: one that has gone (the page aborted a
    stale request) frees its place in the queue at once, and its running
    job is told to stop at its next step (``cancel`` event) - stale work is
    dropped, not queued behind.
    """

    def __init__(self, n: int, wait: float, heavy_wait: float | None = None):
        self.n = n
        self.wait = wait
        self.heavy_wait = wait if heavy_wait is None else heavy_wait
        # Threading semaphores (not asyncio's): tests and the event loop can
        # both hold them, and they are never awaited (see run).
        self.slots = threading.BoundedSemaphore(n)
        self.heavy_slots = threading.BoundedSemaphore(max(1, n - 1))

    async def _acquire(self, semaphore, request, deadline) -> None:
        while not semaphore.acquire(blocking=False):
            if request is not None and await request.is_disconnected():
                raise Cancelled()
            if time.monotonic() >= deadline:
                raise Busy()
            await asyncio.sleep(0.01)

    async def run(self, request, fn, *args, heavy: bool = False):
        """``fn(cancel, *args)`` in a worker thread, with a slot."""
        from starlette.concurrency import run_in_threadpool

        deadline = time.monotonic() + (self.heavy_wait if heavy else self.wait)
        held = []
        try:
            for semaphore in ((self.heavy_slots, self.slots) if heavy else (self.slots,)):
                await self._acquire(semaphore, request, deadline)
                held.append(semaphore)
            cancel = threading.Event()
            task = asyncio.ensure_future(run_in_threadpool(fn, cancel, *args))
            while True:
                done, _ = await asyncio.wait({task}, timeout=0.05)
                if done:
                    break
                if request is not None and not cancel.is_set() and await request.is_disconnected():
                    cancel.set()
            return task.result()
        finally:
            # Only once the thread is done: until then its core is busy.
            for semaphore in reversed(held):
                semaphore.release()


# -- images and results -------------------------------------------------------


def image_id(data: bytes) -> str:
    """The id of an upload: the first 32 hex digits of its SHA-256."""
    return hashlib.sha256(data).hexdigest()[:32]


class StoredImage:
    """An uploaded image, decoded once (pixels (H, W, C) uint8), with what
    every compression of it shares (``analysis``: its colour histogram and
    working-space points, made by the first and kept for the next: moving K
    refits and remaps, nothing more)."""

    def __init__(self, id: str, source: SourceImage):
        self.id = id
        self.source = source
        self.analysis = ImageAnalysis(source.pixels)
        self._png = None
        self._lock = threading.Lock()

    @classmethod
    def decode(cls, id: str, data: bytes, *, name: str, max_pixels: int | None) -> "StoredImage":
        return cls(id, read_image(data, max_pixels=max_pixels, name=name))

    @property
    def nbytes(self) -> int:
        return self.source.pixels.nbytes + self.analysis.nbytes + (len(self._png) if self._png else 0)

    def info(self) -> dict:
        h, w, c = self.source.pixels.shape
        return {
            "id": self.id,
            "name": self.source.name,
            "width": w,
            "height": h,
            "mode": self.source.mode,
            "channels": c,
            "pixels": h * w,
            "bytes": self.source.input_bytes,
            "format": self.source.format,
            "notes": list(self.source.notes),
        }

    def png(self) -> bytes:
        """The decoded pixels as PNG: what the page shows as the original
        (EXIF rotation and conversions applied, as kmq sees it)."""
        with self._lock:
            if self._png is None:
                from PIL import Image

                pixels = self.source.pixels
                pil = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels, self.source.mode)
                buffer = io.BytesIO()
                # Level 1: shown once, never downloaded; speed over size.
                pil.save(buffer, "PNG", compress_level=1)
                self._png = buffer.getvalue()
            return self._png


#: Formats a result can be downloaded in, and the extension of each.
DOWNLOADS = {"png": "png", "webp": "webp", "gif": "gif", "kmq": "kmq"}
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "gif": "image/gif", "kmq": "application/octet-stream"}


class _Failed:
    """A part that failed with a KmqError (a quality target missed): kept,
    so that asking again gives the same error without the work."""

    def __init__(self, error: KmqError):
        self.error = error


class Result:
    """kmq.compress(image, **compress_options(options)) and what is derived
    from it, each part made on first use and kept: the encoded files, PSNR,
    SSIM, shares. ``options``: the API's values (parse_options)."""

    def __init__(self, image: StoredImage, options: dict):
        self.image = image
        self.options = dict(options)
        self.kwargs = compress_options(self.options)
        self._parts: dict[str, object] = {}
        # One lock per part: a slow part (WebP) being made does not hold up
        # a quick one (the PNG) of the same result.
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _part(self, name: str, make):
        with self._locks_lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._parts:
                try:
                    self._parts[name] = make()
                except KmqError as exc:
                    self._parts[name] = _Failed(exc)
            value = self._parts[name]
        if isinstance(value, _Failed):
            raise value.error
        return value

    @property
    def nbytes(self) -> int:
        size = 0
        for value in list(self._parts.values()):
            if isinstance(value, bytes):
                size += len(value)
            elif hasattr(value, "labels"):
                size += value.labels.nbytes
        return size

    @property
    def computed(self) -> bool:
        return "compressed" in self._parts

    def compressed(self, cancel: threading.Event | None = None):
        """The kmq.Compressed (the same as kmq.compress gives for these
        options, made with the image's kept analysis). ``cancel`` set: stop
        at the compression's next stage (Cancelled)."""

        def check(stage: str) -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled()

        def make():
            kwargs = dict(self.kwargs)
            k = kwargs.pop("k")
            return _compress(self.image.source, k, kwargs, self.image.analysis, progress=check)

        return self._part("compressed", make)

    def encoded(self, fmt: str, cancel: threading.Event | None = None) -> bytes:
        c = self.compressed(cancel)
        return self._part(fmt, lambda: c.to_bytes(fmt))

    def _measure(self, cancel=None):
        c = self.compressed(cancel)
        return self._part(
            "measure", lambda: _metrics.measure(c.source.pixels, c, input_bytes=c.source.input_bytes, with_ssim=False)
        )

    def ssim(self):
        c = self.compressed()
        original = c.source.pixels
        # Of what is seen, as the CLI's report: hidden colour under
        # transparent pixels does not count.
        return self._part("ssim", lambda: _metrics.ssim_seen(original, c.reconstruct().reshape(original.shape)))

    def perceptual_score(self):
        c = self.compressed()
        original = c.source.pixels
        return self._part(
            "perceptual", lambda: _metrics.perceptual_score(original, c.reconstruct().reshape(original.shape))
        )

    def metadata(self, *, full: bool, webp: bool = True, cancel: threading.Event | None = None) -> dict:
        """The figures the page shows (JSON-ready). Without ``full``, the
        fast ones only (webp and kmq bytes, SSIM and the perceptual score
        are None): the picture
        and its PNG size come first, the slower figures after; ``webp``
        False leaves out the slowest of those, the WebP size (None).
        ``cancel`` set: stop before the next slow step (Cancelled)."""
        c = self.compressed(cancel)
        m = self._measure()
        png = self.encoded("png")
        webp_bytes = kmq_bytes = ssim = perceptual = None
        if full:
            steps = [self.ssim, self.perceptual_score, lambda: len(self.encoded("kmq"))]
            if webp:
                steps.append(lambda: len(self.encoded("webp")))
            values = []
            for step in steps:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                values.append(step())
            ssim, perceptual, kmq_bytes = values[:3]
            webp_bytes = values[3] if webp else None
        counts = np.bincount(c.labels.ravel(), minlength=c.k)
        n = c.labels.size
        palette = []
        for index, (entry, count) in enumerate(zip(c.palette.tolist(), counts.tolist())):
            rgb = entry[:1] * 3 if len(entry) <= 2 else entry[:3]
            palette.append({
                "index": index,
                "hex": "#" + "".join(f"{v:02x}" for v in rgb),
                "value": entry,
                "alpha": entry[-1] if len(entry) in (2, 4) else 255,
                "pixels": count,
                "share": count / n,
            })
        kwargs = {**self.kwargs, "quality": None if self.kwargs["quality"] is None else list(self.kwargs["quality"])}
        options = {**self.options, "quality": kwargs["quality"]}
        return {
            "image": self.image.id,
            "options": options,
            "compress": kwargs,
            "width": m.width,
            "height": m.height,
            "mode": c.mode,
            "pixels": n,
            "k": c.k,
            "k_requested": c.k_requested,
            "lossless": c.lossless,
            "distinct_colors": c.n_colors_in,
            "n_iter": c.n_iter,
            "quality": c.quality,
            "quality_note": c.quality_note,
            # What the GIF download does not keep (its on/off transparency),
            # as kmq compress notes it; None when it keeps everything.
            "gif_note": next(iter(export_notes(c.palette, c.mode, "gif")), None),
            "palette": palette,
            "bytes": {
                "original": c.source.input_bytes,
                "raw": m.raw_bytes,
                "png": len(png),
                "webp": webp_bytes,
                "kmq": kmq_bytes,
            },
            "mse": m.mse,
            "psnr": None if math.isinf(m.psnr) else m.psnr,
            "ssim": ssim,
            "perceptual_score": perceptual,
            # Shares of the opaque pixels still at alpha 255 and of the fully
            # transparent ones still at 0 (None: no alpha, or no such pixel).
            "opaque_kept": m.opaque_kept,
            "transparent_kept": m.transparent_kept,
            "ratio": m.ratio,
            "ratio_to_1": m.ratio_to_1,
            "index_bits": m.index_bits,
            "seconds": c.seconds,
            "complete": full and webp,
        }

    def curve_point(self, cancel: threading.Event | None = None) -> dict:
        """One K of the size-and-quality curve: PNG and .kmq bytes, PSNR, SSIM."""
        c = self.compressed(cancel)
        m = self._measure()
        png = len(self.encoded("png"))
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        ssim = self.ssim()
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        return {
            "k": self.options["k"],
            "k_used": c.k,
            "png": png,
            "kmq": len(self.encoded("kmq")),
            "psnr": None if math.isinf(m.psnr) else m.psnr,
            "ssim": ssim,
        }
