"""One palette for many images: fitted on their merged colour histograms.

k-means on the distinct colours weighted by their pixel counts is k-means on
the pixels (see :mod:`kmq._engine.histogram`), and histograms add up: the
histogram of a set of images is the sum, colour by colour, of theirs. So
:func:`fit_palette` reads one image at a time, adds its histogram to the
running one, and fits K colours to the sum: exactly the palette k-means
would fit to all the images' pixels pooled, with memory bounded by the
number of distinct colours, not by the number of images. On a Dask cluster
each worker makes the histograms of its images and they are summed in a
tree of merges.

Palette files are GIMP palettes (``.gpl``), one colour per line::

    GIMP Palette
    Name: kmq K=4
    Columns: 4
    #
      0   0   0	#000000
    255 255 255	#ffffff

Alpha: when the images have transparency, the palette has four channels; the
file then says ``Channels: RGBA`` after ``Name:`` (as GIMP 3 writes and reads
it) and each line has a fourth number, the alpha. Images are taken as RGB
(grey images as R = G = B), or as RGBA when any has alpha (the others
taken as opaque); fully transparent pixels all count as one colour,
(0, 0, 0, 0), which gets a palette entry of its own.

The fit and the mapping are :func:`kmq.compress`'s own, in the same
working space (``space``, default Oklab) and with the same dithering
(``dither``, default as compress's; whether the images will be dithered
picks the working space of an Oklab fit, kmq._quantize.working_space): the
merged histogram goes through the very k-means run that compress gives one
image's, and an image mapped to a shared palette looks as it would through
compress with that palette.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from . import _io
from ._errors import DecodeError, InputError, UsageError
from ._progress import Progress

__all__ = ["fit_palette", "image_histogram", "merge_histograms", "read_palette", "write_palette", "fit_image_to"]


def _as_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """(H, W, C) uint8 in L, LA, RGB or RGBA -> (H, W, channels), 3 or 4."""
    c = pixels.shape[2]
    colour = np.repeat(pixels[:, :, :1], 3, axis=2) if c in (1, 2) else pixels[:, :, :3]
    if channels == 3:
        if c in (2, 4):
            raise UsageError("this image has transparency and the palette has no alpha (RGB); fit an RGBA palette")
        return np.ascontiguousarray(colour)
    alpha = pixels[:, :, -1:] if c in (2, 4) else np.full(pixels.shape[:2] + (1,), 255, np.uint8)
    return np.ascontiguousarray(np.concatenate([colour, alpha], axis=2))


def _keys(pixels: np.ndarray) -> np.ndarray:
    from ._engine.histogram import pack_colors
    from ._quantize import _normalise_transparent

    return pack_colors(_normalise_transparent(pixels.reshape(-1, pixels.shape[2])))


def image_histogram(source, *, max_pixels=_io.DEFAULT_MAX_PIXELS, max_input_bytes=_io.DEFAULT_MAX_INPUT_BYTES):
    """One image's colour histogram, in RGB or (with alpha) RGBA.

    Returns
    -------
    (keys (M,) uint32 increasing, counts (M,) int64, channels 3 or 4)
    """
    from ._engine.histogram import color_histogram

    image = _io.read_image(source, max_pixels=max_pixels, max_input_bytes=max_input_bytes)
    channels = 4 if image.pixels.shape[2] in (2, 4) else 3
    histogram = color_histogram(_keys(_as_channels(image.pixels, channels)), channels)
    return histogram.keys, histogram.counts, channels


def _to_rgba_keys(keys: np.ndarray) -> np.ndarray:
    # RGB key rgb -> RGBA key rgb·256 + 255 (opaque)
    return (keys.astype(np.uint64) << 8 | 0xFF).astype(np.uint32)


def merge_histograms(a, b):
    """The histogram of the union of two sets of images: counts summed per
    distinct colour (RGB and RGBA histograms merge as RGBA, RGB opaque).
    Exact; memory ~ 12 bytes per distinct colour of either."""
    keys_a, counts_a, ch_a = a
    keys_b, counts_b, ch_b = b
    channels = max(ch_a, ch_b)
    if ch_a < channels:
        keys_a = _to_rgba_keys(keys_a)
    if ch_b < channels:
        keys_b = _to_rgba_keys(keys_b)
    keys, inverse = np.unique(np.concatenate([keys_a, keys_b]), return_inverse=True)
    counts = np.zeros(len(keys), dtype=np.int64)
    np.add.at(counts, inverse, np.concatenate([counts_a, counts_b]))
    return keys.astype(np.uint32), counts, channels


def _fit(histogram, k, *, seed, n_init, max_iter, tol, init, space, dither) -> np.ndarray:
    """The palette ColorQuantizer fits to pixels whose histogram is
    ``histogram`` (keys, counts, channels): its fit reads nothing of the
    pixels but their histogram, so it is handed the merged one."""
    from ._engine.histogram import ColorHistogram, unpack_keys
    from ._quantize import ColorQuantizer, ImageAnalysis, _check_k

    k = _check_k(k)
    keys, counts, channels = histogram
    colors = unpack_keys(keys, channels)
    if len(keys) <= k:
        return colors
    analysis = ImageAnalysis(np.zeros((1, 1, channels), dtype=np.uint8))
    analysis._parts["histogram"] = ColorHistogram(colors=colors, counts=counts, keys=keys)
    quantizer = ColorQuantizer(
        k, seed=seed, n_init=n_init, max_iter=max_iter, tol=tol, init=init, space=space, dither=dither
    )
    quantizer._fit_pixels(analysis.pixels, analysis=analysis)
    return quantizer.palette_


def fit_palette(
    inputs,
    k: int,
    *,
    seed=None,
    recursive: bool = False,
    n_init: int | None = None,
    max_iter: int | None = None,
    tol: float | None = None,
    init: str = "k-means++",
    space: str | None = None,
    dither: float | None = None,
    max_pixels=_io.DEFAULT_MAX_PIXELS,
    max_input_bytes=_io.DEFAULT_MAX_INPUT_BYTES,
    jobs: int | None = 1,
    client=None,
    progress: bool | None = False,
):
    """Fit one K-colour palette to many images.

    Parameters
    ----------
    inputs : iterable of paths, folders or URLs (folders as in
        ``kmq compress``).
    k : int
    seed, n_init, max_iter, tol, init, space : as for :func:`kmq.compress`
        (``space`` None: its default, Oklab).
    dither : float in [0, 1] or None
        The dithering the images will be mapped with (None: compress's
        default, 0.75). Only whether it is 0 matters here: an Oklab palette
        of 9 to 16 colours without alpha is fitted with chroma weighted
        when dithered, as compress fits it (kmq._quantize.working_space).
    jobs : int or None
        Cores making the histograms (None: all, a worker process each;
        1: in this process, on one thread). The palette does not depend on it.
    client : distributed.Client or None
        Make the histograms on this Dask cluster and sum them there.
    progress : bool or None
        A progress bar on stderr (images read, then the k-means fit), as
        :func:`kmq.batch.compress_many` draws; None: only when stderr is a
        terminal. Default: none.

    Returns
    -------
    (palette (K', C) uint8 with C = 3 or 4 and K' <= K, number of images,
    number of distinct colours of them all)
    """
    from ._files import _expand
    from ._quantize import DEFAULT_DITHER, DEFAULT_MAX_ITER, DEFAULT_N_INIT, DEFAULT_SPACE, DEFAULT_TOL, _check_dither
    from ._quantize import _check_space

    if space is not None:
        _check_space(space)
    dither = _check_dither(DEFAULT_DITHER if dither is None else dither)

    found, _, _ = _expand(inputs, recursive)
    names = [name for name, _ in found]
    if not names:
        raise UsageError("give the images to fit the palette to")
    options = dict(max_pixels=max_pixels, max_input_bytes=max_input_bytes)
    with Progress(progress, total=len(names), unit="image", delay=0 if len(names) > 1 else None) as bar:
        total = _histograms(names, options, jobs, client, bar)
        bar.stage(f"k-means K={k} ({len(total[0]):,} distinct colours)")
        palette = _fit(
            total, k, seed=seed, n_init=n_init or DEFAULT_N_INIT, max_iter=max_iter or DEFAULT_MAX_ITER,
            tol=DEFAULT_TOL if tol is None else tol, init=init, space=DEFAULT_SPACE if space is None else space,
            dither=dither,
        )
    return palette, len(names), len(total[0])


def _histograms(names, options, jobs, client, bar):
    """The merged histogram of the images ``names``; ``bar`` counts them."""
    from ._engine._parallel import threads_limited
    from ._files import _default_jobs, _pool, _split_cores

    if client is not None:
        absolute = [n if _io._is_url(n) else os.path.abspath(n) for n in names]
        futures = client.map(_histogram_task, absolute, **options, pure=False)
        for future in futures:  # called on the client's thread as each finishes
            future.add_done_callback(lambda _: bar.update(1))
        while len(futures) > 1:  # a tree of merges on the cluster
            pairs = [client.submit(merge_histograms, futures[i], futures[i + 1]) for i in range(0, len(futures) - 1, 2)]
            futures = pairs + ([futures[-1]] if len(futures) % 2 else [])
        return futures[0].result()
    workers, threads = _split_cores(_default_jobs() if jobs is None else jobs, len(names))
    total = None
    if workers == 1:
        with threads_limited(threads):
            for name in names:
                part = _histogram_task(name, **options)
                total = part if total is None else merge_histograms(total, part)
                bar.update(1)
        return total
    executor = _pool(workers, threads)
    try:
        futures = [executor.submit(_histogram_task, name, **options) for name in names]
        from concurrent.futures import as_completed

        for future in as_completed(futures):
            part = future.result()
            total = part if total is None else merge_histograms(total, part)
            bar.update(1)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return total


def _histogram_task(name, **options):
    """image_histogram with errors named after the file (runs on workers)."""
    return image_histogram(name, **options)


def fit_image_to(source, palette: np.ndarray, *, space: str | None = None, dither: float | None = None):
    """Map an image to a given palette as :func:`kmq.compress` maps it to
    the palette it fits: nearest entry in the working space ``space``
    (None: compress's default), opaque pixels kept on opaque entries, and
    error diffusion at ``dither`` (0..1; None: compress's default).

    source : kmq._io.SourceImage (its pixels become the palette's channels:
    what the output is measured against); palette : (K, 3 or 4) uint8.

    Returns
    -------
    (palette, labels (H, W) uint8 or uint16, mode "RGB" or "RGBA")
    """
    from ._container import MODES
    from ._quantize import DEFAULT_DITHER, DEFAULT_SPACE, ColorQuantizer, _check_dither, _check_space

    palette = np.ascontiguousarray(palette, dtype=np.uint8)
    channels = palette.shape[1]
    space = _check_space(DEFAULT_SPACE if space is None else space)
    dither = _check_dither(DEFAULT_DITHER if dither is None else dither)
    source.pixels = _as_channels(source.pixels, channels)
    quantizer = ColorQuantizer(len(palette), space=space, dither=dither)
    # Fitted by hand: the palette is given.
    quantizer.palette_, quantizer.space_, quantizer.mode_ = palette, space, MODES[channels]
    labels = quantizer.transform(source)
    return palette, labels, MODES[channels]


def write_palette(path, palette: np.ndarray, *, name: str | None = None, force: bool = False) -> None:
    """Write a GIMP palette (``.gpl``), atomically (see the module's doc)."""
    palette = np.asarray(palette, dtype=np.uint8)
    channels = palette.shape[1]
    lines = ["GIMP Palette", f"Name: {name or f'kmq K={len(palette)}'}"]
    if channels == 4:
        lines.append("Channels: RGBA")
    lines += [f"Columns: {min(16, len(palette))}", "#"]
    for colour in palette:
        numbers = " ".join(f"{int(v):3d}" for v in colour)
        lines.append(f"{numbers}\t#{''.join(f'{int(v):02x}' for v in colour)}")
    _io.write_atomic(path, ("\n".join(lines) + "\n").encode(), force=force)


_LINE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)(?:\s+(\d+))?(?:\s+.*)?$")


def read_palette(path) -> np.ndarray:
    """Read a GIMP palette (``.gpl``): (K, 3) uint8, or (K, 4) with
    ``Channels: RGBA``."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError(f"no such palette file: {os.fspath(path)}") from None
    except OSError as exc:
        raise InputError(f"cannot read the palette {os.fspath(path)}: {exc.strerror or exc}") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != "GIMP Palette":
        raise DecodeError(f"{os.fspath(path)} is not a GIMP palette (.gpl): its first line must be 'GIMP Palette'")
    channels, colours = 3, []
    for number, line in enumerate(lines[1:], start=2):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith(("Name:", "Columns:")):
            continue
        if stripped.startswith("Channels:"):
            channels = {"RGB": 3, "RGBA": 4}.get(stripped.split(":", 1)[1].strip().upper(), 0)
            if not channels:
                raise DecodeError(f"{os.fspath(path)} line {number}: Channels must be RGB or RGBA")
            continue
        match = _LINE.match(line)
        values = [int(v) for v in match.groups()[:channels]] if match and (channels == 3 or match.group(4)) else None
        if values is None or any(v > 255 for v in values):
            raise DecodeError(f"{os.fspath(path)} line {number}: expected {channels} numbers 0..255, got {stripped!r}")
        colours.append(values)
    if not colours:
        raise DecodeError(f"{os.fspath(path)} has no colours")
    if len(colours) > 65536:
        raise DecodeError(f"{os.fspath(path)} has {len(colours)} colours, more than 65536")
    return np.array(colours, dtype=np.uint8)
