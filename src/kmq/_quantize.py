"""The pipeline end to end: read -> histogram -> k-means -> map -> encode.

:class:`ColorQuantizer` is the image-level estimator (learn a palette from
one image, map any image to it); :func:`compress` runs it on one image and
returns a :class:`Compressed`, which knows how to rebuild, measure and save
itself. :func:`load` and :func:`decompress` read ``.kmq`` files back.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from . import _container
from ._palette_order import reorder
from ._errors import UsageError
from ._estimator import ParamsMixin, check_fitted
from ._engine.histogram import ColorHistogram, color_histogram, pack_colors
from ._io import (
    DEFAULT_MAX_INPUT_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_PNG_EFFORT,
    MODES,
    SourceImage,
    check_effort,
    encode_export,
    format_for_path,
    read_image,
    read_source_bytes,
    write_atomic,
)
from ._engine.kmeans import _check_random_state, check_tol, fit_colors
from ._engine.remap import label_dtype, nearest_palette_index, rebuild
from ._engine.colorspace import CHROMA_WEIGHT, SPACES, PaletteSearch, alpha_scale, from_space, to_space
from ._engine.dither import MODE_ANY, MODE_FIXED, MODE_OPAQUE, dither_labels

__all__ = ["ColorQuantizer", "Compressed", "compress", "load", "decompress", "DEFAULT_K", "ImageAnalysis"]

#: Palette size when none is given (the CLI's prompt default too).
DEFAULT_K = 16
#: Defaults of compress() and the CLI, chosen on measured quality and speed
#: (docs/benchmarks.md, "Choosing the defaults"; benchmarks/defaults.py).
#: 8 Kodak images, seeds 0-2; quality = median over images of kmq's
#: uint8-palette SSE (median over seeds) / scikit-learn's inertia_
#: (KMeans(n_init=1), float64 centres); single-threaded CPU time of fit
#: plus mapping:
#:
#:   K=64   n_init=1 tol=1e-3: 1.0060, 29 ms | n_init=1 tol=1e-4: 1.0030, 38 ms
#:          n_init=1 tol=1e-5: 1.0007, 61 ms | n_init=2 tol=1e-4: 0.9990, 43 ms
#:          n_init=3 tol=1e-4: 0.9966, 48 ms | n_init=2 tol=1e-5: 0.9983, 65 ms
#:   K=16   n_init=1 tol=1e-4: 0.9972 (worst image 1.0270) | n_init=2: 0.9970 (1.0147)
#:
#: n_init repeats only the seeding and the coarsest histogram level (see
#: kmq._kmeans.fit_colors; below 8192 distinct colours there are no coarse
#: levels and the whole, then small, fit repeats), so a second start costs
#: ~13 % more CPU time (less wall time: the starts run side by side) and
#: buys 0.4 % at K=64 and a better worst case at K=16; a third costs as much
#: again for 0.2 %. tol=1e-5 costs 50 % more time for < 0.1 %; tol=1e-3
#: loses 0.4 %. max_iter is a safety cap per histogram level: these fits
#: took at most 99 iterations over all levels together at tol=1e-4.
DEFAULT_N_INIT = 2
DEFAULT_TOL = 1e-4
DEFAULT_MAX_ITER = 300
#: The seed used when none is given: a constant, so that the same input,
#: options and version give the same bytes on every run (a web build must
#: not see every asset change). ``seed=`` / ``--seed`` picks another.
DEFAULT_SEED = 0
#: Working colour space of k-means and of the mapping (see
#: kmq._engine.colorspace). Chosen on SSIMULACRA2 and mean CIEDE2000
#: (benchmarks/perceptual.py, docs/benchmarks.md "Perceptual quality"):
#: on 8 Kodak photographs (every third) at K = 16, 64, 256, undithered and
#: dithered, Oklab had the best median SSIMULACRA2 in every setting (K=64
#: undithered: oklab 71.1, rgb 66.7, lab 54.0; K=16 dithered: 47.4, 31.5,
#: 28.1), within 0.3 % of RGB's files size. CIELAB scored the lowest mean
#: CIEDE2000 (the metric is built on CIELAB) but far the worst SSIMULACRA2:
#: its a/b axes are stretched against L, so it spends entries on chroma and
#: bands in lightness. Oklab is near RGB on CIEDE2000 and best on the
#: metric that tracks what people see, so it is the default; above 16
#: colours (above 8 for opaque images dithered) the engine weights its
#: chroma 1.25 (working_space), which wins back most of CIEDE2000 without
#: CIELAB's banding.
DEFAULT_SPACE = "oklab"
#: The largest palette fitted in plain Oklab; larger ones are fitted and
#: mapped in "oklab-chroma" (see working_space). For images without alpha
#: dithered, the bound is DITHERED_PLAIN_OKLAB_MAX_K: error diffusion hides
#: the lightness steps that a chroma-weighted palette of 9 to 16 colours
#: leaves.
PLAIN_OKLAB_MAX_K = 16
DITHERED_PLAIN_OKLAB_MAX_K = 8
#: Error diffusion level (0 = none, 1 = the whole error passed on), and
#: dithering that spares edges and texture: the error a pixel receives is
#: scaled by DITHER_EDGE / c where the largest colour difference c to its 4
#: neighbours exceeds DITHER_EDGE (working units; the RGB value is the
#: Oklab one in 8-bit steps). Edges then stay clean and textures, which
#: mask banding by themselves, are not sprinkled with dots, while smooth
#: gradients, where banding shows, get the full treatment (the idea of
#: libimagequant's dither map, done per pixel in the working space).
#: Chosen on perceptual quality per byte (benchmarks/perceptual.py's
#: images, scored with SSIMULACRA2 and mean CIEDE2000; docs/benchmarks.md,
#: "Choosing the dithering default"): on 8 Kodak and 3 modern photographs
#: at K = 16 / 64 / 256, level 0.75 with the edge rule gave median
#: SSIMULACRA2 37.6 / 70.8 / 84.8 against pngquant's dithered 31.7 / 65.1 /
#: 80.4, with 97 % / 101 % / 100 % of its bytes and median CIEDE2000 within
#: 0.12 / 0.05 / 0.03 of it. Plain full Floyd-Steinberg scored 39.0 / 70.0 /
#: 83.9 for 105 % / 106 % / 103 % of pngquant's bytes and CIEDE2000 0.41 /
#: 0.46 / 0.33 worse: it buys little where K is large and costs bytes
#: everywhere. Use --nofs / dither=0 for the smallest files.
DEFAULT_DITHER = 0.75
DITHER_EDGE = {"oklab": 4.0, "oklab-chroma": 4.0, "lab": 4.0, "rgb": 10.0}
#: Images with alpha: a pixel that receives an error of at most this
#: fraction of the dithering grid's cell (see _dither_cell) keeps its
#: undithered entry rather than its cell's (below half a cell the grid
#: cannot tell the target from the pixel's own colour). Flat fills of exact
#: palette colours, common in icons and logos, then stay clean next to
#: dithered edges and gradients. Measured with benchmarks/perceptual.py's
#: images with alpha and 8 others (docs/benchmarks.md, "Perceptual
#: quality"): dithered, 40 of 48 image-settings beat pngquant on
#: SSIMULACRA2 with it, 38 without. Not applied without alpha yet: it would
#: change those images' bytes.
DITHER_SETTLE = 0.5
#: Dark colours, in the Oklab spaces: Oklab's lightness is a cube root
#: of luminance down to black, so near black it spreads the sRGB levels
#: wider than the eye tells them apart; CIELAB's lightness turns linear
#: there (its toe), which models that. A palette fitted in Oklab then
#: spends entries on dark shades a fraction of a visible step apart, and
#: error diffusion between them is noise that costs bytes (PNG filters and
#: deflate compress it badly) and shows nothing. So a pixel of a dark
#: opaque colour keeps its undithered entry while the error it receives
#: is at most DITHER_DARK_SETTLE x (r - 1) working units, r being how many
#: times faster Oklab's lightness grows there than CIELAB's (1 at Oklab
#: L 19.2, about sRGB level 20; 2.6 at L 12; _DARK_SETTLE_MAX at most).
#: Lighter colours have r < 1 and are dithered as before. Measured with
#: benchmarks/perceptual.py's images (docs/benchmarks.md, "Dark colours
#: settle"): the night photograph's dithered PNG 18 % / 14 % smaller at
#: K = 64 / 256 for 0.55 / 0.40 less SSIMULACRA2; the other photographs'
#: files the same or up to 0.4 % smaller; images with alpha unchanged.
DITHER_DARK_SETTLE = 1.0
_DARK_SETTLE_MAX = 4.0
#: Oklab lightness x 100 grows as 100/3 Y^(-2/3) with luminance Y, that is
#: (100/3) (100/L)^2; CIELAB's toe as kappa = 24389/27: r = _TOE_RATIO / L^2.
_TOE_RATIO = (100.0 / 3.0) * 1e4 / (24389.0 / 27.0)
#: Opaque pixels stay opaque: palette centres with alpha at or above this
#: are made fully opaque (a cluster of opaque pixels with a few soft-edge
#: ones mixed in would otherwise be slightly see-through everywhere), as are
#: centres of clusters mostly of opaque pixels (_mostly_opaque) ...
_OPAQUE_SNAP = 248
#: ... and an opaque pixel is mapped among the opaque entries only, unless
#: the nearest of them is farther than 2 x the nearest entry's distance
#: (its alpha deficit counted as on the worse of a black and a white page)
#: plus this (working units: Oklab x 100, i.e. 0.04 ΔEok): then no opaque
#: entry is near it and the translucent one is the better picture.
_OPAQUE_BOUND = 4.0

_MAX_K = 65536
#: Quality search: above this many distinct colours its fits and trial
#: measurements run on 6-bit bins (see ColorQuantizer._search_quality), if
#: there are at most this fraction as many bins ...
_QUALITY_BINS_ABOVE = 8192
_QUALITY_MAX_BIN_FRACTION = 0.5
#: ... and the final refinement runs at most this many point-iterations
#: (distinct colours x Lloyd iterations), 3 to 20 iterations.
_QUALITY_REFINE_WORK = 2_000_000
#: Its first fit's K; each next K is predicted from the errors so far as
#: E ~ K^-b, b from the last two fits (clipped to this range) or this
#: slope after the first; K is overshot by this margin (a fit too small
#: costs one more cheap fit, one too large a costlier one), and goes
#: straight to k_max past this fraction of it.
_QUALITY_FIRST_K = 32
_QUALITY_SLOPE = 0.42
_QUALITY_SLOPE_RANGE = (0.3, 1.0)
_QUALITY_MARGIN = 1.1
_QUALITY_JUMP = 0.9
#: Probes of the bisection placed by the error model (see _search_quality).
_QUALITY_MODEL_PROBES = 6
#: The most the refinement on the exact colours was seen to lower the
#: error of a palette the bins chose is 2.8 % (11 modern photographs at
#: 768 px and 12 Kodak ones, MAX 60, 80 and 99); below the minimum quality
#: even at this much lower an error, k_max is given up on unrefined.
_QUALITY_REFINE_MAX_GAIN = 0.9

#: ``--speed`` (pngquant's meaning: 1 slowest and best, 11 fastest; default
#: 4) as the engine's knobs. 4 is the measured defaults above; below it more
#: starts and a tighter tol, above it one start and a looser tol; 11 also
#: turns dithering off, as in pngquant. No level fits on a sample of the
#: pixels: on the histogram engine drawing it cost more than it saved
#: (levels 8-10 were slower than 7 with samples of 1/2 to 1/8, and the tol
#: hardly moves the error). Time and error per level: docs/benchmarks.md,
#: "Speed levels".
DEFAULT_SPEED = 4
SPEEDS = {
    1: dict(n_init=4, tol=1e-5, sample=None, dither=None),
    2: dict(n_init=3, tol=3e-5, sample=None, dither=None),
    3: dict(n_init=3, tol=1e-4, sample=None, dither=None),
    4: dict(n_init=DEFAULT_N_INIT, tol=DEFAULT_TOL, sample=None, dither=None),
    5: dict(n_init=1, tol=1e-4, sample=None, dither=None),
    6: dict(n_init=1, tol=3e-4, sample=None, dither=None),
    7: dict(n_init=1, tol=1e-3, sample=None, dither=None),
    8: dict(n_init=1, tol=3e-3, sample=None, dither=None),
    9: dict(n_init=1, tol=1e-2, sample=None, dither=None),
    10: dict(n_init=1, tol=3e-2, sample=None, dither=None),
    11: dict(n_init=1, tol=3e-2, sample=None, dither=0.0),
}


def _silent(stage: str) -> None:
    """The default progress callback: nothing shown."""


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise UsageError(f"the number of colours K must be a whole number from 1 to {_MAX_K}, got {k!r}")
    if not 1 <= k <= _MAX_K:
        raise UsageError(f"the number of colours K must be from 1 to {_MAX_K}, got {k}")
    return int(k)


def working_space(space: str, k: int, dither: float = 0.0, alpha: bool = False) -> str:
    """The space the engine fits and maps in for the user's ``space``, a
    palette of ``k`` colours, the dithering level ``dither`` (0..1) and
    whether the pixels have alpha: ``space`` itself, but for ``"oklab"``
    with more than PLAIN_OKLAB_MAX_K colours, or an opaque image dithered
    (``dither`` > 0) with more than DITHERED_PLAIN_OKLAB_MAX_K, which
    becomes ``"oklab-chroma"`` (a and b weighted 1.25,
    kmq._engine.colorspace).

    Why (benchmarks/perceptual.py's images; docs/benchmarks.md, "Chroma
    weight"): in plain Oklab, kmq's mean CIEDE2000 was worse than
    pngquant's on most photographs (a metric that counts a shift of hue or
    chroma near grey heavily, as people notice a colour cast), while its
    SSIMULACRA2 was well ahead. Weighting chroma 1.25 moves entries from
    lightness steps to hues. On 23 photographs not used to choose the
    weight, at K = 64 and 256, CIEDE2000 wins against pngquant went from 48
    to 79 of 92 image-settings, SSIMULACRA2 kept 91 of its 92 and the files
    were 1-4 % smaller. At K = 16 few entries must cover the lightness
    range, and without dithering to hide the steps the image bands: there
    the undithered SSIMULACRA2 median fell from 24.8 to 15.9, so undithered
    palettes of 16 colours and fewer stay in plain Oklab. Dithered, the
    steps are diffused away: on 35 photographs at K = 16 the weight took
    CIEDE2000 wins from 10 to 27 of 35 and left SSIMULACRA2 ahead on 32
    (median 38.0 -> 38.3, files 2 % smaller); at K = 8 it cost 4.6 points of
    median SSIMULACRA2, so 8 colours and fewer stay plain. On 16 images
    with alpha at K = 16 dithered it gained nothing (SSIMULACRA2 median
    43.6 -> 43.0, CIEDE2000 wins 7 and 7, files 1 % larger) and fewer
    opaque pixels stayed opaque, so those stay plain. The palette thus
    depends on whether the image is dithered, not on how much. With a
    quality target K is the largest allowed, so the search's palettes of
    every size, warm-started from one another, share one space."""
    if space == "oklab" and (
        k > PLAIN_OKLAB_MAX_K or (dither > 0 and not alpha and k > DITHERED_PLAIN_OKLAB_MAX_K)
    ):
        return "oklab-chroma"
    return space


def _check_space(space) -> str:
    if space not in SPACES:
        raise UsageError(f"the colour space must be one of {', '.join(SPACES)}, got {space!r}")
    return space


def _check_dither(dither) -> float:
    if isinstance(dither, bool):
        return 1.0 if dither else 0.0
    if not isinstance(dither, (int, float, np.integer, np.floating)) or not 0 <= dither <= 1:
        raise UsageError(f"the dithering level must be from 0 to 1, got {dither!r}")
    return float(dither)


def _check_quality(quality):
    """None, or (min, max) with 0 <= min <= max <= 100 -> (float, float)."""
    if quality is None:
        return None
    try:
        low, high = (float(v) for v in quality)
    except (TypeError, ValueError):
        raise UsageError(f"quality must be a pair (min, max) of numbers from 0 to 100, got {quality!r}") from None
    if not (0 <= low <= 100 and 0 <= high <= 100):
        raise UsageError(f"quality values must be from 0 to 100, got {low:g}-{high:g}")
    if low > high:
        raise UsageError(f"quality minimum must not exceed the maximum (MIN-MAX, 0 to 100), got {low:g}-{high:g}")
    return low, high


def _check_sample(sample) -> float | None:
    if sample is None:
        return None
    if isinstance(sample, bool) or not isinstance(sample, (int, float, np.floating)) or not 0 < sample <= 1:
        raise UsageError(f"sample must be a fraction of the pixels in (0, 1], got {sample!r}")
    return float(sample)


class ImageAnalysis:
    """What compressing an image computes from its pixels before any
    setting but the colour space matters, each part made on first use and
    kept: the packed colour of every pixel, the colour histogram, the
    distinct colours as points of each working space, and each pixel's row
    in the histogram (for dithering).

    :func:`compress` makes a new one for every call; a caller that
    compresses the same pixels again and again (``kmq serve``, moving K)
    keeps one and passes it to :func:`_compress`, which then skips this
    work. The parts are the same arrays compress() would compute, so the
    results are bit for bit the same. Safe to share between threads (each
    part is made once, under a lock); nothing that reads a part writes
    to it.

    pixels : (H, W, C) uint8, C in 1..4.
    """

    def __init__(self, pixels: np.ndarray, *, one_shot: bool = False):
        self.pixels = pixels
        # One compression only (compress() makes its own): the packed
        # colours are dropped once each pixel's histogram row is made, so
        # that a dithered image holds 4 bytes a pixel less at its peak.
        self.one_shot = one_shot
        self._parts: dict = {}
        self._locks: dict = {}
        self._lock = threading.Lock()

    def _part(self, name, make):
        value = self._parts.get(name)
        if value is not None:
            return value
        with self._lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._parts:
                self._parts[name] = make()
            return self._parts[name]

    def keys(self) -> np.ndarray:
        """(N,) uint32: the packed colour of every pixel, fully transparent
        pixels all as colour 0 (see _normalise_transparent)."""
        channels = self.pixels.shape[2]
        return self._part("keys", lambda: pack_colors(_normalise_transparent(self.pixels.reshape(-1, channels))))

    def histogram(self):
        """The ColorHistogram of ``keys()``: M distinct colours."""
        return self._part("histogram", lambda: color_histogram(self.keys(), self.pixels.shape[2]))

    def points(self, space: str) -> np.ndarray:
        """(M, C) float64: the histogram's colours in working space ``space``."""
        return self._part(("points", space), lambda: to_space(self.histogram().colors, space))

    def color_index(self) -> np.ndarray:
        """(H, W) int32: each pixel's row in the histogram."""
        def make():
            return self.histogram().rows(self.keys()).reshape(self.pixels.shape[:2])

        index = self._part("color_index", make)
        if self.one_shot:
            self._parts.pop("keys", None)
        return index

    @property
    def n_pixels(self) -> int:
        return int(self.pixels.shape[0] * self.pixels.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the parts made so far (not the pixels)."""
        total = 0
        for value in list(self._parts.values()):
            arrays = (value.colors, value.counts, value.keys) if hasattr(value, "counts") else (value,)
            total += sum(a.nbytes for a in arrays)
        return total


class ColorQuantizer(ParamsMixin):
    """Learn a K-colour palette by k-means and map images to it.

    Parameters
    ----------
    k : int
        Palette size, 1..65536.
    seed : None, int or numpy.random.Generator
        Same seed, same palette, bit for bit.
    sample : float in (0, 1], optional
        Fit on this random fraction of the pixels (faster; every pixel is
        still mapped by ``transform``).
    n_init, max_iter, tol, init
        Passed to :class:`kmq.KMeans`.
    space : {"oklab", "lab", "rgb"}
        Working colour space of k-means and of the nearest-entry search
        (kmq._engine.colorspace); for "oklab" with more than 16 colours,
        or more than 8 when an image without alpha is dithered, chroma
        counts 1.25 times (working_space). The palette is stored as sRGB
        uint8.
    dither : float in [0, 1] or bool
        Floyd-Steinberg error diffusion in the working space when mapping
        (``transform``): the fraction of each pixel's error passed on.
        Whether it is 0 also picks the working space (above).
    quality : (min, max), optional
        Use the fewest colours, up to ``k``, whose quality (kmq's 0-100
        scale, kmq._quality) reaches ``max``; QualityError (exit 99) if
        even ``k`` colours fall short of ``min``.

    Attributes
    ----------
    palette_ : ndarray, shape (K', C), uint8
        The learned colours, K' <= K (K' < K only when the image has fewer
        than K distinct colours; then the palette is exactly those colours).
    mode_ : str
        "L", "LA", "RGB" or "RGBA".
    n_colors_in_ : int
        Distinct colours of the fitted pixels.
    lossless_ : bool
        True when every distinct colour got its own palette entry.
    inertia_ : float
        Sum over the fitted pixels of the squared distance to their nearest
        entry of the final uint8 palette, in the working space (squared
        8-bit units for RGB; for Oklab, ΔEok x 100 with chroma weighted
        1.25 unless the palette is plain Oklab's: see working_space and
        kmq._engine.colorspace): the reconstruction error k-means
        minimises; 0 when lossless.
    mean_error_ : float
        Mean over the fitted pixels of that distance (not squared), without
        dithering.
    n_iter_ : int
        Lloyd iterations (0 when lossless).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((2, 3, 3), np.uint8); image[1] = 200
    >>> q = ColorQuantizer(2, seed=0).fit(image)
    >>> q.lossless_, q.palette_.tolist()
    (True, [[0, 0, 0], [200, 200, 200]])
    >>> q.transform(image).tolist()
    [[0, 0, 0], [1, 1, 1]]
    """

    _is_transformer = True

    def __init__(
        self,
        k=DEFAULT_K,
        *,
        seed=None,
        sample=None,
        n_init=DEFAULT_N_INIT,
        max_iter=DEFAULT_MAX_ITER,
        tol=DEFAULT_TOL,
        init="k-means++",
        space=DEFAULT_SPACE,
        dither=0.0,
        quality=None,
    ):
        self.k = k
        self.seed = seed
        self.sample = sample
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.space = space
        self.dither = dither
        self.quality = quality

    def fit(self, image, y=None):
        """Learn the palette of ``image``.

        Parameters
        ----------
        image : path, URL, bytes, PIL.Image or ndarray (H, W[, C]) uint8

        Returns
        -------
        self
        """
        source = image if isinstance(image, SourceImage) else read_image(image)
        self._fit_pixels(source.pixels)
        return self

    def _fit_pixels(self, pixels: np.ndarray, progress=None, analysis: ImageAnalysis | None = None) -> np.ndarray:
        """Fit on (H, W, C) uint8 pixels.
        ``progress``: as for :func:`compress`; ``analysis``: an
        ImageAnalysis of these pixels to take the histogram and
        working-space points from (made here if None)."""
        say = progress or _silent
        k = _check_k(self.k)
        sample = _check_sample(self.sample)
        user_space = _check_space(self.space)
        channels = pixels.shape[2]
        space = working_space(user_space, k, _check_dither(self.dither), alpha=channels in (2, 4))
        rng = _check_random_state(DEFAULT_SEED if self.seed is None else self.seed)
        say("histogram")
        if analysis is None:
            analysis = ImageAnalysis(pixels)
        n_pixels = analysis.n_pixels
        sampled = sample is not None and sample < 1
        if sampled:
            # A sample of the pixels drawn without replacement, drawn in
            # histogram space: its colour counts are one multivariate
            # hypergeometric draw from the image's (exactly the law of the
            # counts of a pixel sample), O(distinct colours) instead of a
            # permutation and a sort of the sampled pixels; the image's
            # histogram is needed for the mapping anyway.
            n_sample = max(min(n_pixels, k), int(round(sample * n_pixels)))
            full = analysis.histogram()
            drawn = rng.multivariate_hypergeometric(full.counts, n_sample, method="marginals")
            kept = np.flatnonzero(drawn)
            histogram = ColorHistogram(colors=full.colors[kept], counts=drawn[kept].astype(np.int64), keys=full.keys[kept])

            def space_points(space):
                return analysis.points(space)[kept]
        else:
            histogram = analysis.histogram()
            space_points = analysis.points

        self._fitted_mapping = None
        self._search = None
        self.space_ = user_space
        self._work_space = space
        self.mode_ = MODES[channels]
        self.n_colors_in_ = histogram.n_colors
        self.n_iter_ = 0
        self.inertia_ = 0.0
        self.mean_error_ = 0.0
        self.quality_ = None
        self.quality_note_ = None
        if histogram.n_colors <= k:
            _check_quality(getattr(self, "quality", None))
            self.palette_ = histogram.colors.copy()
            self.lossless_ = True
            self.quality_ = 100.0 if getattr(self, "quality", None) is not None else None
            return

        colors, counts = histogram.colors, histogram.counts
        # RGB without alpha keeps the exact integer search; every other case
        # runs on float points in the working space.
        integer = space == "rgb" and channels in (1, 3)
        points_all = None if integer else space_points(space)
        points = points_all
        reserved = None
        quality = _check_quality(getattr(self, "quality", None))
        transparent = channels in (2, 4) and k >= 2 and histogram.keys[0] == 0
        fitted = None
        if transparent and quality is None and counts[0] * k >= counts.sum():
            # Key 0 is the one fully transparent colour (see
            # _normalise_transparent), and it gets an entry of its own. Fit
            # k centres on every colour, it among them: k-means then knows
            # that the nearly transparent pixels around it have an entry,
            # and the cluster that holds it becomes that entry. (Only when
            # transparent pixels are at least 1/k of the image: fewer could
            # not be most of a cluster, and the fit would be made twice.)
            say(f"k-means K={k} ({histogram.n_colors:,} distinct colours)")
            fitted = _fit_with_transparent(
                fit_colors(
                    colors, counts, k, random_state=rng, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                    init=self.init, points=points_all, space=space,
                ),
                counts,
            )
        if transparent:
            # The transparent entry first, the rest clustered.
            reserved = colors[:1]
            colors, counts = colors[1:], counts[1:]
            points = points_all[1:]
            k -= 1
        self.quality_ = None
        if quality is not None:
            say(f"quality search: up to K={k + transparent} ({histogram.n_colors:,} distinct colours)")
            centers, color_labels, n_iter = self._search_quality(
                quality, k, histogram, colors, counts, points, reserved, space, integer, rng, say, space_points,
            )
        elif fitted is not None:
            centers, color_labels, n_iter = fitted
        else:
            say(f"k-means K={k + transparent} ({histogram.n_colors:,} distinct colours)")
            centers, color_labels, _, n_iter = fit_colors(
                colors, counts, k, random_state=rng, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                init=self.init, points=points, space=space,
            )
        palette = self._finish_palette(centers, reserved, space, integer, _mostly_opaque(colors, counts, color_labels, len(centers)))
        guess = color_labels.astype(np.int32)
        if reserved is not None:
            # (-1, a colour of the transparent cluster: the search starts at
            # the transparent entry.)
            guess = np.concatenate([[0], guess + 1]).astype(np.int32)
        # Map the fitted colours to the rounded palette now: the k-means labels
        # make the search start next to the answer, and the exact squared
        # distances give the inertia of the palette actually used.
        self.palette_ = palette
        self._search = None
        if integer:
            palette_labels, dist2 = nearest_palette_index(histogram.colors, palette, guess=guess, return_dist2=True)
        else:
            palette_labels, dist2 = self._nearest_colors(histogram.colors, points_all, guess)
        self.lossless_ = False
        # Products summed by numpy, not BLAS's dot: its kernels differ from one
        # processor to the next, and these numbers steer the quality search.
        self.inertia_ = float((histogram.counts * dist2).sum())
        self.mean_error_ = float((histogram.counts * np.sqrt(dist2)).sum() / histogram.counts.sum())
        self.n_iter_ = int(n_iter)
        # fit_transform maps the same keys next: keep the work for _map_keys.
        self._fitted_mapping = None if sampled else (analysis, histogram, palette_labels)

    @staticmethod
    def _finish_palette(centers, reserved, space, integer, opaque=None) -> np.ndarray:
        """Working-space centres (k, D) -> the stored uint8 palette: rounded,
        near-opaque alpha snapped to 255, the transparent entry first.
        ``opaque`` (k,) bool: centres made fully opaque whatever their
        alpha (clusters mostly of opaque pixels, see _mostly_opaque)."""
        if integer:
            palette = np.clip(np.rint(centers), 0, 255).astype(np.uint8)
        else:
            palette = from_space(centers, space)
            if palette.shape[1] in (2, 4):
                snapped = palette.copy()
                snapped[:, -1] = 255
                if opaque is not None and opaque.any():
                    # Alpha at its full coordinate, the colour coordinates
                    # kept: the cluster's best centre among the opaque ones
                    # (the squared distances add over the coordinates).
                    full = np.array(centers[opaque], dtype=np.float64)
                    full[:, -1] = alpha_scale(space, full.shape[1])
                    snapped[opaque] = from_space(full, space)
                snap = palette[:, -1] >= _OPAQUE_SNAP
                if opaque is not None:
                    snap |= opaque
                snap &= palette[:, -1] < 255
                palette = _snap_opaque(palette, snapped, snap)
        if reserved is not None:
            palette = np.concatenate([reserved, palette])
        return palette

    def _search_quality(self, quality, k_max, histogram, colors, counts, points, reserved, space, integer, rng, say, space_points):
        """The fewest colours, up to ``k_max`` (the transparent entry not
        counted), whose palette reaches ``quality[1]`` (kmq._quality):
        returns (centres (K, D) float64 in the working space, labels (M,)
        int32 of ``colors``, Lloyd iterations), sets quality_ and
        quality_note_; raises QualityError when even ``k_max`` falls short
        of ``quality[0]``. ``colors`` (M, C) uint8 and ``counts`` (M,) are
        the clustered colours (``reserved``, the transparent one, apart),
        ``points`` their working-space coordinates (None: the integer RGB
        search); ``say``: called with each step's description;
        ``space_points(space)``: the histogram's colours in that space."""
        from ._engine.kmeans import _bin_means, coarse_histogram, fit_colors_exact
        from ._engine.colorspace import level_scale
        from ._quality import QUALITY_ORDER, error_from_quality, quality_error, quality_from_error, ward_palettes

        low, high = quality
        tol = check_tol(self.tol)
        extra = int(reserved is not None)
        work_points = np.ascontiguousarray(to_space(colors, "rgb") if points is None else points, dtype=np.float64)
        weights = counts.astype(np.float64)
        oklab = space_points("oklab")[extra:]
        # Fully transparent pixels map to their own entry exactly: error 0,
        # but they are pixels of the image and count in the mean.
        reserved_weight = float(histogram.counts[0]) if extra else 0.0
        exact_set = (work_points, oklab, weights)
        trial_set = exact_set
        bin_of_color = None
        if len(colors) > _QUALITY_BINS_ABOVE:
            # The growing fits and the bisection run on 6-bit bins (their
            # count-weighted mean points): several times fewer points, and
            # an error a fraction of a quality point from the exact one (the
            # difference, measured once, corrects them). Only the answer is
            # fitted and measured on the exact colours. The bins are cut on
            # the working space's lightness scale, not on sRGB levels:
            # sRGB levels 0-3 span 10 units of Oklab lightness (252-255
            # under 1), and the order-3 mean weighs the scatter that bin
            # means lose. On sRGB bins a photograph with dark areas
            # (Jewel-Changi at 768 px) measured 0.63 of its palette's error
            # on the exact colours, and the search, misled, refitted six
            # times (docs/benchmarks.md, "Quality search time").
            keys = colors
            scale = level_scale(space) if points is not None else None
            if scale is not None:
                keys = scale[colors]
                if colors.shape[1] in (2, 4):
                    keys[:, -1] = colors[:, -1]
            _, bin_weights, bin_of_color = coarse_histogram(keys, counts, 6)
        bin_keys = None
        if bin_of_color is not None and len(bin_weights) <= _QUALITY_MAX_BIN_FRACTION * len(colors):
            trial_set = (
                _bin_means(work_points, weights, bin_of_color, bin_weights),
                _bin_means(oklab, weights, bin_of_color, bin_weights),
                bin_weights,
            )
            # Each bin's 6-bit key as a colour: fit_colors bins these again
            # (coarser levels nest in them) to seed and start its fits.
            first = np.empty(len(bin_weights), dtype=np.int64)
            first[bin_of_color[::-1]] = np.arange(len(bin_of_color))[::-1]
            bin_keys = np.ascontiguousarray(keys[first] & 0xFC)
            bin_counts = np.rint(bin_weights).astype(np.int64)
        n_measured = [0]
        n_iter = [0]
        n_fits = [0]
        n_refined = [0]

        def measure(cand, guess, on):
            """The error E (kmq._quality) of the palette of centres ``cand``
            on the points of ``on``; ``guess``: a near entry of each point
            (indices into ``cand``), where its search starts. On the exact
            colours the guess is their cluster, and the palette is the one
            that would be written (clusters of mostly opaque pixels made
            opaque, as _fit_pixels does)."""
            n_measured[0] += 1
            say(f"quality search: K={len(cand) + extra} (measurement {n_measured[0]})")
            opaque = _mostly_opaque(colors, counts, np.asarray(guess), len(cand)) if on is exact_set else None
            palette = self._finish_palette(cand, reserved, space, integer, opaque)
            pts, ok, w = on
            labels, _ = PaletteSearch(palette, space).nearest(pts, guess=np.asarray(guess, dtype=np.int32) + extra)
            diff = ok - to_space(palette, "oklab")[labels]
            error = quality_error(np.sqrt((diff * diff).sum(axis=1)), w)
            if extra:
                # Its zero-error pixels join the power mean.
                error *= (w.sum() / (w.sum() + reserved_weight)) ** (1.0 / QUALITY_ORDER)
            return error

        inertias = {}

        def fit(kk):
            """k-means at kk on the trial points: (centres, labels of them);
            its squared error on them goes to ``inertias``."""
            say(f"quality search: k-means K={kk + extra}")
            n_fits[0] += 1
            if trial_set is exact_set:
                centres, labels, inertia, it = fit_colors(
                    colors, counts, kk, random_state=rng, n_init=1, max_iter=self.max_iter, tol=max(tol, 1e-3),
                    init="k-means++", points=points, space=space,
                )
            else:
                # The bins' keys are already on the right scale (space=None:
                # not binned again on the lightness scale).
                centres, labels, inertia, it = fit_colors(
                    bin_keys, bin_counts, kk, random_state=rng, n_init=1, max_iter=self.max_iter, tol=max(tol, 1e-3),
                    init="k-means++", points=trial_set[0], space=None,
                )
            n_iter[0] += it
            inertias[kk] = float(inertia)
            return np.asarray(centres, dtype=np.float64), np.asarray(labels, dtype=np.int32)

        def guess_for(cand, centres, labels):
            """Where each trial point's search starts for the palette
            ``cand``: the candidate entry nearest to its centre in the fit."""
            if len(cand) == len(centres):
                return labels
            start, _ = PaletteSearch(self._finish_palette(cand, None, space, integer), space).nearest(centres)
            return start[labels]

        target = error_from_quality(high)
        # Grow K until the target is reached, each K predicted from the
        # errors so far (E ~ K^-b: b is 0.35-0.5 on photographs, more on
        # graphics), then bisect between the last two by merging the
        # larger fit's centres. The fits at small K cost little, and the
        # largest is near the answer: the search costs about a fit at the
        # K it finds, not one at k_max (docs/benchmarks.md, "Quality search
        # time").
        kk = min(k_max, _QUALITY_FIRST_K)
        lo, fits, errors = 0, {}, {}
        while True:
            fits[kk] = fit(kk)
            errors[kk] = measure(fits[kk][0], fits[kk][1], trial_set)
            if errors[kk] <= target or kk == k_max:
                break
            lo = kk
            known = sorted(errors)
            b = _QUALITY_SLOPE
            if len(known) >= 2:
                k1, k2 = known[-2], known[-1]
                b = math.log(errors[k1] / errors[k2]) / math.log(k2 / k1) if errors[k2] < errors[k1] else b
                b = min(max(b, _QUALITY_SLOPE_RANGE[0]), _QUALITY_SLOPE_RANGE[1])
            if target > 0:
                step = max(kk + 1, math.ceil(_QUALITY_MARGIN * kk * (errors[kk] / target) ** (1.0 / b)))
            else:  # quality 100: nothing short of every colour
                step = k_max
            kk = k_max if step >= _QUALITY_JUMP * k_max else step
        hi = kk
        centres, labels = fits[hi]
        bias = 1.0
        exact = {}  # K -> (exact error, centres, labels of the colours)
        if trial_set is not exact_set:
            # The bins lose the scatter inside them, so their error is low:
            # the ratio at hi corrects the bisection's measurements.
            exact_labels = labels[bin_of_color]
            exact[hi] = (measure(centres, exact_labels, exact_set), centres, exact_labels)
            bias = exact[hi][0] / errors[hi] if errors[hi] > 0 else 1.0
        else:
            exact[hi] = (errors[hi], centres, labels)
        merged, added = ward_palettes(centres, np.bincount(labels, weights=trial_set[2], minlength=hi), return_costs=True)
        top = hi
        # Short of the target at hi on the exact colours (k_max, or the bins'
        # error was low), fewer colours are too: nothing to bisect.
        lo = hi - 1 if exact[hi][0] > target else min(lo, hi - 1)
        if hi == k_max and quality_from_error(exact[hi][0] * _QUALITY_REFINE_MAX_GAIN) < low:
            # Hopeless: not even a refinement far better than any seen
            # would reach the minimum.
            raise _quality_short(quality_from_error(exact[hi][0]), hi + extra, low)
        # The answer is in lo+1..hi (quality grows with K). The merges'
        # costs give the squared error S(K) of every merged palette (points
        # kept in their merged clusters), and E ~ c sqrt(S(K)), with c
        # measured at hi and at each probe (and interpolated between):
        # each probe is the K where that model meets the target, so a few
        # measurements usually settle it; after _QUALITY_MODEL_PROBES the
        # rest is plain bisection.
        sse = inertias[hi] + added
        scale = {hi: errors[hi] * bias / math.sqrt(sse[hi - 1]) if sse[hi - 1] > 0 else 0.0}

        def predicted(ks):
            """The model's error of the merged palettes of sizes ``ks``."""
            known = np.array(sorted(scale))
            return np.interp(ks, known, [scale[kk] for kk in known]) * np.sqrt(sse[ks - 1])

        def fewest(first, last, error_scale=1.0):
            """The smallest K in first..last whose predicted error (times
            ``error_scale``) meets the target; ``last`` if none does."""
            ks = np.arange(first, last + 1)
            within = np.flatnonzero(predicted(ks) * error_scale <= target)
            return int(ks[within[0]]) if len(within) else last

        probes = 0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if probes < _QUALITY_MODEL_PROBES and target > 0 and scale[top] > 0:
                mid = min(hi - 1, max(lo + 1, fewest(lo + 1, hi)))
                probes += 1
            cand = merged[mid - 1]
            e_mid = measure(cand, guess_for(cand, centres, labels), trial_set) * bias
            if sse[mid - 1] > 0:
                scale[mid] = e_mid / math.sqrt(sse[mid - 1])
            if e_mid <= target:
                hi = mid
            else:
                lo = mid
        chosen = hi
        # Settle on the exact colours: the chosen palette seeds a short
        # Lloyd run on them (a warm start, next to their minimum), and is
        # measured exactly; the better of the two palettes measured is
        # kept (Lloyd lowers the squared error, not the scale's order-3
        # mean). Short of the target (the bins' estimate was off), a few
        # more colours, more each time.
        budget = min(20, max(3, _QUALITY_REFINE_WORK // max(len(work_points), 1)))

        def settle(kk):
            """(exact error, centres, labels of the colours) of the best
            palette of kk colours measured on the exact colours."""
            if kk in exact and trial_set is exact_set:
                return exact[kk]
            start = merged[kk - 1] if kk <= top else fit(kk)[0]
            say(f"quality search: refining K={kk + extra}")
            n_refined[0] += 1
            refined, refined_labels, _, it = fit_colors_exact(work_points, weights, kk, rng, 1, budget, tol, init=start)
            n_iter[0] += it
            candidate = (measure(refined, refined_labels, exact_set), refined, refined_labels)
            if kk not in exact or candidate[0] <= exact[kk][0]:
                exact[kk] = candidate
            return exact[kk]

        grow = 1
        while settle(chosen)[0] > target and chosen < k_max:
            chosen = min(k_max, chosen + grow)
            grow *= 2
        error = exact[chosen][0]
        if error <= target and 1 < chosen <= top and scale[top] > 0:
            # Refined, the palette measured better than the merged one was
            # predicted to: smaller ones may reach the target refined too.
            # One try, where the predictions scaled by that gain meet it.
            gain = error / float(predicted(np.array([chosen]))[0])
            fewer = fewest(1, chosen - 1, gain)
            if gain < 1 and float(predicted(np.array([fewer]))[0]) * gain <= target and settle(fewer)[0] <= target:
                chosen = fewer
        error, result, result_labels = exact[chosen]
        score = quality_from_error(error)
        k_total = chosen + extra
        if score < low:
            raise _quality_short(score, k_total, low)
        self.quality_ = score
        if error <= target:
            self.quality_note_ = (
                f"quality {score:.0f}: {k_total} colours, the fewest reaching the target {high:g} "
                f"(searched 1..{k_max + extra} with {n_fits[0]} fit{'s' * (n_fits[0] != 1)}, {n_refined[0]} refined "
                f"and {n_measured[0]} measurement{'s' * (n_measured[0] != 1)})"
            )
        else:
            self.quality_note_ = (
                f"quality {score:.0f}: {k_total} colours, the most allowed; the target {high:g} "
                f"is not reached, the minimum {low:g} is"
            )
        return np.ascontiguousarray(result), np.asarray(result_labels, dtype=np.int32), int(n_iter[0])

    def _palette_search(self) -> PaletteSearch:
        if getattr(self, "_search", None) is None:
            self._search = PaletteSearch(self.palette_, self._working_space())
        return self._search

    def _working_space(self) -> str:
        """The engine's space for this palette (see working_space): the
        fit's, or for a palette given by hand (kmq.palette), the one a fit of
        its size at this dithering would have used."""
        work = getattr(self, "_work_space", None)
        if work is None:
            space = getattr(self, "space_", None) or _check_space(self.space)
            work = self._work_space = working_space(
                space, len(self.palette_), _check_dither(self.dither), alpha=self.palette_.shape[1] in (2, 4)
            )
        return work

    def _opaque_entries(self) -> np.ndarray | None:
        """(K,) bool of the fully opaque entries, or None without alpha."""
        if self.palette_.shape[1] not in (2, 4):
            return None
        return self.palette_[:, -1] == 255

    def _nearest_colors(self, colors, points, guess=None):
        """Nearest entry of each distinct colour in the working space, with
        opaque colours kept on opaque entries when one is near:
        (labels (M,) uint8/uint16, dist2 (M,) float64)."""
        search = self._palette_search()
        labels, dist2 = search.nearest(points, guess=guess)
        opaque_entry = self._opaque_entries()
        if opaque_entry is not None and opaque_entry.any():
            need = np.flatnonzero((colors[:, -1] == 255) & ~opaque_entry[labels])
            if len(need):
                alt, alt_dist2 = search.nearest(points[need], guess=labels[need], allowed=opaque_entry)
                # The translucent entry judged on the worse page: an alpha
                # deficit shows over black or over white up to twice what
                # the mean of the two (the working distance) counts.
                gap = points[need, -1] - search.points[labels[need], -1]
                worst = dist2[need] + 3.0 * gap * gap
                take = np.sqrt(alt_dist2) <= 2.0 * np.sqrt(worst) + _OPAQUE_BOUND
                labels[need[take]] = alt[take]
                dist2[need[take]] = alt_dist2[take]
        return labels.astype(label_dtype(len(self.palette_))), dist2

    def _check_fitted(self):
        check_fitted(self, "palette_")

    def transform(self, image) -> np.ndarray:
        """Palette index of every pixel.

        Parameters
        ----------
        image : path, URL, bytes, PIL.Image or ndarray (H, W[, C]) uint8
            Must have the fitted image's channel count.

        Returns
        -------
        labels : ndarray, shape (H, W), uint8 if K <= 256 else uint16
        """
        self._check_fitted()
        source = image if isinstance(image, SourceImage) else read_image(image)
        pixels = source.pixels
        if MODES[pixels.shape[2]] != self.mode_:
            raise UsageError(f"the palette was fitted on a {self.mode_} image, got a {MODES[pixels.shape[2]]} image")
        analysis = ImageAnalysis(pixels)
        return self._map_keys(analysis.keys(), pixels.shape[:2], analysis=analysis)

    def _map_keys(self, keys: np.ndarray, shape, progress=None, *, analysis: ImageAnalysis) -> np.ndarray:
        """Palette index (H, W) of every pixel; ``keys`` (N,) is
        ``analysis.keys()``, the packed colours of the pixels (None: taken
        from ``analysis`` when needed); ``progress`` as for
        :func:`compress`."""
        say = progress or _silent
        level = _check_dither(self.dither)
        space = self._working_space()
        cached = getattr(self, "_fitted_mapping", None)
        self._fitted_mapping = None
        if cached is not None and cached[0] is analysis:
            _, histogram, palette_labels = cached
            cached = None
        else:
            say("mapping")
            histogram = analysis.histogram()
            channels = self.palette_.shape[1]
            if space == "rgb" and channels in (1, 3):
                palette_labels = nearest_palette_index(histogram.colors, self.palette_)
            else:
                points = analysis.points(space)
                palette_labels, _ = self._nearest_colors(histogram.colors, points, _grid_guess(histogram.colors, self._palette_search(), space))
        # An image whose every colour is in the palette has no error to
        # diffuse: it is kept exact (the grid of the dithering kernel could
        # otherwise move pixels off their own colours: an image of <= K
        # colours came out inexact when dithered).
        exact = _exact(self.palette_, palette_labels, histogram.colors)
        if level == 0 or len(self.palette_) < 2 or exact:
            # Spread as the stored dtype: 1 byte a pixel, not 4.
            values = palette_labels.astype(label_dtype(len(self.palette_)))
            return histogram.lookup(values, analysis.keys() if keys is None else keys).reshape(shape)
        keys = None
        say("dithering")
        return self._dither(histogram, palette_labels, analysis, level, space)

    def _dither(self, histogram, palette_labels, analysis, level, space):
        """Floyd-Steinberg in the working space; (H, W) labels."""
        search = self._palette_search()
        colors = histogram.colors
        color_index = analysis.color_index()
        mode = np.full(histogram.n_colors, MODE_ANY, dtype=np.uint8)
        opaque_entry = self._opaque_entries()
        if opaque_entry is None:
            opaque_entry = np.ones(len(self.palette_), dtype=bool)
        else:
            # Transparent pixels keep their entry and pass no error on; opaque
            # ones that were mapped to an opaque entry stay among those.
            mode[colors[:, -1] == 0] = MODE_FIXED
            mode[(colors[:, -1] == 255) & opaque_entry[palette_labels]] = MODE_OPAQUE
        points = analysis.points(space)
        cell = _dither_cell(search)
        settle = 0.0
        if self.palette_.shape[1] in (2, 4):
            # In "oklab-chroma" a colour's error is up to CHROMA_WEIGHT times
            # longer than in Oklab: so is the bound. With Oklab's, a logo's
            # flat fills at K = 256 kept 90.5 % of their pixels exact
            # instead of 95.7 %.
            settle = DITHER_SETTLE * cell * (CHROMA_WEIGHT if space == "oklab-chroma" else 1.0)
        dark = _dark_settle(points, colors, space)
        if dark is not None:
            settle = np.maximum(settle, dark)
        return dither_labels(
            color_index, points, palette_labels, mode, search, opaque_entry, level,
            edge=DITHER_EDGE[space], cell=cell, settle=settle,
        )

    def fit_transform(self, image, y=None) -> np.ndarray:
        """``fit(image)`` then ``transform(image)``, reading the image once."""
        source = image if isinstance(image, SourceImage) else read_image(image)
        analysis = ImageAnalysis(source.pixels)
        self._fit_pixels(source.pixels, analysis=analysis)
        return self._map_keys(None, source.pixels.shape[:2], analysis=analysis)

    def inverse_transform(self, labels) -> np.ndarray:
        """Rebuild an image from palette indices.

        Parameters
        ----------
        labels : ndarray, shape (H, W), integer < K'

        Returns
        -------
        ndarray, shape (H, W) for L, else (H, W, C), uint8
        """
        self._check_fitted()
        return _rebuild(self.palette_, np.asarray(labels))


def _quality_short(score: float, k: int, low: float):
    """The QualityError of a search whose ``k`` colours reach only ``score``."""
    from ._quality import QualityError

    return QualityError(f"the quality reached with {k} colours is {score:.0f}, below the minimum {low:g}; nothing written")


def _exact(palette, labels, colors) -> bool:
    """True when every colour (M, C) is exactly its entry of ``palette``."""
    return bool(np.array_equal(palette[labels], colors))


def _median(values: np.ndarray) -> float:
    """np.median of a 1-D float array, to the bit, without np.median's
    import of numpy.ma (8 ms of a 0.4 MP image's run)."""
    n = len(values)
    part = np.partition(values, [(n - 1) // 2, n // 2])
    return float((part[(n - 1) // 2] + part[n // 2]) / 2)


def _dark_settle(points: np.ndarray, colors: np.ndarray, space: str) -> np.ndarray | None:
    """Each colour's settle bound for dithering (see DITHER_DARK_SETTLE):
    (M,) float64, working units, from ``points`` (M, D) in the working
    space and ``colors`` (M, C) uint8; None where no colour has one (the
    RGB and CIELAB spaces, or no dark opaque colour)."""
    if space not in ("oklab", "oklab-chroma") or len(points) == 0:
        return None
    lightness = np.maximum(points[:, 0], 1e-6)
    bound = np.minimum(DITHER_DARK_SETTLE * np.maximum(_TOE_RATIO / (lightness * lightness) - 1.0, 0.0), _DARK_SETTLE_MAX)
    if colors.shape[1] in (2, 4):
        # A translucent colour's working point is not its own lightness
        # (it is blended as it is seen), and its visibility is the page's.
        bound[colors[:, -1] != 255] = 0.0
    return bound if bound.any() else None


def _dither_cell(search: PaletteSearch) -> float:
    """Grid cell of the dithering kernel's nearest-entry cache (working
    units): 0.15 of the median distance from a palette entry to its nearest
    other entry, within [0.25, 1]. Measured against an exact search for every
    pixel (dithered, 11 photographs, K = 16, 64, 256): a fixed cell of 1
    unit lost 0.5 SSIMULACRA2 at K = 256, 0.5 unit was level with exact."""
    if search.order.shape[0] == 0 or len(search.points) < 2:
        return 0.5
    spacing = _median(search.dist[np.arange(len(search.points)), search.order[:, 1]])
    return float(min(1.0, max(0.25, 0.15 * spacing)))


def _grid_guess(colors: np.ndarray, search: PaletteSearch, space: str) -> np.ndarray:
    """A likely nearest entry of each colour (M, C) uint8: the entry nearest
    to the centre of its cell of a coarse grid (16 levels a channel, 8 with
    four channels) -> (M,) int32."""
    channels = colors.shape[1]
    bits = 4 if channels <= 3 else 3
    shift = 8 - bits
    levels = ((np.arange(1 << bits) << shift) + (1 << (shift - 1))).astype(np.uint8)
    grid = np.stack(np.meshgrid(*([levels] * channels), indexing="ij"), axis=-1).reshape(-1, channels)
    cell_labels, _ = search.nearest(to_space(grid, space))
    cells = np.zeros(len(colors), dtype=np.int64)
    for c in range(channels):
        cells = (cells << bits) | (colors[:, c] >> shift)
    return cell_labels[cells]


def _snap_opaque(palette, snapped, snap):
    """``palette`` (k, C) uint8 with row i replaced by ``snapped[i]`` where
    ``snap[i]``, but for a snap that would repeat an opaque entry (that
    entry already serves the opaque pixels: the translucent one is kept for
    the rest of its cluster). Snaps are taken in entry order."""
    taken = {row.tobytes() for row in palette[palette[:, -1] == 255]}
    palette = palette.copy()
    for i in np.flatnonzero(snap):
        key = snapped[i].tobytes()
        if key not in taken:
            taken.add(key)
            palette[i] = snapped[i]
    return palette


def _fit_with_transparent(fit, counts):
    """A fit of k centres on every colour, the fully transparent one first
    (``fit_colors``' (centres, labels, inertia, n_iter); counts (M,)) ->
    (the k - 1 other centres, labels (M - 1,) of the other colours among
    them, -1 for those of the transparent cluster, n_iter), or None when
    fully transparent pixels are not most of their cluster's (then that
    cluster's other pixels need their own centre: fit again without it)."""
    centers, labels, _, n_iter = fit
    t = labels[0]
    own = labels == t
    if not counts[0] > 0.5 * counts[own].sum():
        return None
    rest = labels[1:].astype(np.int32)
    rest = np.where(rest == t, -1, rest - (rest > t))
    return np.ascontiguousarray(np.delete(centers, t, axis=0)), rest, n_iter


def _mostly_opaque(colors: np.ndarray, counts: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray | None:
    """(k,) bool: the clusters whose pixels are more than half fully opaque
    (by count), or None without alpha. colors (M, C) uint8, counts (M,),
    labels (M,) the cluster of each colour.

    A cluster of opaque pixels with soft-edge ones mixed in has a mean
    alpha a little below 255; kept, every opaque pixel it holds would show
    the page through it. Such a centre is made opaque instead."""
    if colors.shape[1] not in (2, 4) or k == 0:
        return None
    keep = labels >= 0  # (-1: not in any of the k clusters)
    labels, colors = labels[keep], colors[keep]
    weights = counts[keep].astype(np.float64)
    opaque = np.bincount(labels, weights=weights * (colors[:, -1] == 255), minlength=k)
    return opaque > 0.5 * np.bincount(labels, weights=weights, minlength=k)


def _normalise_transparent(flat: np.ndarray) -> np.ndarray:
    """Give every fully transparent pixel the same colour (all zeros), so
    their hidden colours cost no palette entries. (N, C) -> (N, C)."""
    if flat.shape[1] not in (2, 4):
        return flat
    transparent = flat[:, -1] == 0
    if not transparent.any():
        return flat
    flat = flat.copy()
    flat[transparent] = 0
    return flat


def _rebuild(palette: np.ndarray, labels: np.ndarray) -> np.ndarray:
    if labels.dtype.kind not in "iu":
        raise UsageError(f"labels must be integers (palette indices), got {labels.dtype}")
    if labels.size and int(labels.min()) < 0:
        raise UsageError(f"labels hold index {int(labels.min())}: palette indices are 0..{len(palette) - 1}")
    if labels.size and int(labels.max()) >= len(palette):
        raise UsageError(f"labels hold index {int(labels.max())}, but the palette has {len(palette)} entries")
    image = rebuild(palette, labels)
    return image[:, :, 0] if palette.shape[1] == 1 else image


@dataclass(eq=False)
class Compressed:
    """A quantized image: a palette and one palette index per pixel.

    Attributes
    ----------
    palette : ndarray, shape (K, C), uint8
    labels : ndarray, shape (H, W), uint8 (K <= 256) or uint16
    mode : {"L", "LA", "RGB", "RGBA"}
    k_requested : int
        The K asked for (``len(palette)`` is smaller when lossless).
    lossless : bool
        The image had at most K distinct colours: ``reconstruct()`` equals it.
    n_colors_in : int or None
        Distinct colours of the input.
    inertia : float or None
        ``ColorQuantizer.inertia_``: summed squared distance of the fitted
        pixels to their uint8 palette entries (squared 8-bit units).
    n_iter : int or None
    seed, sample, space, dither : the settings used.
    mean_error : float or None
        ``ColorQuantizer.mean_error_``: mean distance of the pixels to their
        undithered entries in the working space.
    quality, quality_note : float or None, str or None
        With a quality target: the kmq quality reached (0-100) and which K
        was chosen and why.
    seconds : float or None
        Time to fit and map, in seconds.
    source : SourceImage or None
        The input (with its pixels), when this came from :func:`compress`;
        None after :func:`load`.
    icc_profile : bytes or None
        The input's ICC colour profile, embedded in the PNG, WebP, JPEG and
        TIFF exports (``strip=True`` in :meth:`save` / :meth:`to_bytes`
        leaves it out). ``.kmq`` files do not store it yet: the container's
        next version has an optional field for it, and ``to_bytes("kmq")``
        is where it will be passed on.
    """

    palette: np.ndarray
    labels: np.ndarray
    mode: str
    k_requested: int | None = None
    lossless: bool = False
    n_colors_in: int | None = None
    inertia: float | None = None
    n_iter: int | None = None
    seed: object = None
    sample: float | None = None
    seconds: float | None = None
    source: SourceImage | None = field(default=None, repr=False)
    space: str | None = None
    dither: float | None = None
    mean_error: float | None = None
    quality: float | None = None
    quality_note: str | None = None
    icc_profile: bytes | None = field(default=None, repr=False)

    @property
    def k(self) -> int:
        """Palette entries actually used."""
        return len(self.palette)

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W)."""
        return self.labels.shape

    def reconstruct(self) -> np.ndarray:
        """``palette[labels]``: (H, W) uint8 for L, else (H, W, C) uint8."""
        return _rebuild(self.palette, self.labels)

    def to_pil(self) -> Image.Image:
        """The image as a Pillow image.

        K <= 256: a ``P``-mode (palette) image holding ``labels`` and the
        palette, as an indexed PNG stores it; for LA and RGBA the palette's
        alpha is in ``info["transparency"]`` (one byte per entry), so
        ``.convert("RGBA")`` gives ``reconstruct()`` back. K > 256: the
        rebuilt image in ``self.mode``.
        """
        if self.k <= 256:
            from ._io import _palette_image

            return _palette_image(self.palette, self.labels, self.mode)
        rebuilt = self.reconstruct()
        return Image.fromarray(rebuilt, self.mode)

    def to_bytes(
        self, format: str = "kmq", *, alpha_threshold: int | None = None, strip: bool = False,
        effort: int = DEFAULT_PNG_EFFORT,
    ) -> bytes:
        """Encode as ``.kmq`` or an export format ("png", "gif", "webp",
        "jpeg", "bmp", "tiff"). ``alpha_threshold``: see
        :func:`kmq._io.encode_export` (GIF's on/off transparency);
        ``strip``: leave the ICC profile out. ``effort`` (0..3, default 1)
        sets how hard PNG is compressed; 3 runs oxipng (the ``png``
        extra); other formats ignore it."""
        fmt = format_for_path("x", override=format)
        effort = check_effort(effort)
        icc = None if strip else self.icc_profile
        if fmt == "kmq":
            return _container.encode(self.palette, self.labels, mode=self.mode, icc_profile=icc or None)
        return encode_export(self.palette, self.labels, self.mode, fmt, alpha_threshold=alpha_threshold, icc_profile=icc, effort=effort)

    def save(
        self, path, *, format: str | None = None, force: bool = True, alpha_threshold: int | None = None, strip: bool = False,
        effort: int = DEFAULT_PNG_EFFORT,
    ) -> int:
        """Write to ``path``, a file name or a binary file object.

        The format follows the name's extension (a file object's ``name``,
        if it has one), or ``format``; a file object without either gets
        ``.kmq``. A file name is written atomically (temporary file, then
        rename); the input image is never overwritten, and with
        ``force=False`` no existing file is. ``metrics()`` then reports the
        bytes written as the output size. ``effort`` as for :meth:`to_bytes`.

        Returns
        -------
        int
            Bytes written.
        """
        if hasattr(path, "write"):
            name = getattr(path, "name", None)
            if format is None and isinstance(name, str) and os.path.splitext(name)[1]:
                fmt = format_for_path(name)
            else:
                fmt = format_for_path("x", override=format or "kmq")
            data = self.to_bytes(fmt, alpha_threshold=alpha_threshold, strip=strip, effort=effort)
            try:
                path.write(data)
            except TypeError:
                raise UsageError("save() needs a binary file object (opened with 'wb'), got a text one") from None
            self._saved_bytes = len(data)
            return len(data)
        fmt = format_for_path(path, override=format)
        data = self.to_bytes(fmt, alpha_threshold=alpha_threshold, strip=strip, effort=effort)
        inputs = (self.source.path,) if self.source is not None else ()
        write_atomic(path, data, force=force, inputs=inputs)
        self._saved_bytes = len(data)
        return len(data)

    def metrics(self, *, with_ssim: bool = True, output_bytes: int | None = None):
        """Quality and size figures against the original (see kmq.metrics).

        ``output_bytes`` defaults to the size of the last :meth:`save`."""
        from .metrics import measure

        if output_bytes is None:
            output_bytes = getattr(self, "_saved_bytes", None)
        if self.source is None:
            raise UsageError("no original image to measure against (this Compressed was loaded from a file)")
        return measure(self.source.pixels, self, input_bytes=self.source.input_bytes, output_bytes=output_bytes, with_ssim=with_ssim)

    def __eq__(self, other):
        if not isinstance(other, Compressed):
            return NotImplemented
        return (
            self.mode == other.mode
            and np.array_equal(self.palette, other.palette)
            and self.labels.shape == other.labels.shape
            and np.array_equal(self.labels, other.labels)
        )

    def _repr_png_(self) -> bytes:
        """Jupyter: the rebuilt image as PNG (at most 1024 pixels a side)."""
        from ._display import compressed_png

        return compressed_png(self)

    def _repr_html_(self) -> str:
        """Jupyter: the rebuilt image with K, compression ratio and PSNR."""
        from ._display import compressed_html

        return compressed_html(self)

    def __repr__(self):
        h, w = self.shape
        return f"<kmq.Compressed {w}x{h} {self.mode} K={self.k}{' lossless' if self.lossless else ''}>"


def compress(
    image,
    k: int = DEFAULT_K,
    *,
    seed=None,
    sample: float | None = None,
    n_init: int = DEFAULT_N_INIT,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    init="k-means++",
    space: str = DEFAULT_SPACE,
    dither: float = DEFAULT_DITHER,
    quality=None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress=None,
) -> Compressed:
    """Quantize an image to K colours by k-means.

    Parameters
    ----------
    image : str, os.PathLike, bytes, PIL.Image.Image or ndarray
        A path, an ``http(s)://`` URL, ``"-"`` (stdin), encoded image bytes,
        a Pillow image, or pixels of shape (H, W) or (H, W, C), C in 1..4,
        uint8.
    k : int
        Palette size, 1..65536 (exports to PNG/GIF need K <= 256).
    seed : None, int or numpy.random.Generator
        Same seed, same result, bit for bit. None uses ``DEFAULT_SEED``, a
        constant: the same input and options give the same bytes every run.
    sample : float in (0, 1], optional
        Fit the palette on this random fraction of the pixels, then map all
        pixels.
    n_init, max_iter, tol, init
        k-means settings (see :class:`kmq.KMeans`).
    space : {"oklab", "lab", "rgb"}
        Working colour space of k-means and of the mapping (for "oklab"
        with more than 16 colours, or more than 8 when an image without
        alpha is dithered, chroma counts 1.25 times).
    dither : float in [0, 1]
        Floyd-Steinberg error diffusion level (0 = none).
    quality : (min, max), optional
        pngquant's ``--quality``: the fewest colours (at most ``k``) whose
        kmq quality (0-100, kmq._quality) reaches ``max``; QualityError
        (exit code 99) if even ``k`` colours fall short of ``min``.
    max_pixels : int or None
        Refuse larger images (LimitError); None disables the check.
    progress : callable, optional
        Called as ``progress(stage)`` with a short description of each
        stage as it begins ("histogram", "k-means K=16 (52,412 distinct colours)",
        "quality search: K=37 (measurement 4)", "mapping",
        "dithering"), e.g. to show a status line; nothing is shown by
        default. The ``kmq`` command uses it for its progress line.

    Returns
    -------
    Compressed

    Raises
    ------
    UsageError
        K, sample or another setting is out of range.
    InputError, DecodeError, LimitError
        The image cannot be read, is not an image, or is too large.

    Examples
    --------
    >>> import numpy as np, kmq
    >>> image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    >>> c = kmq.compress(image, 8, seed=0)
    >>> c.palette.shape, c.labels.shape, c.labels.dtype.name
    ((8, 3), (32, 32), 'uint8')
    >>> bool((kmq.decompress(c.to_bytes()) == c.reconstruct()).all())
    True
    """
    source = image if isinstance(image, SourceImage) else read_image(image, max_pixels=max_pixels)
    options = dict(seed=seed, sample=sample, n_init=n_init, max_iter=max_iter, tol=tol, init=init, space=space, dither=dither, quality=quality)
    return _compress(source, k, options, progress=progress)


def _compress(source: SourceImage, k, options: dict, analysis: ImageAnalysis | None = None, progress=None) -> Compressed:
    """:func:`compress` of a read image: ``options`` are compress()'s
    keyword arguments but ``max_pixels`` and ``progress`` (all of them:
    seed, sample, n_init, max_iter, tol, init, space, dither, quality).

    ``analysis``: an ImageAnalysis of ``source.pixels`` kept by the caller
    (the same result, less work when it is reused). ``progress`` as for
    compress(); an exception it raises stops the work at that stage (kmq
    serve stops a compression whose client has gone this way).
    """
    seed, sample, dither = options["seed"], options["sample"], options["dither"]
    quantizer = ColorQuantizer(k, **options)
    start = time.perf_counter()
    analysis = ImageAnalysis(source.pixels, one_shot=True) if analysis is None else analysis
    # fit_transform, with progress; the keys are not held here, so that a
    # one-shot analysis can let them go before dithering.
    quantizer._fit_pixels(source.pixels, progress, analysis)
    labels = quantizer._map_keys(None, source.pixels.shape[:2], progress, analysis=analysis)
    # The one place the palette order is chosen, for every output format.
    palette, labels = reorder(quantizer.palette_, labels)
    seconds = time.perf_counter() - start
    return Compressed(
        palette=palette,
        labels=labels,
        mode=quantizer.mode_,
        k_requested=int(k),
        lossless=quantizer.lossless_,
        n_colors_in=quantizer.n_colors_in_ if sample is None else None,
        inertia=quantizer.inertia_,
        n_iter=quantizer.n_iter_,
        seed=DEFAULT_SEED if seed is None else seed,
        sample=sample,
        seconds=seconds,
        source=source,
        space=quantizer.space,
        dither=_check_dither(dither),
        mean_error=quantizer.mean_error_,
        quality=quantizer.quality_,
        quality_note=quantizer.quality_note_,
        icc_profile=source.icc_profile,
    )


def _read_kmq_bytes(source, max_input_bytes: int | None = DEFAULT_MAX_INPUT_BYTES, timeout: float | None = None) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        data, _, _ = read_source_bytes(
            source if isinstance(source, str) else os.fspath(source), max_bytes=max_input_bytes, timeout=timeout
        )
        return data
    raise UsageError(f"give a path, URL or the bytes of a .kmq file, got {type(source).__name__}")


def load(
    source,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_input_bytes: int | None = DEFAULT_MAX_INPUT_BYTES,
    timeout: float | None = None,
) -> Compressed:
    """Read a ``.kmq`` file.

    Parameters
    ----------
    source : str, os.PathLike or bytes
        Path, URL, ``"-"`` (stdin) or the file's bytes.
    max_pixels : int or None
        Refuse files that declare more pixels (LimitError).
    max_input_bytes : int or None
        Most bytes read from a URL, stdin, a pipe or a device (InputError).
    timeout : float, optional
        Deadline of a URL's whole download, seconds (default 60).

    Returns
    -------
    Compressed
        ``load(c.save(path) and path) == c`` for any Compressed ``c``.

    Raises
    ------
    InputError, DecodeError, LimitError
    """
    data = _read_kmq_bytes(source, max_input_bytes, timeout)
    container = _container.decode(data, max_pixels=max_pixels)
    return Compressed(
        palette=container.palette, labels=container.labels, mode=container.mode, k_requested=len(container.palette),
        icc_profile=container.icc_profile,
    )


def decompress(source, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Rebuild the image stored in a ``.kmq`` file.

    Parameters
    ----------
    source : str, os.PathLike or bytes

    Returns
    -------
    ndarray, shape (H, W) for grayscale, else (H, W, C), uint8
        Exactly ``palette[labels]``.
    """
    return load(source, max_pixels=max_pixels).reconstruct()

