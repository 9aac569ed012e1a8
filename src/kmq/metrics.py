"""What a quantization cost and what it saved.

Quality: mean squared error per channel, the k-means distortion J, PSNR,
SSIM (kmq's own compiled implementation, equal to scikit-image's default
``structural_similarity`` to 1e-9; see ``_metrics.pyx``) and the perceptual
error (:func:`perceptual_error`: mean Oklab ΔE x 100 after the eye's blur,
which, unlike the others, credits dithering; :func:`perceptual_score` puts
it on a 0-100 scale). Size: the tutorials' bit-count
compression ratio and the actual bytes of the input file, the raw pixels
and the output file.

All image arguments are uint8 arrays of the same shape, (H, W) or
(H, W, C); squared errors are in squared 8-bit units (0..65025), the
perceptual error in Oklab ΔE x 100 (0..~100).

Images with alpha (LA, RGBA) are measured on what is seen, never on the
colour hidden under transparent pixels: :func:`seen` composites an image on
black and on white (side by side), and :func:`measure` computes the colour
MSE, PSNR and SSIM on those composites (alpha's own MSE is kept as its
channel's figure); the perceptual error is the mean of its values on the
two composites. :func:`alpha_kept` says how much of the alpha stayed exact:
the share of opaque pixels still opaque and of fully transparent ones still
transparent.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

from . import _metrics
from ._engine._parallel import run_chunked
from ._errors import UsageError
from ._quality import score_from_error as _score_from_error

__all__ = [
    "mse_per_channel",
    "mse",
    "distortion",
    "psnr",
    "ssim",
    "composite",
    "seen",
    "psnr_seen",
    "ssim_seen",
    "perceptual_error",
    "perceptual_score",
    "alpha_kept",
    "index_bits",
    "compression_ratio",
    "Metrics",
    "measure",
]


def _pair(original, reconstructed) -> tuple[np.ndarray, np.ndarray]:
    """Both images as (H, W, C) arrays on the 8-bit scale (0..255).

    Integer images must hold 0..255. Floating-point images whose values all
    lie in [0, 1] (what ``matplotlib.pyplot.imread`` and
    ``skimage.img_as_float`` give) are scaled by 255, so a float image in
    [0, 1] measured against its uint8 version gives the true error, not a
    PSNR 50 dB too high; other float images must hold 0..255. NaN, inf,
    complex and non-numeric data are refused (UsageError, a ValueError).
    """
    original = _on_8_bit_scale(np.asarray(original), "original")
    reconstructed = _on_8_bit_scale(np.asarray(reconstructed), "reconstructed")
    if original.shape != reconstructed.shape:
        raise UsageError(f"images differ in shape: {original.shape} vs {reconstructed.shape}")
    if original.dtype != reconstructed.dtype:
        original, reconstructed = original.astype(np.float64), reconstructed.astype(np.float64)
    if original.ndim == 2:
        original, reconstructed = original[:, :, None], reconstructed[:, :, None]
    if original.ndim != 3:
        raise UsageError(f"expected images of shape (H, W) or (H, W, C), got {original.shape}")
    return original, reconstructed


def _on_8_bit_scale(image: np.ndarray, which: str) -> np.ndarray:
    kind = image.dtype.kind
    if kind == "b":
        return image.astype(np.uint8) * 255
    if kind in "iu":
        if image.size and (image.min() < 0 or image.max() > 255):
            raise UsageError(
                f"the {which} image holds {image.min()}..{image.max()}; kmq's metrics take 8-bit images (0..255)"
            )
        return image
    if kind != "f":
        raise UsageError(f"the {which} image must hold numbers, got dtype {image.dtype}")
    if not np.isfinite(image).all():
        raise UsageError(f"the {which} image holds NaN or infinity")
    if not image.size:
        return image
    low, high = float(image.min()), float(image.max())
    if 0.0 <= low and high <= 1.0:
        return image.astype(np.float64) * 255.0
    if low < 0.0 or high > 255.0:
        raise UsageError(
            f"the {which} image holds {low:g}..{high:g}; give floats in [0, 1] or values in 0..255"
        )
    return image


def mse_per_channel(original, reconstructed) -> np.ndarray:
    """Mean squared error of each channel.

    Returns
    -------
    ndarray, shape (C,), float64
    """
    original, reconstructed = _pair(original, reconstructed)
    if original.dtype == np.uint8 and reconstructed.dtype == np.uint8:
        # Exact integer sums in one pass, no float copies of the images.
        return _squared_error_sums(original, reconstructed) / float(original.shape[0] * original.shape[1])
    diff = original.astype(np.float64) - reconstructed.astype(np.float64)
    return np.mean(diff * diff, axis=(0, 1))


def _squared_error_sums(original: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    """Per-channel sums of squared differences of two uint8 images of one
    shape (H, W[, C]), exact: (C,) int64, in one compiled pass."""
    if original.ndim == 2:
        original, reconstructed = original[:, :, None], reconstructed[:, :, None]
    sums = np.zeros(original.shape[2], dtype=np.int64)
    _metrics.squared_error_sums(np.ascontiguousarray(original), np.ascontiguousarray(reconstructed), sums)
    return sums


def mse(original, reconstructed) -> float:
    """Mean squared error over all samples (the mean of the per-channel MSEs)."""
    return float(np.mean(mse_per_channel(original, reconstructed)))


def distortion(original, reconstructed) -> float:
    """The k-means distortion J: mean squared Euclidean colour distance per
    pixel, i.e. the k-means inertia divided by the pixel count. Equals
    C times :func:`mse`."""
    return float(np.sum(mse_per_channel(original, reconstructed)))


def psnr(original, reconstructed) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit data (peak 255):
    ``10 log10(255^2 / MSE)`` over all samples; ``inf`` for identical
    images."""
    return _psnr_of(mse(original, reconstructed))


