"""What the figures and the report are drawn from: one compression per K.

:func:`run_sweep` compresses an image once for each K and measures each
result (quality, ``.kmq`` and indexed-PNG bytes); :mod:`kmq.plot` and the
HTML report (``_report``) draw from the same :class:`Sweep`, so a report with
five figures still runs k-means once per K.

Also here: the small colour helpers the figures share (luminance order,
distinct colours for cluster labels, pixels ready for ``imshow``). Nothing
in this module imports matplotlib.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .._errors import UsageError
from .._io import SourceImage, read_image
from .._quantize import DEFAULT_DITHER, Compressed, _check_dither, _check_k, compress
from ..metrics import Metrics, measure

__all__ = [
    "KResult",
    "Sweep",
    "run_sweep",
    "dither_results",
    "check_dither_levels",
    "DITHER_PAIR",
    "dither_name",
    "resolve_image",
    "check_ks",
    "display_name",
    "luminance",
    "luminance_order",
    "distinct_colors",
    "display_pixels",
    "DEFAULT_SWEEP_KS",
    "DEFAULT_COMPARE_KS",
    "DEFAULT_FIGURE_K",
    "DEFAULT_FIGURE_SEED",
    "QUALITY_TARGETS_DB",
]

#: The Ks of ``curve`` and the report: every bit depth of a palette index.
DEFAULT_SWEEP_KS = (2, 4, 8, 16, 32, 64, 128, 256)
#: The Ks of ``compare``: from posterised to nearly photographic.
DEFAULT_COMPARE_KS = (2, 4, 16, 64)
#: The K of the one-K figures (scatter, segments, palette).
DEFAULT_FIGURE_K = 16
#: Figures and reports default to a fixed seed so that running the same
#: command twice draws the same picture.
DEFAULT_FIGURE_SEED = 0
#: PSNR levels the report and the curve point out: ~30 dB is where most
#: viewers stop seeing banding at a glance, ~35 dB where a side-by-side
#: comparison is needed to see a difference.
QUALITY_TARGETS_DB = (30.0, 35.0)

#: Called as ``progress(done, total, k)`` before each K is computed
#: (``k`` is the K about to be computed) and once at the end with
#: ``done == total`` and ``k=None``.
ProgressCallback = Callable[[int, int, "int | None"], None]


@dataclass
class KResult:
    """One K of a sweep.

    Attributes
    ----------
    k : int
        The K asked for (``compressed.k`` is smaller when the image has fewer
        distinct colours).
    compressed : Compressed
    metrics : kmq.metrics.Metrics or None
        Against the original (PSNR, the perceptual error and score...);
        ``metrics.ssim`` is None unless the sweep was run with
        ``with_ssim=True``. None (and no bytes) when it was run with
        ``measure=False``.
    kmq_bytes : int or None
        Size of the ``.kmq`` file.
    png_bytes : int or None
        Size of the indexed PNG; None when K > 256 (PNG holds at most 256
        colours).
    """

    k: int
    compressed: Compressed
    metrics: Metrics | None
    kmq_bytes: int | None
    png_bytes: int | None


@dataclass
class Sweep:
    """An image compressed for several K, each result measured.

    Make one with :func:`kmq.plot.sweep`; pass it to any :mod:`kmq.plot`
    function instead of an image to draw from it without running k-means
    again.

    Attributes
    ----------
    source : SourceImage
        The original, with its pixels (H, W, C) uint8.
    results : list of KResult
        One per K, K ascending, no K twice.
    seed : None, int or numpy.random.Generator
    sample : float or None
    dither : float
        The Floyd-Steinberg level the sweep compressed with (kmq's default,
        ``DEFAULT_DITHER``, unless asked); results lent by a given Sweep or Compressed keep
        their own (``result.compressed.dither``).
    """

    source: SourceImage
    results: list[KResult]
    seed: object = DEFAULT_FIGURE_SEED
    sample: float | None = None
    dither: float = DEFAULT_DITHER
    _by_k: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        self._by_k = {result.k: result for result in self.results}

    @property
    def ks(self) -> list[int]:
        """The Ks, ascending."""
        return [result.k for result in self.results]

    def __getitem__(self, k: int) -> KResult:
        try:
            return self._by_k[k]
        except KeyError:
            raise KeyError(f"K={k} is not in this sweep (it has K = {self.ks})") from None

    def __contains__(self, k) -> bool:
        return k in self._by_k

    def __len__(self) -> int:
        return len(self.results)

    def first_k_reaching(self, psnr_db: float) -> int | None:
        """The smallest K of the sweep whose PSNR is at least ``psnr_db``
        (lossless counts as infinite PSNR); None if no K reaches it."""
        for result in self.results:
            if result.metrics.psnr >= psnr_db:
                return result.k
        return None

    @property
    def name(self) -> str:
        """The input's short name, for titles (see :func:`display_name`)."""
        return display_name(self.source)


