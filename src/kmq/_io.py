"""Stage 1 and stage 5 of the pipeline: reading images, writing files.

This module owns every byte kmq reads or writes:

* :func:`read_image` turns a path, URL, ``-`` (stdin), bytes, a
  ``PIL.Image`` or an ndarray into one normalised uint8 array in one of the
  modes L, LA, RGB, RGBA, and says what it did to get there (EXIF rotation,
  16-bit reduction, first frame of an animation) in ``notes``.
* :func:`encode_export` renders a palette image as PNG/GIF/WebP/JPEG/BMP/TIFF.
* :func:`write_atomic` puts bytes on disk through a temporary file in the
  target folder and a rename, so a failure never leaves half a file.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# The modes kmq works in (by channel count) and the pixel limit are the
# container's: one definition for reading images and reading .kmq files.
from ._container import DEFAULT_MAX_PIXELS, MODES
from ._engine import _parallel
from ._errors import DecodeError, InputError, KmqError, LimitError, OutputError, UsageError

__all__ = [
    "SourceImage",
    "read_image",
    "read_source_bytes",
    "download",
    "check_max_pixels",
    "DEFAULT_URL_TIMEOUT",
    "encode_export",
    "write_atomic",
    "write_stdout",
    "remove_stale_temporaries",
    "check_output",
    "format_for_path",
    "EXPORT_FORMATS",
    "PALETTE_FORMATS",
    "MODES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_INPUT_BYTES",
    "file_identity",
    "sample_image_path",
]


#: Output formats by extension. "kmq" is the container; the rest go through
#: Pillow.
EXPORT_FORMATS = {
    ".kmq": "kmq",
    ".png": "png",
    ".gif": "gif",
    ".webp": "webp",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".bmp": "bmp",
    ".tif": "tiff",
    ".tiff": "tiff",
}
#: Formats that store palette indices, hence need K <= 256.
PALETTE_FORMATS = frozenset({"png", "gif"})

#: Most bytes read from a source whose size is not known in advance: a URL,
#: stdin, a named pipe, a device (``/dev/zero`` never ends). Regular files
#: are bounded by their size (and every image by ``max_pixels``).
DEFAULT_MAX_INPUT_BYTES = 256 << 20
#: A named pipe given by path must deliver data within this many seconds
#: (waiting for its writer, then between reads), as a URL must answer within
#: its deadline: a pipe nobody writes to would otherwise block for ever.
_PIPE_TIMEOUT_S = 30
_READ_CHUNK = 1 << 20
#: Deadline of a whole download (connecting, headers and body), seconds.
DEFAULT_URL_TIMEOUT = 60.0
_MAX_REDIRECTS = 10


def download(url: str, *, timeout: float | None = None, max_bytes: int | None = DEFAULT_MAX_INPUT_BYTES) -> bytes:
    """The body of an ``http(s)://`` URL, within an overall deadline.

    ``timeout`` (seconds, default :data:`DEFAULT_URL_TIMEOUT`) bounds the
    whole download, not each read: a server that drips one byte a second
    is cut off at the deadline. Redirects are followed to http(s) URLs
    only, at most 10. A body shorter than its Content-Length, a malformed
    status line or header, too many headers or a broken chunked body is an
    InputError, as is a body over ``max_bytes`` (None: no cap).
    """
    import threading

    timeout = DEFAULT_URL_TIMEOUT if timeout is None else float(timeout)
    if not timeout > 0:
        raise UsageError(f"the download timeout must be a number of seconds > 0, got {timeout!r}")
    # The download runs in a daemon thread so that the deadline holds
    # whatever the server does (urllib's timeout applies to each socket
    # operation, which a dripping server resets byte by byte); at the
    # deadline the connection is closed under the reader.
    box: dict = {}
    state = {"response": None, "cancelled": False}

    def work():
        try:
            box["data"] = _download_now(url, timeout, state, max_bytes)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=work, name="kmq-download", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        state["cancelled"] = True
        response = state["response"]
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()
        raise InputError(f"cannot download {url}: no complete answer within {timeout:g} s (--timeout)")
    if "error" in box:
        raise box["error"]
    return box["data"]


def _download_now(url: str, timeout: float, state: dict, max_bytes: int | None) -> bytes:
    import http.client  # here, not at the top: 20 ms of every start-up
    import urllib.error
    import urllib.request

    class Redirects(urllib.request.HTTPRedirectHandler):
        max_redirections = _MAX_REDIRECTS

        def http_error_302(self, req, fp, code, msg, headers):
            import urllib.parse

            location = headers.get("location") or headers.get("uri")
            if location:
                target = urllib.parse.urljoin(req.full_url, location.strip())
                scheme = urllib.parse.urlsplit(target).scheme.lower()
                if scheme not in ("http", "https"):
                    raise InputError(
                        f"cannot download {url}: redirected to {scheme!r}, not http(s); "
                        "kmq follows http(s) redirects only"
                    )
            return super().http_error_302(req, fp, code, msg, headers)

        http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    opener = urllib.request.build_opener(Redirects)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "kmq"})
        with opener.open(request, timeout=timeout) as response:
            state["response"] = response
            expected = response.headers.get("Content-Length")
            chunks, size = [], 0
            while True:
                chunk = response.read(1 << 16)
                if not chunk or state["cancelled"]:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise InputError(f"cannot download {url}: larger than {_describe_bytes(max_bytes)} (--max-input-bytes)")
            data = b"".join(chunks)
    except KmqError:
        raise
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise InputError(f"cannot download {url}: too many redirects or a redirect loop (HTTP {exc.code})") from None
        raise InputError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        raise InputError(f"cannot download {url}: incomplete download ({len(exc.partial):,} bytes, then the connection closed)") from None
    except http.client.LineTooLong:
        raise InputError(f"cannot download {url}: the server sent a header line too long") from None
    except http.client.HTTPException as exc:
        what = type(exc).__name__
        detail = {
            "BadStatusLine": "the server's answer is not HTTP",
            "RemoteDisconnected": "the server closed the connection without an answer",
        }.get(what, f"malformed HTTP answer ({what}: {exc})".replace(": )", ")"))
        if "headers" in str(exc) and what == "HTTPException":
            detail = f"malformed HTTP answer: {exc}"
        raise InputError(f"cannot download {url}: {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"cannot download {url}: {reason}") from None
    if expected is not None and expected.strip().isdigit() and len(data) < int(expected):
        raise InputError(
            f"cannot download {url}: incomplete download ({len(data):,} of {int(expected):,} bytes, then the connection closed)"
        )
    return data


def sample_image_path() -> Path:
    """Path of the photograph shipped with kmq (Kodak kodim23, 768x512)."""
    return Path(__file__).with_name("data") / "kodim23.png"


@dataclass
class SourceImage:
    """A decoded input image.

    Attributes
    ----------
    pixels : ndarray, shape (H, W, C), uint8
        C = 1, 2, 3 or 4 for modes L, LA, RGB, RGBA.
    mode : str
    name : str
        What the user gave (path, URL, ``<stdin>``, ``<array>``...).
    input_bytes : int or None
        Size of the encoded input, when it came as a file, URL or bytes.
    format : str or None
        Pillow's name of the input's format (PNG, JPEG, ...).
    notes : list of str
        Conversions applied, in words for the report.
    icc_profile : bytes or None
        The input's embedded ICC colour profile (Pillow's
        ``info["icc_profile"]``), kept for the outputs that can carry one.
    """

    pixels: np.ndarray
    mode: str
    name: str
    input_bytes: int | None = None
    format: str | None = None
    notes: list[str] = field(default_factory=list)
    path: Path | None = None
    icc_profile: bytes | None = None


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def read_source_bytes(
    source: str | os.PathLike, *, max_bytes: int | None = DEFAULT_MAX_INPUT_BYTES, timeout: float | None = None
) -> tuple[bytes, str, Path | None]:
    """Read the raw bytes of a path, URL or ``-`` (stdin).

    ``max_bytes`` caps what is read from a source of unknown size (URL,
    stdin, a named pipe, a device); more is an InputError and nothing of it
    is kept. None: no cap. Regular files are read whole.

    Returns ``(data, name, path)``; path is None for a URL or stdin.
    ``timeout`` is the whole download's deadline in seconds for a URL
    (default :data:`DEFAULT_URL_TIMEOUT`). Raises InputError when the source
    cannot be reached or is over the cap.
    """
    if isinstance(source, str) and source == "-":
        if sys.stdin is None:
            raise InputError("cannot read standard input: it is closed")
        return _read_capped(sys.stdin.buffer.read, "<stdin>", max_bytes), "<stdin>", None
    if isinstance(source, str) and _is_url(source):
        return download(source, timeout=timeout, max_bytes=max_bytes), source, None
    path = Path(source)
    try:
        if path.is_dir():
            raise InputError(f"{path} is a directory, not an image file")
        kind = os.stat(path).st_mode
        if stat.S_ISREG(kind):
            return path.read_bytes(), str(path), path
        return _read_special(path, kind, max_bytes), str(path), path
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except PermissionError:
        raise InputError(f"permission denied: cannot read {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not an image file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _describe_bytes(n: int) -> str:
    return f"{n >> 20} MiB" if n and n % (1 << 20) == 0 else f"{n:,} bytes"


def _over_cap(name: str, max_bytes: int) -> InputError:
    return InputError(
        f"{name} holds more than {_describe_bytes(max_bytes)}; nothing was written "
        "(raise the cap with --max-input-bytes if the input is meant to be this large)"
    )


def _read_capped(read, name: str, max_bytes: int | None) -> bytes:
    """``read(n)`` in chunks until end of data, at most ``max_bytes``."""
    parts, total = [], 0
    while True:
        chunk = read(_READ_CHUNK)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise _over_cap(name, max_bytes)


def _read_special(path: Path, kind: int, max_bytes: int | None) -> bytes:
    """A named pipe, a character device, a socket...: read with the cap. A
    named pipe is opened without blocking and polled, so that one with no
    writer fails after _PIPE_TIMEOUT_S instead of blocking for ever."""
    if not stat.S_ISFIFO(kind):
        with open(path, "rb", buffering=0) as handle:
            return _read_capped(handle.read, str(path), max_bytes)
    import select

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        parts, total = [], 0
        while True:
            # With no writer yet, poll reports nothing (and read() gives b""):
            # only a read after a poll event can mean end of data.
            if not poller.poll(int(_PIPE_TIMEOUT_S * 1000)):
                raise InputError(
                    f"nothing to read from the named pipe {path} for {_PIPE_TIMEOUT_S} s (no writer?)"
                )
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except BlockingIOError:
                continue
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
            total += len(chunk)
            if max_bytes is not None and total > max_bytes:
                raise _over_cap(str(path), max_bytes)
    finally:
        os.close(fd)


def check_max_pixels(max_pixels) -> int | None:
    """``max_pixels`` as given to the API: None (no limit) or an int >= 1.

    0 and negative numbers are refused (UsageError): in the API "no limit"
    is None (``--max-pixels 0`` is the command line's spelling of it).
    """
    if max_pixels is None:
        return None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise UsageError(f"max_pixels must be a whole number >= 1, or None for no limit, got {max_pixels!r}")
    return int(max_pixels)


def read_image(
    source,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_input_bytes: int | None = DEFAULT_MAX_INPUT_BYTES,
    timeout: float | None = None,
    name: str | None = None,
) -> SourceImage:
    """Read and normalise an image.

    Parameters
    ----------
    source : str, os.PathLike, bytes, PIL.Image.Image or ndarray
        A file path, an ``http(s)://`` URL, ``"-"`` for stdin, the encoded
        bytes of an image file, a Pillow image, or an array of shape (H, W)
        or (H, W, C) with C in 1..4 and dtype uint8 (other integer dtypes
        in 0..255 and uint16 are accepted; uint16 is reduced to 8 bits;
        floats in [0, 1] are scaled, ``round(x * 255)``). An (N, 3) or
        (N, 4) array is taken for points, not an image: UsageError.
    max_pixels : int or None
        Refuse images with more pixels than this (LimitError); None: no
        limit. 0 or less is a UsageError.
    max_input_bytes : int or None
        Most bytes read from a URL, stdin, a pipe or a device (InputError
        beyond); None: no cap.
    timeout : float, optional
        Deadline of a URL's whole download, seconds (default 60).
    name : str, optional
        What to call encoded bytes in messages and ``SourceImage.name``
        (e.g. the name of an uploaded file); default ``<bytes>``.

    Returns
    -------
    SourceImage
    """
    max_pixels = check_max_pixels(max_pixels)
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels)
    if isinstance(source, Image.Image):
        return _from_pil(source, "<PIL.Image>", None, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name, path = bytes(source), name or "<bytes>", None
    elif isinstance(source, (str, os.PathLike)):
        data, name, path = read_source_bytes(
            os.fspath(source) if not isinstance(source, str) else source, max_bytes=max_input_bytes, timeout=timeout
        )
    else:
        raise UsageError(
            f"cannot read an image from {type(source).__name__}: give a path, URL, bytes, PIL.Image or ndarray"
        )
    if not data:
        raise DecodeError(f"{name} is empty (0 bytes), not an image")
    # kmq's own max_pixels replaces Pillow's decompression-bomb check: the
    # size is checked (in _from_pil) after the header is parsed and before
    # any pixel is decoded.
    with _pillow_limit_lifted():
        try:
            pil = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise DecodeError(f"{name} is not an image kmq can read (PNG, JPEG, BMP, TIFF, WebP, GIF)") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise DecodeError(f"{name} is not a readable image: {exc}") from None
        result = _from_pil(pil, name, path, max_pixels)
    result.input_bytes = len(data)
    return result


@contextlib.contextmanager
def _pillow_limit_lifted():
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _check_size(width: int, height: int, name: str, max_pixels: int | None) -> None:
    if width < 1 or height < 1:
        raise DecodeError(f"{name} has no pixels ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise LimitError(
            f"{name} has {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,}; if you trust the file, raise the limit with --max-pixels (max_pixels=)"
        )


def _from_pil(pil: Image.Image, name: str, path: Path | None, max_pixels: int | None) -> SourceImage:
    notes: list[str] = []
    fmt = pil.format
    _check_size(pil.width, pil.height, name, max_pixels)
    frames = getattr(pil, "n_frames", 1)
    if frames > 1:
        notes.append(f"animated image with {frames} frames: only the first frame was used")
    # Read the bit depth before load(): decoding may close the file.
    bits16 = _is_16_bit(pil)
    try:
        with _pillow_limit_lifted():
            pil.load()
        exif_orientation = pil.getexif().get(0x0112, 1) if hasattr(pil, "getexif") else 1
        # Values outside 1..8 mean nothing (EXIF defines 1..8): ignored.
        if isinstance(exif_orientation, int) and 2 <= exif_orientation <= 8:
            pil = ImageOps.exif_transpose(pil)
            notes.append(f"EXIF orientation {exif_orientation} applied")
        pixels, mode, conversion = _to_uint8(pil)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DecodeError(f"{name} is truncated or corrupt: {exc}") from None
    if bits16:
        notes.append("16-bit image reduced to 8 bits per channel")
    if conversion:
        notes.append(conversion)
    icc = pil.info.get("icc_profile")
    icc = bytes(icc) if isinstance(icc, (bytes, bytearray)) and icc else None
    return SourceImage(pixels, mode, name, format=fmt, notes=notes, path=path, icc_profile=icc)


def _is_16_bit(pil: Image.Image) -> bool:
    if pil.mode.startswith("I;16"):
        return True
    if pil.format == "PNG":
        # Pillow silently reduces 16-bit RGB(A) PNGs to 8 bits on load.
        return _png_bit_depth(pil) == 16
    if pil.format == "TIFF" and hasattr(pil, "tag_v2"):
        bits = pil.tag_v2.get(258)
        if bits:
            bits = bits if isinstance(bits, tuple) else (bits,)
            # 32-bit integer and float samples are not "16-bit" (mode I, F).
            return pil.mode not in ("I", "F") and 8 < max(bits) <= 16 or pil.mode.startswith("I;16")
    return False


def _png_bit_depth(pil: Image.Image) -> int | None:
    """Bit depth from the PNG's IHDR: byte 24, after the 8-byte signature,
    the chunk length and type, width and height."""
    fp = getattr(pil, "fp", None)
    if fp is None:
        return None
    try:
        position = fp.tell()
        fp.seek(24)
        depth = fp.read(1)
        fp.seek(position)
    except (OSError, ValueError):
        return None
    return depth[0] if depth else None


def _to_uint8(pil: Image.Image) -> tuple[np.ndarray, str, str | None]:
    """Pillow image in any mode -> (pixels (H, W, C) uint8, mode, note)."""
    mode = pil.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return _as_hwc(np.asarray(pil)), mode, None
    if mode == "1":
        return _as_hwc(np.asarray(pil.convert("L"))), "L", None
    if mode == "P":
        if "transparency" in pil.info:
            return _as_hwc(np.asarray(pil.convert("RGBA"))), "RGBA", None
        rgb = pil.convert("RGB")
        return _as_hwc(np.asarray(rgb)), "RGB", None
    if mode == "PA":
        return _as_hwc(np.asarray(pil.convert("RGBA"))), "RGBA", None
    if mode in ("La",):
        return _as_hwc(np.asarray(pil.convert("LA"))), "LA", None
    if mode in ("RGBa",):
        return _as_hwc(np.asarray(pil.convert("RGBA"))), "RGBA", None
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(pil).astype(np.int64)
        # 16-bit samples: keep the top byte (x >> 8 == round-down of x/257).
        if mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values >> 8
        return _as_hwc(np.clip(values, 0, 255).astype(np.uint8)), "L", None
    if mode == "F":
        values = np.asarray(pil)
        if not np.isfinite(values).all():
            raise ValueError("the floating-point image holds NaN or infinity")
        low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
        if 0.0 <= low and high <= 1.0:
            # Float data in [0, 1], as scientific TIFFs store it.
            return _as_hwc(np.rint(values * 255.0).astype(np.uint8)), "L", "floating-point image in [0, 1] scaled to 0..255"
        if 0.0 <= low and high <= 255.0:
            return _as_hwc(np.rint(values).astype(np.uint8)), "L", "floating-point image rounded to 0..255"
        return (
            _as_hwc(np.clip(np.rint(values), 0, 255).astype(np.uint8)),
            "L",
            f"floating-point image with values {low:g}..{high:g} clipped to 0..255",
        )
    # CMYK, YCbCr, LAB, HSV: quantize in the RGB a viewer shows.
    return _as_hwc(np.asarray(pil.convert("RGB"))), "RGB", f"{mode} image converted to RGB"


def _as_hwc(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(array, dtype=np.uint8)


def _from_array(array: np.ndarray, max_pixels: int | None) -> SourceImage:
    name = "<array>"
    notes: list[str] = []
    if array.ndim == 2 and array.shape[1] in (3, 4) and array.shape[0] > 4:
        raise UsageError(
            f"got an array of shape {array.shape}: that is a list of {array.shape[1]}-D points, not an image; "
            "cluster points with kmq.KMeans (a grey image 3 or 4 pixels wide: give it as shape (H, W, 1))"
        )
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or not 1 <= array.shape[2] <= 4:
        raise UsageError(
            f"an image array must have shape (H, W) or (H, W, C) with C in 1..4, got shape {array.shape}"
        )
    _check_size(array.shape[1], array.shape[0], name, max_pixels)
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
        notes.append("16-bit image reduced to 8 bits per channel")
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise UsageError(
                f"an integer image array must hold values in 0..255, got {array.min()}..{array.max()} "
                f"({array.dtype}); scale it or give uint16 for 16-bit data"
            )
        array = array.astype(np.uint8, copy=False)
    elif np.issubdtype(array.dtype, np.floating):
        # What matplotlib's imread and skimage's img_as_float give: floats in
        # [0, 1], scaled to uint8 with rounding (round(x * 255)).
        if not np.isfinite(array).all():
            raise UsageError("the floating-point image array holds NaN or infinity")
        if array.size and (array.min() < 0 or array.max() > 1):
            raise UsageError(
                f"a floating-point image array must hold values in [0, 1], got {array.min():g}..{array.max():g}; "
                "for values in 0..255 give array.round().astype(np.uint8)"
            )
        array = np.rint(array.astype(np.float64) * 255.0).astype(np.uint8)
        notes.append("floating-point image in [0, 1] scaled to 0..255")
    else:
        raise UsageError(f"unsupported image array dtype {array.dtype}; give uint8")
    pixels = np.ascontiguousarray(array, dtype=np.uint8)
    return SourceImage(pixels, MODES[pixels.shape[2]], name, notes=notes)


# -- writing ---------------------------------------------------------------


def format_for_path(path: str | os.PathLike, override: str | None = None) -> str:
    """The output format of a path, from its extension (or ``override``).

    Returns one of "kmq", "png", "gif", "webp", "jpeg", "bmp", "tiff".
    Raises OutputError for an unknown extension.
    """
    if override is not None:
        key = "." + override.lower().lstrip(".")
        if key not in EXPORT_FORMATS:
            raise OutputError(f"unknown output format {override!r}; use one of {_format_list()}")
        return EXPORT_FORMATS[key]
    suffix = Path(path).suffix.lower()
    if suffix not in EXPORT_FORMATS:
        shown = suffix or "no extension"
        raise OutputError(
            f"cannot tell the output format of {os.fspath(path)} ({shown}); use one of {_format_list()}"
        )
    return EXPORT_FORMATS[suffix]


def _format_list() -> str:
    return ", ".join(sorted(EXPORT_FORMATS))


#: GIF's default cut between transparent and opaque (alpha below it:
#: transparent).
DEFAULT_ALPHA_THRESHOLD = 128


#: Export formats that carry an ICC profile (GIF and BMP cannot).
ICC_FORMATS = frozenset({"png", "webp", "jpeg", "tiff"})


#: PNG effort levels (``effort=``, CLI ``-O/--effort``): the (zlib level,
#: memLevel) settings tried for the IDAT stream, the smallest kept; the top
#: level then runs oxipng on it (the ``png`` extra). Measured on kmq's K = 16 / 64 / 256 outputs of 8 Kodak images
#: (bytes of the IDAT stream, filter 0, colour order of _palette_order):
#: level 6 658,031 / 1,206,481 / 1,901,654; level 9 with memLevel 9
#: 655,684 / 1,202,693 / 1,913,545 at 1.2-3x the time. Filters Sub, Up and
#: Paeth were 3-13 % larger at every K (palette indices are labels, not
#: magnitudes) and Z_FILTERED 2-10 % larger, Z_RLE 13-22 %, so every
#: effort writes filter 0 with the default strategy. docs/benchmarks.md
#: has the whole-file figures.
PNG_EFFORTS = {0: ((1, 8),), 1: ((6, 8),), 2: ((9, 9), (6, 8)), 3: ((9, 9), (6, 8))}
#: Default PNG effort: today's speed (level 6) ...
DEFAULT_PNG_EFFORT = 1
#: ... except on graphics: when level 6 brings the rows under this fraction
#: of their size (flat colours: UI screenshots, icons, logos; photographs
#: stay above 0.25), effort 1 also tries level 9, memLevel 9, and keeps the
#: smaller. On such images level 9 was 8-16 % smaller for 10-20 ms a
#: megapixel (benchmarks/graphics.py's UI mock-ups), where on Kodak it is
#: 0-1 % smaller for 1.5-4x the deflate time.
_GRAPHICS_DEFLATE_RATIO = 0.1
MAX_PNG_EFFORT = max(PNG_EFFORTS)


def check_effort(effort) -> int:
    """Validate a PNG effort level (an int 0..MAX_PNG_EFFORT)."""
    if isinstance(effort, bool) or not isinstance(effort, (int, np.integer)) or effort not in PNG_EFFORTS:
        raise UsageError(f"effort must be an integer 0..{MAX_PNG_EFFORT}, got {effort!r}")
    return int(effort)


def export_notes(palette: np.ndarray, mode: str, fmt: str) -> list[str]:
    """What an export in ``fmt`` does not keep of a palette's alpha, one
    sentence a loss (empty when nothing is lost): GIF's on/off
    transparency, BMP's alpha byte that many readers ignore. The report,
    ``--json`` and ``kmq decompress`` print them, so that a format's silent
    change to what is seen is said.

    Parameters
    ----------
    palette : ndarray, shape (K, C), uint8
    mode : {"L", "LA", "RGB", "RGBA"}
    fmt : str
        An output format (see :func:`format_for_path`).
    """
    if mode not in ("LA", "RGBA"):
        return []
    alpha = np.asarray(palette)[:, -1]
    if fmt == "gif":
        translucent = int(((alpha != 0) & (alpha != 255)).sum())
        if translucent:
            return [
                f"GIF has on/off transparency: {translucent} translucent palette "
                f"entr{'y was' if translucent == 1 else 'ies were'} made fully transparent or opaque "
                f"(--alpha-threshold, default {DEFAULT_ALPHA_THRESHOLD}); .png or .webp keeps them"
            ]
    elif fmt == "bmp" and (alpha != 255).any():
        return [
            "BMP keeps alpha only as the fourth byte of 32-bit pixels, which many readers ignore; "
            ".png or .tif keeps transparency"
        ]
    return []


def written_pixels(data: bytes, fmt: str, mode: str) -> np.ndarray | None:
    """The pixels a reader decodes from ``data``, an export in ``fmt`` of
    a palette image in ``mode``, where the format does not store that image
    exactly: JPEG (lossy) and GIF of an image with alpha (on/off
    transparency). None for the formats that do (.kmq, PNG, WebP, BMP,
    TIFF, and GIF without alpha): there the pixels are ``palette[labels]``.

    Returns
    -------
    ndarray (H, W) for L, else (H, W, C), uint8, or None
        In ``mode``'s channels, so that it compares with the original: a
        JPEG of an image whose palette is all opaque (written without its
        alpha channel) gets alpha 255 back.
    """
    if fmt not in ("jpeg", "gif") or (fmt == "gif" and mode not in ("LA", "RGBA")):
        return None
    with Image.open(io.BytesIO(data)) as image:
        decoded = np.asarray(image.convert(mode))
    return np.ascontiguousarray(decoded)


def _oxipng_optimize(png: bytes) -> bytes:
    """oxipng's strongest preset (``oxipng -o max``) on a PNG, or its input if smaller."""
    try:
        import oxipng
    except ImportError:
        raise UsageError(
            f"PNG effort {MAX_PNG_EFFORT} needs pyoxipng: pip install 'kmq[png]'"
        ) from None
    out = oxipng.optimize_from_memory(png, level=6)
    return out if len(out) < len(png) else png


def encode_export(
    palette: np.ndarray,
    labels: np.ndarray,
    mode: str,
    fmt: str,
    *,
    alpha_threshold: int | None = None,
    icc_profile: bytes | None = None,
    effort: int = DEFAULT_PNG_EFFORT,
) -> bytes:
    """Encode a palette image in a common format.

    Parameters
    ----------
    palette : ndarray, shape (K, C), uint8
    labels : ndarray, shape (H, W), integer < K
    mode : {"L", "LA", "RGB", "RGBA"}
    fmt : {"png", "gif", "webp", "jpeg", "bmp", "tiff"}
        png and gif store the indices (K <= 256; PNG at the smallest bit
        depth that holds K, with a tRNS chunk when there is alpha); the
        others store the rebuilt image ``palette[labels]``. JPEG of an
        image with alpha is written when every palette alpha is 255 (the
        alpha channel is dropped) and refused otherwise.
    alpha_threshold : int in 0..255, optional
        GIF only (on/off transparency): palette entries with alpha below it
        become the one transparent colour, the others opaque. Default 128;
        a palette whose alphas are all 0 or 255 is written as it is.
    icc_profile : bytes, optional
        An ICC colour profile, embedded in PNG (iCCP), WebP, JPEG and TIFF
        (GIF and BMP have no place for it).
    effort : int, 0..3
        PNG only: deflate effort (see :data:`PNG_EFFORTS`); 3 runs oxipng
        (needs the ``png`` extra). Other formats ignore it.

    Returns
    -------
    bytes
    """
    k = len(palette)
    effort = check_effort(effort)
    buffer = io.BytesIO()
    if fmt in PALETTE_FORMATS:
        if k > 256:
            raise OutputError(
                f"{fmt.upper()} holds at most 256 colours, got K={k}; use .kmq for K > 256 "
                "(or .webp, .tif for the rebuilt image)"
            )
        image = _palette_image(palette, labels, mode)
        if fmt == "png":
            # kmq's own IDAT writer rather than Pillow's: same chunks, but
            # 0.7-5.7 % smaller at the same zlib level on Kodak (K = 256 /
            # 16), and it deflates big images on all cores. Level 6 is the
            # default: measured on kmq's K=64 outputs of the 24 Kodak
            # images, level 9 was 1.0 % smaller for 3.2x the time.
            threaded = labels.size >= _THREADED_PNG_MIN_PIXELS

            def write(level, mem):
                return _indexed_png_threaded(image, labels, icc_profile, level=level, mem_level=mem, threads=threaded)

            png = min((write(level, mem) for level, mem in PNG_EFFORTS[effort]), key=len)
            row_bytes = labels.shape[0] * (1 + (labels.shape[1] * _png_bits(k) + 7) // 8)
            if effort == DEFAULT_PNG_EFFORT and len(png) < _GRAPHICS_DEFLATE_RATIO * row_bytes:
                png = min(png, write(9, 9), key=len)
            return _oxipng_optimize(png) if effort == MAX_PNG_EFFORT else png
        options = {}
        if mode in ("LA", "RGBA"):
            threshold = DEFAULT_ALPHA_THRESHOLD if alpha_threshold is None else _check_alpha_threshold(alpha_threshold)
            alpha = palette[:, -1]
            if ((alpha != 0) & (alpha != 255)).any() or alpha_threshold is not None:
                # GIF has on/off transparency: all entries below the
                # threshold share one transparent index.
                clear = alpha < threshold
                palette = palette.copy()
                palette[:, -1] = np.where(clear, 0, 255)
                if clear.any():
                    first = int(np.flatnonzero(clear)[0])
                    remap = np.arange(k, dtype=labels.dtype)
                    remap[clear] = first
                    labels = remap[labels]
                image = _palette_image(palette, labels, mode)
                alpha = palette[:, -1]
            image.info.pop("transparency", None)
            if (alpha == 0).any():
                # GIF marks one palette index as transparent.
                options["transparency"] = int(np.flatnonzero(alpha == 0)[0])
        # optimize=False keeps the palette order, so indices stay as stored.
        image.save(buffer, "GIF", optimize=False, **options)
        return buffer.getvalue()
    from ._engine.remap import rebuild

    rebuilt = rebuild(palette, labels)
    pil = Image.fromarray(rebuilt[:, :, 0] if mode == "L" else rebuilt, mode)
    icc = {"icc_profile": icc_profile} if icc_profile else {}
    if fmt == "webp":
        pil.save(buffer, "WEBP", lossless=True, quality=100, method=6 if rebuilt.size <= 4_000_000 else 4, **icc)
    elif fmt == "jpeg":
        if mode in ("LA", "RGBA"):
            if not (palette[:, -1] == 255).all():
                raise OutputError("JPEG cannot store transparency; use .png, .webp, .tif or .kmq")
            # Every colour is opaque: the alpha channel says nothing.
            pil = pil.convert("L" if mode == "LA" else "RGB")
        pil.save(buffer, "JPEG", quality=95, subsampling=0, optimize=True, **icc)
    elif fmt == "bmp":
        if mode == "LA":
            pil = pil.convert("RGBA")
        pil.save(buffer, "BMP")
    elif fmt == "tiff":
        pil.save(buffer, "TIFF", compression="tiff_adobe_deflate", **icc)
    else:
        raise OutputError(f"unknown export format {fmt!r}")
    return buffer.getvalue()


#: From this many pixels an indexed PNG is deflated in runs on all cores
#: (see _indexed_png_threaded); below it, in one run on this thread.
_THREADED_PNG_MIN_PIXELS = 1 << 18
#: Filtered bytes per deflate run of a threaded PNG (see _indexed_png_threaded):
#: 2 or 4 runs instead of 1 changed the size by +0.008 % and -0.01 % (12 Kodak
#: images, K = 64) and took 6-7 ms less of 23 ms on 2 cores.
_PNG_RUN_BYTES = 1 << 17
#: zlib header FLG byte per level (FLEVEL 0-3; FCHECK makes CMF*256+FLG a
#: multiple of 31), as zlib itself writes them.
_ZLIB_FLG = {1: 0x01, 2: 0x5E, 3: 0x5E, 4: 0x5E, 5: 0x5E, 6: 0x9C, 7: 0xDA, 8: 0xDA, 9: 0xDA}
#: The PNG bit depth Pillow picks for a palette of K entries (K <= 256).
_PNG_BITS = ((2, 1), (4, 2), (16, 4), (256, 8))


def _png_bits(k: int) -> int:
    """Bits per index of an indexed PNG of K <= 256 entries."""
    return next(b for limit, b in _PNG_BITS if k <= limit)


def _indexed_png_threaded(
    image: Image.Image, labels: np.ndarray, icc_profile: bytes | None = None, *,
    level: int = 6, mem_level: int = 8, threads: bool = True,
) -> bytes:
    """The indexed PNG Pillow writes for ``image`` (``compress_level=6``),
    its IDAT deflated in parallel.

    Pillow's encoder deflates on one core: 0.48 s of a 12-megapixel image's
    2.4 s end to end. Here the filtered rows (filter type 0, as Pillow uses
    for palette images) are cut into runs of about 128 KiB (fixed by the
    size, so the bytes do not depend on the machine); each run is deflated
    by its own zlib stream in a thread (zlib releases the GIL), primed with
    the 32 KiB before it as a preset dictionary so that matches can reach
    back across the cut, and ended on a byte boundary with a sync flush.
    The runs are then one deflate stream, wrapped in a zlib header and the
    Adler-32 of all rows: the technique of pigz. Same pixels, same PLTE and
    tRNS as Pillow's file; its size is within 0.1 % of it.

    image : mode "P" from :func:`_palette_image`; labels : (H, W) integer < K;
    level, mem_level : zlib's; threads : False for one run on one core.
    """
    import struct
    import zlib
    from concurrent.futures import ThreadPoolExecutor

    from ._container import _pack

    height, width = labels.shape
    palette = image.getpalette(rawmode="RGB") or []
    k = len(palette) // 3
    bits = _png_bits(k)
    packed = np.frombuffer(_pack(labels, bits), dtype=np.uint8).reshape(height, -1)
    rows = np.zeros((height, packed.shape[1] + 1), dtype=np.uint8)  # column 0: filter type 0
    rows[:, 1:] = packed
    data = rows.reshape(-1)
    # Runs fixed by the data's size, never by the machine's cores: the same
    # bytes everywhere; the threads share them out.
    n_runs = max(1, min(height, len(data) // _PNG_RUN_BYTES)) if threads else 1
    cuts = [int(c) for c in np.linspace(0, height, n_runs + 1)]
    spans = [(cuts[r] * rows.shape[1], cuts[r + 1] * rows.shape[1]) for r in range(n_runs)]

    def deflate(run):
        start, stop = spans[run]
        primer = data[max(0, start - 32768) : start].tobytes()
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, mem_level, zlib.Z_DEFAULT_STRATEGY, *([primer] if primer else []))
        body = compressor.compress(data[start:stop])
        return body + compressor.flush(zlib.Z_FINISH if run == n_runs - 1 else zlib.Z_SYNC_FLUSH)

    workers = min(n_runs, _parallel.cores())
    if workers == 1:
        deflated = b"".join(map(deflate, range(n_runs)))
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            deflated = b"".join(pool.map(deflate, range(n_runs)))
    # CMF 0x78 (deflate, 32 KiB window), FLG 0x9C (default level, no preset
    # dictionary for the reader: the primers are data it has already seen).
    stream = b"\x78" + bytes([_ZLIB_FLG[level]]) + deflated + struct.pack(">I", zlib.adler32(data))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, 3, 0, 0, 0))]
    if icc_profile:
        # iCCP: profile name, NUL, compression method 0, the zlib profile.
        parts.append(chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile)))
    parts.append(chunk(b"PLTE", bytes(palette[: 3 * k])))
    transparency = image.info.get("transparency")
    if isinstance(transparency, bytes):
        parts.append(chunk(b"tRNS", transparency[:k]))
    parts.append(chunk(b"IDAT", stream))
    parts.append(chunk(b"IEND", b""))
    return b"".join(parts)