def _psnr_of(error: float) -> float:
    """PSNR in dB of a mean squared error in 8-bit units."""
    if error == 0:
        return math.inf
    return float(10.0 * math.log10(255.0**2 / error))


def ssim(original, reconstructed) -> float | None:
    """Structural similarity (Wang et al. 2004), channels averaged.

    A uniform 7x7 window, sample covariances, K1 = 0.01, K2 = 0.03 and data
    range 255, the mean taken over the windows wholly inside the image:
    scikit-image's ``structural_similarity(..., data_range=255,
    channel_axis=2)`` to within 1e-9, computed from exact integer window
    sums on all cores. Images smaller than 7 pixels on a side use the
    largest odd window that fits; below 3 pixels SSIM is undefined and None
    is returned (1.0 if the images are identical).

    Parameters
    ----------
    original, reconstructed : ndarray (H, W) or (H, W, C), uint8
    """
    original, reconstructed = _pair(original, reconstructed)
    if np.array_equal(original, reconstructed):
        return 1.0
    height, width, channels = original.shape
    side = min(height, width)
    if side < 3:
        return None
    win = min(7, side if side % 2 else side - 1)
    a = np.ascontiguousarray(original, dtype=np.uint8)
    b = np.ascontiguousarray(reconstructed, dtype=np.uint8)
    n_rows = height - win + 1
    # A thread is worth its start-up from about 32 window rows of 768 pixels.
    _, sums = run_chunked(
        _metrics.ssim_rows, n_rows, (a, b, win), (), accumulators=[(channels,)], min_per_thread=max(1, 24576 // (width * channels))
    )
    return float(np.mean(sums[0] / (n_rows * (width - win + 1))))


def composite(image, background: int) -> np.ndarray:
    """An LA or RGBA image over a uniform background.

    Parameters
    ----------
    image : ndarray, shape (H, W, 2) or (H, W, 4), uint8
    background : int, 0..255
        Gray level of the background.

    Returns
    -------
    ndarray, shape (H, W, C - 1), uint8
        ``round(colour * a + background * (1 - a))``, a = alpha / 255.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (2, 4):
        raise ValueError(f"expected an LA or RGBA image of shape (H, W, 2|4), got {image.shape}")
    if image.dtype == np.uint8:
        out = np.empty((*image.shape[:2], image.shape[2] - 1), dtype=np.uint8)
        _composite_into(image, background, out, 0)
        return out
    alpha = image[:, :, -1:].astype(np.float64) / 255.0
    seen_ = image[:, :, :-1].astype(np.float64) * alpha + float(background) * (1.0 - alpha)
    return np.rint(seen_).astype(np.uint8)


@functools.lru_cache(maxsize=16)
def _composite_table(background: int) -> np.ndarray:
    """(256, 256) uint8, read-only: row alpha, column colour level -> the
    composite, computed with :func:`composite`'s own float64 expression, so
    that the table's values are the same bits as computing each pixel.
    Cached: making it (0.4 ms) cost more than compositing a 64 x 64 icon,
    and a report composites on two backgrounds four times."""
    alpha = np.arange(256, dtype=np.float64)[:, None] / 255.0
    level = np.arange(256, dtype=np.float64)[None, :]
    table = np.rint(level * alpha + float(background) * (1.0 - alpha)).astype(np.uint8)
    table.setflags(write=False)
    return table


def _composite_into(image: np.ndarray, background, out: np.ndarray, column: int) -> None:
    """:func:`composite` of a uint8 image (H, W, 2|4) into ``out[:, column:
    column + W]``: one table read a channel, on all cores (the float64
    arrays took 0.1 s an image at 2.5 MP)."""
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    run_chunked(
        _metrics.composite_rows, height, (image, _composite_table(background), column), (out,),
        min_per_thread=max(1, (1 << 17) // max(width, 1)),
    )


def seen(image) -> np.ndarray:
    """What an image with alpha looks like: its composites on black and on
    white, side by side, (H, W, 2|4) -> (H, 2W, 1|3) uint8. An image without
    alpha is returned as it is."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (2, 4):
        return image
    if image.dtype != np.uint8:
        return np.concatenate([composite(image, 0), composite(image, 255)], axis=1)
    height, width, channels = image.shape
    out = np.empty((height, 2 * width, channels - 1), dtype=np.uint8)
    _composite_into(image, 0, out, 0)
    _composite_into(image, 255, out, width)
    return out


def psnr_seen(original, reconstructed) -> float:
    """:func:`psnr` of what is seen (:func:`seen`): for images with alpha,
    hidden colour under transparent pixels does not count."""
    original, reconstructed = _pair(original, reconstructed)
    return psnr(seen(original), seen(reconstructed))


def ssim_seen(original, reconstructed) -> float | None:
    """:func:`ssim` of what is seen (:func:`seen`)."""
    original, reconstructed = _pair(original, reconstructed)
    return ssim(seen(original), seen(reconstructed))


def _mse_seen(original, reconstructed) -> np.ndarray:
    """Per-channel MSE, colour channels on what is seen (mean over the black
    and white composites), alpha as it is. (C,) float64."""
    colour = mse_per_channel(seen(original), seen(reconstructed))
    alpha = mse_per_channel(original[:, :, -1:], reconstructed[:, :, -1:])
    return np.concatenate([colour, alpha])


# -- perceptual error ----------------------------------------------------------------

#: Standard deviations, in pixels, of the Gaussians that stand for the eye's
#: blur in :func:`perceptual_error`: on lightness, and on the two chroma
#: coordinates (S-CIELAB's filters at 40 pixels per degree; see there).
PERCEPTUAL_SIGMA_LIGHTNESS = 0.85
PERCEPTUAL_SIGMA_CHROMA = 2.87
#: The Gaussians are cut off at this many standard deviations (as
#: scipy.ndimage.gaussian_filter's default).
_GAUSSIAN_TRUNCATE = 4.0


def _gaussian_weights(sigma: float) -> np.ndarray:
    """The sampled, normalised Gaussian of standard deviation ``sigma``
    pixels, cut at 4 sigma: (2r + 1,) float64 with r = round(4 sigma),
    summing to 1 (scipy.ndimage.gaussian_filter1d's kernel). ``sigma`` 0
    gives [1.0], no blur."""
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma < 0:
        raise UsageError(f"a blur's standard deviation must be a number >= 0 (pixels), got {sigma!r}")
    radius = int(_GAUSSIAN_TRUNCATE * sigma + 0.5)
    if radius == 0:
        return np.ones(1)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (x / sigma) ** 2)
    return weights / weights.sum()