def display_name(source: SourceImage) -> str:
    """A short name of the input for titles: the file name of a path or URL
    (no folders, so a report does not depend on where the file was), or
    ``<array>``, ``<stdin>``... as :func:`kmq._io.read_image` named it."""
    name = source.name
    if source.path is not None:
        return Path(source.path).name
    if name.startswith(("http://", "https://")):
        tail = name.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        return tail or "download"
    return name


def check_ks(ks, *, what: str = "ks") -> list[int]:
    """Validate a K or a sequence of Ks; return them unique and ascending.

    Raises UsageError for an empty sequence or a K outside 1..65536.
    """
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, bool):
        ks = [ks]
    try:
        values = [_check_k(k) for k in ks]
    except TypeError:
        raise UsageError(f"{what} must be a whole number or a sequence of them, got {ks!r}") from None
    if not values:
        raise UsageError(f"{what} is empty: give at least one number of colours K")
    return sorted(set(values))


def resolve_image(image, *, max_pixels=None) -> tuple[SourceImage | None, Compressed | None, Sweep | None]:
    """Sort out what a plot function was given.

    Parameters
    ----------
    image : Sweep, Compressed, SourceImage, or anything :func:`kmq.compress`
        accepts (path, URL, bytes, PIL.Image, ndarray (H, W[, C]) uint8).

    Returns
    -------
    source : SourceImage or None
        The original (None for a Compressed loaded from a ``.kmq`` file).
    compressed : Compressed or None
        When ``image`` was one.
    sweep : Sweep or None
        When ``image`` was one.
    """
    if isinstance(image, Sweep):
        return image.source, None, image
    if isinstance(image, Compressed):
        return image.source, image, None
    if isinstance(image, SourceImage):
        return image, None, None
    if max_pixels is None:
        return read_image(image), None, None
    return read_image(image, max_pixels=max_pixels), None, None