def _check_alpha_threshold(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 255:
        raise UsageError(f"the alpha threshold must be a whole number from 0 to 255, got {value!r}")
    return int(value)


def _palette_image(palette: np.ndarray, labels: np.ndarray, mode: str) -> Image.Image:
    indexed = Image.fromarray(labels.astype(np.uint8, copy=False), "P")
    channels = palette.shape[1]
    if channels in (1, 2):
        rgb = np.repeat(palette[:, :1], 3, axis=1)
    else:
        rgb = palette[:, :3]
    # A palette of exactly K entries lets Pillow write the smallest bit depth
    # (1, 2, 4 or 8 bits per index) and a PLTE chunk of K entries.
    indexed.putpalette(rgb.tobytes(), rawmode="RGB")
    if mode in ("LA", "RGBA"):
        alpha = palette[:, -1]
        if not (alpha == 255).all():
            # tRNS for PNG, up to the last non-opaque entry (the rest are
            # opaque by default; the palette order puts them last); Pillow
            # turns a single 0 entry into GIF's transparent index.
            last = int(np.flatnonzero(alpha != 255)[-1])
            indexed.info["transparency"] = alpha[: last + 1].tobytes()
    return indexed


def check_output(path: str | os.PathLike, *, force: bool = False, inputs: tuple = ()) -> None:
    """Raise OutputError unless ``path`` may be written.

    Refused: one of ``inputs`` (never overwritten, even with ``force``), a
    directory, an existing file without ``force``, a missing folder.
    :func:`write_atomic` checks this itself; callers may call it early too,
    to fail before slow work.
    """
    target = Path(path)
    for source in inputs:
        if source is not None and _same_file(target, Path(source)):
            raise OutputError(f"refusing to overwrite the input {target}; choose another output with -o")
    if target.is_dir():
        raise OutputError(f"{target} is a directory; give a file name")
    if target.exists() and not force:
        raise OutputError(f"{target} already exists; use --force (-f) to overwrite it")
    if not target.parent.is_dir():
        raise OutputError(f"cannot write {target}: folder {target.parent} does not exist")


#: When this process started (seconds since the epoch): temporary files of
#: kmq's older than this, less a margin, are left over by a killed run.
_RUN_STARTED = __import__("time").time()
#: A leftover temporary file must be this much older than the run before it
#: is removed, so that a slow run writing the same folder keeps its own.
_STALE_MARGIN_S = 60.0
#: The marker in kmq's temporary file names: ``.NAME.kmq-XXXXXXXX.tmp``.
_TMP_MARK = ".kmq-"
#: Folders already rid of stale temporary files by this process.
_CLEANED_FOLDERS: set[str] = set()


def write_stdout(data: bytes) -> None:
    """Write ``data`` to standard output, or raise OutputError (exit 5)
    with one line: stdout closed, full (``/dev/full``), or its reader gone
    (a closed pipe)."""
    stream = getattr(sys.stdout, "buffer", None) if sys.stdout is not None else None
    try:
        if stream is None:
            raise OSError(9, "Bad file descriptor")
        stream.write(data)
        stream.flush()
    except BrokenPipeError:
        raise OutputError("cannot write to standard output: the reader closed the pipe") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        if getattr(exc, "errno", None) == 9 or isinstance(exc, ValueError):
            reason = "it is closed"
        raise OutputError(f"cannot write to standard output: {reason}") from None


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files a killed kmq run left in ``folder``.

    Only kmq's own are touched: hidden regular files named
    ``.NAME.kmq-XXXXXXXX.tmp`` (what :func:`write_atomic` creates), owned by
    the current user, last modified more than a minute before this process
    started. Returns the paths removed; errors are ignored (another run may
    be removing the same file).
    """
    import re

    pattern = re.compile(r"^\..+" + re.escape(_TMP_MARK) + r"[A-Za-z0-9_]{8}\.tmp$")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    limit = _RUN_STARTED - _STALE_MARGIN_S
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        if not pattern.match(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not entry.is_file(follow_symlinks=False) or info.st_mtime >= limit:
                continue
            if uid is not None and info.st_uid != uid:
                continue
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def write_atomic(path: str | os.PathLike, data: bytes, *, force: bool = False, inputs: tuple = ()) -> None:
    """Write ``data`` to ``path`` all at once or not at all.

    The bytes go to a temporary file in the same folder (``.NAME.kmq-*.tmp``),
    are flushed to disk and moved to ``path``; on any failure the temporary
    file is removed and ``path`` is untouched. ``path == "-"`` writes to
    stdout (see :func:`write_stdout`).

    Without ``force`` the move itself checks that ``path`` does not exist
    (a hard link of the temporary file, which fails if the name is taken,
    or an exclusive create where hard links are not supported): of several
    runs writing the same new file at once, exactly one succeeds. The
    temporary files of earlier killed runs are removed first
    (:func:`remove_stale_temporaries`).

    Raises OutputError when ``path`` exists and ``force`` is false, when it
    is one of ``inputs`` (never overwritten, even with force), or when the
    write fails.
    """
    if os.fspath(path) == "-":
        write_stdout(data)
        return
    check_output(path, force=force, inputs=inputs)
    target = Path(path)
    folder = target.parent
    key = os.path.realpath(folder)
    if key not in _CLEANED_FOLDERS:
        # Once per folder and process: a batch into one folder scans it once.
        _CLEANED_FOLDERS.add(key)
        remove_stale_temporaries(folder)
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}{_TMP_MARK}", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_umask())
        if force:
            os.replace(tmp_name, target)
        else:
            _move_exclusive(tmp_name, target)
        tmp_name = None
    except FileExistsError:
        raise OutputError(f"{target} already exists; use --force (-f) to overwrite it") from None
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def _move_exclusive(tmp_name: str, target: Path) -> None:
    """Move ``tmp_name`` to ``target``; FileExistsError if ``target`` exists,
    decided at the move (not by an earlier check another run could race)."""
    import errno

    try:
        os.link(tmp_name, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        # No hard links here (some network and FAT file systems): claim the
        # name with an exclusive create, then move the data over it.
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(tmp_name, target)
        return
    os.unlink(tmp_name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def file_identity(path: str | os.PathLike) -> tuple:
    """What makes two paths the same file on disk, links included.

    An existing file: ``("inode", st_dev, st_ino)`` of what it points to
    (hard links and symbolic links to one file compare equal). A path that
    does not exist yet: ``("name", st_dev, st_ino of its folder, name)``, so
    that two spellings of one future file (``a/x.png``, ``./a/../a/x.png``,
    or through a linked folder) compare equal too; a folder that does not
    exist yet is taken by its absolute, normalised path.
    """
    target = Path(path)
    try:
        info = os.stat(target)
        return ("inode", info.st_dev, info.st_ino)
    except OSError:
        pass
    folder = target.parent
    try:
        info = os.stat(folder)
        return ("name", info.st_dev, info.st_ino, target.name)
    except OSError:
        return ("path", os.path.normpath(os.path.abspath(target)))