def perceptual_error(original, reconstructed) -> float:
    """Mean Oklab difference after the eye's blur: lower is better, 0 for
    identical images.

    Both images are converted to Oklab (kmq's working units: L, a, b times
    100, so 1 is about 1 % of the black-to-white lightness range), their
    difference is low-pass filtered as the eye integrates neighbouring
    pixels -- a Gaussian of ``PERCEPTUAL_SIGMA_LIGHTNESS`` pixels on
    lightness, a wider one of ``PERCEPTUAL_SIGMA_CHROMA`` pixels on the two
    chroma coordinates, the eye resolving colour more coarsely than light
    -- and the length of the filtered difference is averaged over the
    pixels. This is S-CIELAB (Zhang and Wandell 1996) done in Oklab with
    one Gaussian a channel: a dithered pattern whose local average is the
    original colour costs little, as it does to the eye, whereas per-pixel
    ΔE counts each dot's full error. Where the two images differ by a
    uniform colour, the blur changes nothing and the result is that
    colour difference, ΔEok x 100.

    The widths come from S-CIELAB's filters (Zhang and Wandell 1996, after
    Poirson and Wandell 1993: sums of two or three Gaussians a channel),
    each replaced by the Gaussian whose transfer falls to one half at the
    same spatial frequency: standard deviations of 0.021 degrees of visual
    angle on luminance, 0.053 on red-green and 0.091 on blue-yellow, whose
    mean, 0.072, serves both chroma coordinates. At 40 image pixels per
    degree (a 96-dpi screen seen from 60 cm) that is 0.85 pixels on
    lightness and 2.87 on chroma. Of 20, 40 and 80 pixels per degree, 40
    and 80 agreed best with SSIMULACRA2 on whether kmq's dithering helps
    (the 24 Kodak photographs at K = 16, 64, 256: 71 of 72 pairs with the
    default dithering, 51 of 72 with full-strength dithering, which the
    blur credits even where SSIMULACRA2 finds its noise worse), and 40
    ranks the results more like it (docs/benchmarks.md, "Perceptual
    quality"; benchmarks/perceptual_metric.py derives the widths).

    Images with alpha are measured on what is seen: the mean of the errors
    of their composites on black and on white (:func:`composite`), so
    colour hidden under transparent pixels does not count.

    Parameters
    ----------
    original, reconstructed : ndarray (H, W) or (H, W, C), C = 1..4
        L, LA, RGB or RGBA, uint8 (or floats, see the module docstring;
        rounded to 8-bit levels first).

    Returns
    -------
    float
        Mean ΔEok x 100 of the blurred difference, >= 0.

    Raises
    ------
    UsageError
        Images of different shapes, more than 4 channels, or no pixels.
    """
    return _perceptual_error(original, reconstructed, PERCEPTUAL_SIGMA_LIGHTNESS, PERCEPTUAL_SIGMA_CHROMA)