def run_sweep(
    image,
    ks=DEFAULT_SWEEP_KS,
    *,
    seed=DEFAULT_FIGURE_SEED,
    sample: float | None = None,
    with_ssim: bool = False,
    progress: ProgressCallback | None = None,
    dither: float | None = None,
    measure: bool = True,
) -> Sweep:
    """Compress ``image`` once per K and measure every result.

    Parameters
    ----------
    image : Sweep, Compressed, SourceImage or anything kmq.compress accepts
        A Sweep or a Compressed lends its results: a K it already holds is
        taken as it is (whatever seed made it), not computed again; with
        ``dither`` given, only if it was dithered at that level.
    ks : int or sequence of int
        Palette sizes, each 1..65536.
    seed : None, int or numpy.random.Generator
        Passed to :func:`kmq.compress` for every K.
    sample : float in (0, 1], optional
        Fit each palette on this fraction of the pixels.
    with_ssim : bool
        Also compute SSIM (the slowest metric).
    progress : callable, optional
        ``progress(done, total, k)``; see :data:`ProgressCallback`.
    dither : float in [0, 1], optional
        Floyd-Steinberg level of the compressions (default: kmq's).
    measure : bool
        Measure each result (metrics and file sizes). False: only compress,
        for the figures that draw palettes and labels alone (``kmq plot
        palette`` with several K); such a sweep cannot draw the others.

    Returns
    -------
    Sweep
    """
    ks = check_ks(ks)
    level = DEFAULT_DITHER if dither is None else _check_dither(dither)

    def lends(compressed: Compressed) -> bool:
        return dither is None or compressed.dither == level

    source, given, given_sweep = resolve_image(image)
    if source is None:
        raise UsageError(
            "this Compressed has no original image (it was loaded from a .kmq file); pass the image instead"
        )
    # What the caller passed in is what they want drawn: its Ks are reused
    # as they are, whatever seed made them; only the other Ks are computed.
    known: dict[int, KResult] = {}
    if given_sweep is not None:
        known = {
            r.k: r for r in given_sweep.results
            if (not measure or (r.metrics is not None and (not with_ssim or r.metrics.ssim is not None)))
            and lends(r.compressed)
        }
    given_k = given.k_requested if given is not None and lends(given) else None

    results = []
    for done, k in enumerate(ks):
        if progress is not None:
            progress(done, len(ks), k)
        if k in known:
            results.append(known[k])
            continue
        compressed = given if k == given_k else compress(source, k, seed=seed, sample=sample, dither=level)
        if measure:
            results.append(_measure(compressed, k, source, with_ssim))
        else:
            results.append(KResult(k=k, compressed=compressed, metrics=None, kmq_bytes=None, png_bytes=None))
    if progress is not None:
        progress(len(ks), len(ks), None)
    return Sweep(source=source, results=results, seed=seed, sample=sample, dither=level)


#: The levels a figure compares by default: none and kmq's default.
DITHER_PAIR = (0.0, DEFAULT_DITHER)


def check_dither_levels(dither) -> list[float]:
    """Dithering levels for a comparison: a sequence of levels in [0, 1],
    one or more, distinct (in the order given); UsageError otherwise."""
    if isinstance(dither, (str, bytes)) or not hasattr(dither, "__iter__"):
        raise UsageError(f"dither must be a level from 0 to 1 or a sequence of them such as (0, 1), got {dither!r}")
    levels = [_check_dither(level) for level in dither]
    if not levels:
        raise UsageError("dither is empty: give the levels to compare, such as (0, 1)")
    if len(set(levels)) != len(levels):
        raise UsageError(f"dither levels must differ from each other, got {list(dither)!r}")
    return levels


def dither_results(sweep: Sweep, k: int, levels=DITHER_PAIR, *, with_ssim: bool | None = None) -> list[KResult]:
    """The result for ``k`` at each dithering level: the sweep's own where
    it was dithered at that level, else compressed here (same seed and
    sample). ``with_ssim`` defaults to whether the sweep's result has SSIM."""
    mine = sweep[k]
    if with_ssim is None:
        with_ssim = mine.metrics.ssim is not None
    out = []
    for level in check_dither_levels(levels):
        if mine.compressed.dither == level:
            out.append(mine)
        else:
            compressed = compress(sweep.source, k, seed=sweep.seed, sample=sweep.sample, dither=level)
            out.append(_measure(compressed, k, sweep.source, with_ssim))
    return out


def dither_name(level: float) -> str:
    """"undithered" (level 0), "dithered" (level 1) or "dithered 0.5"."""
    if level == 0:
        return "undithered"
    return "dithered" if level == 1 else f"dithered {level:g}"


def _measure(compressed: Compressed, k: int, source: SourceImage, with_ssim: bool) -> KResult:
    kmq_bytes = len(compressed.to_bytes("kmq"))
    png_bytes = len(compressed.to_bytes("png")) if compressed.k <= 256 else None
    metrics = measure(
        source.pixels,
        compressed,
        input_bytes=source.input_bytes,
        output_bytes=kmq_bytes,
        with_ssim=with_ssim,
    )
    return KResult(k=k, compressed=compressed, metrics=metrics, kmq_bytes=kmq_bytes, png_bytes=png_bytes)