def perceptual_score(original, reconstructed) -> float:
    """:func:`perceptual_error` on kmq's 0-100 quality scale (higher is
    better; 100 for identical images): ``100 exp(-(E / 1.81) ^ 2.2)``, the
    form of ``kmq compress --quality``'s scale (kmq._quality), applied to
    the mean error after the eye's blur instead of the power mean of the
    undithered per-pixel one."""
    return _score_from_error(perceptual_error(original, reconstructed))


def _perceptual_error(original, reconstructed, sigma_lightness: float, sigma_chroma: float) -> float:
    """:func:`perceptual_error` with the blur widths given (pixels; 0 for
    none): the benchmarks compare settings through this."""
    original, reconstructed = _pair(original, reconstructed)
    height, width, channels = original.shape
    if channels > 4:
        raise UsageError(
            f"the perceptual error takes L, LA, RGB or RGBA images (1 to 4 channels), got {channels} channels"
        )
    if height == 0 or width == 0:
        raise UsageError(f"the perceptual error of an image without pixels is undefined, got shape {original.shape}")
    original, reconstructed = _as_levels(original), _as_levels(reconstructed)
    weights = (_gaussian_weights(sigma_lightness), _gaussian_weights(sigma_chroma))
    if channels in (2, 4):
        # What is seen, over black and over white; each composite measured
        # on its own, so that the blur never mixes the two.
        return 0.5 * sum(
            _blurred_difference(composite(original, bg), composite(reconstructed, bg), weights) for bg in (0, 255)
        )
    return _blurred_difference(original, reconstructed, weights)


def _as_levels(image: np.ndarray) -> np.ndarray:
    """(H, W, C) on the 8-bit scale -> uint8, floats rounded to nearest."""
    if image.dtype == np.uint8:
        return image
    return np.rint(image).astype(np.uint8)


def _blurred_difference(original: np.ndarray, reconstructed: np.ndarray, weights) -> float:
    """Mean length of the blurred Oklab difference of two (H, W, 1|3)
    uint8 images (see ``_metrics.perceptual_rows``), on all cores."""
    height, width = original.shape[:2]
    if np.array_equal(original, reconstructed):
        return 0.0
    a = np.ascontiguousarray(original)
    b = np.ascontiguousarray(reconstructed)
    # Each row range also converts and blurs 2r rows beyond its own: a
    # second thread was slower at 128 rows of 768 pixels, faster at 512.
    _, sums = run_chunked(
        _metrics.perceptual_rows, height, (a, b, *weights), (), accumulators=[(1,)],
        min_per_thread=max(1, (1 << 18) // width),
    )
    return float(sums[0][0] / (height * width))


def alpha_kept(original, reconstructed) -> tuple[float | None, float | None]:
    """Of the pixels whose alpha is 255 in ``original``, the fraction whose
    alpha is still 255 in ``reconstructed``; of those whose alpha is 0, the
    fraction still at 0.

    Parameters
    ----------
    original, reconstructed : ndarray, shape (H, W, 2) or (H, W, 4), uint8
        Alpha last.

    Returns
    -------
    (opaque, transparent) : floats in [0, 1], each None when ``original``
        has no pixel at that alpha.
    """
    original, reconstructed = _pair(original, reconstructed)
    if original.ndim != 3 or original.shape[2] not in (2, 4):
        raise UsageError(f"alpha_kept needs images with alpha, (H, W, 2) or (H, W, 4); got shape {original.shape}")
    if original.dtype != np.uint8:
        # Float images on the 8-bit scale (_pair): only exact 0 and 255 count.
        original, reconstructed = (
            np.where(v == 255, 255, np.where(v == 0, 0, 1)).astype(np.uint8) for v in (original, reconstructed)
        )
    a, b = np.ascontiguousarray(original), np.ascontiguousarray(reconstructed)
    # Rows split as for the other metrics (counts, so any split gives the
    # same figures); one pass over both alpha planes.
    _, counts = run_chunked(
        _metrics.alpha_counts, a.shape[0], (a, b), (), accumulators=[(4,)], min_per_thread=max(1, 65536 // max(1, a.shape[1]))
    )
    opaque, opaque_kept, clear, clear_kept = (int(v) for v in counts[0])
    # Ratios of counts: exactly 1.0 when every pixel kept its alpha.
    return (opaque_kept / opaque if opaque else None, clear_kept / clear if clear else None)


def _share_text(fraction: float) -> str:
    """A share (0..1) as a percentage with two decimals that says 100 % only
    when it is exact: 99.996 % of opaque pixels kept is not all of them
    (the report's and ``kmq report``'s alpha figures)."""
    if fraction == 1.0:
        return "100 %"
    return f"{min(math.floor(fraction * 10000) / 100, 99.99):.2f} %"


def index_bits(k: int) -> int:
    """Bits per pixel of a palette index: ceil(log2 K); 0 for K = 1."""
    if k < 1:
        raise ValueError(f"K must be >= 1, got {k}")
    return (int(k) - 1).bit_length()


def compression_ratio(n_pixels: int, k: int, channels: int = 3) -> float:
    """The tutorials' compression ratio, in bits.

    ``(N * ceil(log2 K) + 8C * K) / (8C * N)``: indices plus palette against
    raw pixels. For RGB (C = 3) this is ``(N ceil(log2 K) + 24 K) / 24 N``.
    Its inverse is the "n:1" figure.
    """
    bits_per_sample = 8 * channels
    return (n_pixels * index_bits(k) + bits_per_sample * k) / (bits_per_sample * n_pixels)


@dataclass
class Metrics:
    """Quality and size of one quantized image. Use ``as_dict()`` for JSON.

    Quality figures are of what is seen for images with alpha (module
    docstring); ``ssim`` is None when not computed."""

    width: int
    height: int
    channels: int
    mode: str
    n_pixels: int
    k: int
    index_bits: int
    mse_per_channel: list
    mse: float
    distortion: float
    psnr: float
    ssim: float | None
    #: :func:`perceptual_error` (mean ΔEok x 100 after the eye's blur) and
    #: :func:`perceptual_score` (0-100).
    perceptual_error: float
    perceptual_score: float
    ratio: float
    ratio_to_1: float
    raw_bytes: int
    input_bytes: int | None = None
    output_bytes: int | None = None
    #: :func:`alpha_kept`: the fractions (0-1) of opaque pixels kept at
    #: alpha 255 and of fully transparent ones kept at 0; None without
    #: alpha or without such pixels.
    opaque_kept: float | None = None
    transparent_kept: float | None = None

    @property
    def output_bits_per_pixel(self) -> float | None:
        """Actual bits per pixel of the output file."""
        return None if self.output_bytes is None else 8 * self.output_bytes / self.n_pixels

    def as_dict(self) -> dict:
        data = asdict(self)
        data["output_bits_per_pixel"] = self.output_bits_per_pixel
        # JSON has no infinity: a lossless result has psnr null.
        if math.isinf(data["psnr"]):
            data["psnr"] = None
        return data


def measure(
    original, compressed, *, input_bytes=None, output_bytes=None, with_ssim: bool = True, reconstructed=None
) -> Metrics:
    """Measure a :class:`kmq.Compressed` against the original pixels.

    Parameters
    ----------
    original : ndarray, shape (H, W) or (H, W, C), uint8
    compressed : kmq.Compressed
    input_bytes, output_bytes : int, optional
        Sizes of the input and output files.
    with_ssim : bool
        Compute SSIM; None in the result when False. (The perceptual error
        is always computed.)
    reconstructed : ndarray, optional
        The pixels to measure, of the original's shape, uint8, when they
        are not ``compressed.reconstruct()``: a file in a format that
        changed them, as a reader decodes it (a JPEG, a GIF's on/off
        alpha). K, the ratio and the index bits stay the palette's.

    Returns
    -------
    Metrics
    """
    original = np.asarray(original)
    if reconstructed is None:
        reconstructed = compressed.reconstruct().reshape(original.shape)
    else:
        reconstructed = np.asarray(reconstructed)
        if reconstructed.shape != original.shape or reconstructed.dtype != np.uint8:
            raise UsageError(
                f"reconstructed must be uint8 of the original's shape {original.shape}, "
                f"got {reconstructed.dtype} {reconstructed.shape}"
            )
    height, width = original.shape[:2]
    channels = 1 if original.ndim == 2 else original.shape[2]
    n_pixels = height * width
    has_alpha = channels in (2, 4)
    # The figures of psnr_seen, ssim_seen and _mse_seen (psnr, ssim and
    # mse_per_channel without alpha), each image composited and each error
    # summed once (at 9.8 MP the report's squared errors were summed twice).
    if has_alpha:
        # What is seen: composites on black and white (module docstring).
        seen_original, seen_reconstructed = seen(original), seen(reconstructed)
        colour = mse_per_channel(seen_original, seen_reconstructed)
        per_channel = np.concatenate([colour, mse_per_channel(original[:, :, -1:], reconstructed[:, :, -1:])])
        quality_psnr = _psnr_of(float(np.mean(colour)))
        quality_ssim = ssim(seen_original, seen_reconstructed) if with_ssim else None
    else:
        per_channel = mse_per_channel(original, reconstructed)
        quality_psnr = _psnr_of(float(np.mean(per_channel)))
        quality_ssim = ssim(original, reconstructed) if with_ssim else None
    # What is seen, with or without alpha (perceptual_error composites).
    error = perceptual_error(original, reconstructed)
    opaque_kept, transparent_kept = alpha_kept(original, reconstructed) if has_alpha else (None, None)
    ratio = compression_ratio(n_pixels, compressed.k, channels)
    return Metrics(
        width=width,
        height=height,
        channels=channels,
        mode=compressed.mode,
        n_pixels=n_pixels,
        k=compressed.k,
        index_bits=index_bits(compressed.k),
        mse_per_channel=[float(v) for v in per_channel],
        mse=float(np.mean(per_channel)),
        distortion=float(np.sum(per_channel)),
        psnr=quality_psnr,
        ssim=quality_ssim,
        perceptual_error=error,
        perceptual_score=_score_from_error(error),
        ratio=ratio,
        ratio_to_1=1.0 / ratio,
        raw_bytes=n_pixels * channels,
        input_bytes=input_bytes,
        output_bytes=output_bytes,
        opaque_kept=opaque_kept,
        transparent_kept=transparent_kept,
    )