# -- colours ------------------------------------------------------------------


def luminance(colors: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of palette colours.

    Parameters
    ----------
    colors : ndarray, shape (K, C), uint8, C in 1..4
        Alpha (the last channel of LA and RGBA) is ignored.

    Returns
    -------
    ndarray, shape (K,), float64, 0..255
    """
    colors = np.asarray(colors, dtype=np.float64)
    if colors.shape[1] in (1, 2):
        return colors[:, 0].copy()
    return colors[:, :3] @ np.array([0.299, 0.587, 0.114])


def luminance_order(palette: np.ndarray) -> np.ndarray:
    """Indices that sort a palette from dark to light (ties by index).

    Returns
    -------
    ndarray, shape (K,), intp
    """
    return np.argsort(luminance(palette), kind="stable")


def distinct_colors(n: int) -> np.ndarray:
    """``n`` clearly different colours for cluster labels.

    Up to 10: matplotlib's tab10; up to 20: tab20 with its darker shades
    first, so that neighbours differ in hue; beyond: hues around the colour
    wheel by the golden angle, alternating in lightness.

    Returns
    -------
    ndarray, shape (n, 3), float64 in 0..1
    """
    if n <= 10:
        return np.array(_TAB10[:n], dtype=np.float64)
    if n <= 20:
        return np.array((_TAB20[0::2] + _TAB20[1::2])[:n], dtype=np.float64)
    import colorsys

    hues = (np.arange(n) * 0.618033988749895) % 1.0
    values = np.where(np.arange(n) % 2 == 0, 0.92, 0.62)
    saturations = np.where(np.arange(n) % 3 == 0, 0.55, 0.85)
    return np.array([colorsys.hsv_to_rgb(h, s, v) for h, s, v in zip(hues, saturations, values)])


def _hex_to_rgb(code: str) -> tuple[float, float, float]:
    return tuple(int(code[i : i + 2], 16) / 255 for i in (1, 3, 5))


# matplotlib's tab10 and tab20 (the Tableau palettes), copied so that this
# module does not import matplotlib.
_TAB10 = [
    _hex_to_rgb(c)
    for c in (
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    )
]
_TAB20 = [
    _hex_to_rgb(c)
    for c in (
        "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
        "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
        "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
    )
]


def display_pixels(pixels: np.ndarray) -> np.ndarray:
    """Pixels as ``imshow`` draws them right.

    Parameters
    ----------
    pixels : ndarray, shape (H, W), (H, W, C), uint8, C in 1..4

    Returns
    -------
    ndarray, uint8
        (H, W) for grayscale (draw with ``cmap="gray", vmin=0, vmax=255``),
        (H, W, 3) for RGB, (H, W, 4) for LA and RGBA.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        return pixels
    channels = pixels.shape[2]
    if channels == 1:
        return pixels[:, :, 0]
    if channels == 2:
        gray, alpha = pixels[:, :, :1], pixels[:, :, 1:]
        return np.concatenate([gray, gray, gray, alpha], axis=2)
    return pixels


def format_bytes(n: int | None) -> str:
    """``1234567`` -> ``"1.23 MB"`` (decimal units, as file browsers show)."""
    if n is None:
        return "–"
    if n < 1000:
        return f"{n} B"
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if n < scale * 1000 or unit == "GB":
            value = n / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{n} B"  # pragma: no cover - the loop always returns


def format_psnr(psnr: float) -> str:
    """PSNR in dB, or "lossless" for identical images."""
    return "lossless" if math.isinf(psnr) else f"{psnr:.1f} dB"


def default_output_stem(input_name: str | None) -> str:
    """The stem of default output names: the input's file stem, or kodim23
    for the shipped sample."""
    if input_name in (None, "", "-"):
        return "kodim23" if input_name in (None, "") else "stdin"
    if input_name.startswith(("http://", "https://")):
        return Path(input_name.split("?")[0].rstrip("/")).stem or "download"
    return Path(os.fspath(input_name)).stem
