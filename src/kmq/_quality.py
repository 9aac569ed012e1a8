"""Quality targets: kmq's 0-100 quality scale and the search for the
fewest colours that reach a target (``compress(quality=(min, max))``,
``kmq compress --quality MIN-MAX``).

The scale
---------
kmq's quality is defined on the Oklab difference ``e`` between each pixel
and its (undithered) palette entry, in ΔEok x 100 (so a difference of 1 is
about 1 % of the black-to-white lightness range, near the threshold of
visibility), through its power mean of order 3, ``E = mean(e^3)^(1/3)``,
as ``quality = 100 exp(-(E / E0) ^ P)`` with E0 = 2.49 and P = 2.17:
lossless is 100, E = 1 is 87, E = 2 is 54, E = 3 is 22.

Why order 3, not the plain mean: on graphics and images with alpha most
pixels (flat areas, transparent ones) are matched exactly, and the plain
mean hardly sees a few badly mapped edges, glyphs or small shapes; with
it ``--quality 65-80`` gave a UI screen 13 colours where pngquant chose
65, at SSIMULACRA2 30 against 73 (docs/benchmarks.md, "--quality 65-80
end to end"). Across 4 Kodak photographs, a modern one and 5 graphics,
the error at which kmq's dithered result reaches SSIMULACRA2 75 spread
8.9x between images by the mean, 2.2x by the RMS and 2.0x by the order-3
mean (its log's standard deviation 0.79, 0.30 and 0.18). The two
constants make the scale agree with pngquant's on photographs (whose
quality comes from a mean squared error in its own colour space, like
JPEG's): fitted to the Q that ``pngquant --nofs --verbose K`` reports for
12 Kodak photographs at K = 16, 32, 64, 128, 256 against kmq's E at the
same K, they give pngquant's Q to within 2.7 points on average (at most
11.7), and to within 4.4 points on 5 modern photographs resized to 768 px
that the fit did not see (the plain mean, refitted: 2.9 and 6.4). As with
pngquant, a 256-colour photograph is typically 75-95 and 16 colours 0-45.

The search
----------
One histogram; on a large one (more than 8192 distinct colours) the fits
and trial measurements run on its 6-bit bins (count-weighted mean points,
a few times fewer), cut on the working space's lightness scale so that a
dark bin is not wider than a light one, corrected by their error ratio to
the exact colours measured once. A first k-means fit at K = 32, then fits at the K that the
errors so far predict (E ~ K^-b, b measured between the last two fits,
overshot by 10 %), until one reaches the target: the fits at small K are
cheap and the last one is near the answer, so the search costs about one
fit at the K it finds, not one at the largest K allowed. Between the last
fit that fell short and the one that reached it, that fit's centres are
merged pairwise, cheapest first (Ward's criterion: the merge that adds
least to the weighted squared error), which gives a palette for every
smaller K in one pass and, from the merges' costs, a predicted error for
each; the measurements follow those predictions (after six, a plain
bisection), assuming quality grows with K. The chosen merged palette then
seeds a short Lloyd run on the exact colours at that K (a warm start: the
larger palette starts the smaller), is measured exactly, and the better of
the two palettes measured is kept; short of the target, a few more
colours. When refining gained on the prediction, the predictions scaled
by that gain name a smaller K to try once the same way. Where the largest
K allowed falls so far short of the minimum that no refinement would
lift it there, the search gives up before refining. Time against one
fit at the chosen K: docs/benchmarks.md, "Quality search time".
"""

from __future__ import annotations

import math

import numpy as np

from ._errors import KmqError

__all__ = ["QualityError", "quality_error", "quality_from_error", "error_from_quality", "score_from_error", "ward_palettes", "EXIT_QUALITY"]

#: pngquant's exit code when the minimum quality cannot be reached.
EXIT_QUALITY = 99
#: The scale's constants (see the module docstring): the order of the
#: power mean of the per-pixel errors, the error E0 (ΔEok x 100) at which
#: quality is 100/e, and the exponent.
QUALITY_ORDER = 3
QUALITY_E0 = 2.49
QUALITY_POWER = 2.17
#: kmq.metrics.perceptual_score's mapping of the mean error after the
#: eye's blur: the quality scale's form with the constants it had on the
#: plain mean (the score was not re-chosen with the quality scale).
SCORE_E0 = 1.81
SCORE_POWER = 2.2


class QualityError(KmqError, ValueError):
    """Even the largest K allowed falls short of the minimum quality; nothing
    is written. Exit code 99 (as pngquant)."""

    exit_code = EXIT_QUALITY


def quality_error(distances: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The scale's error E: the power mean of order QUALITY_ORDER of
    ``distances`` ((N,) float, ΔEok x 100), weighted by ``weights`` ((N,),
    pixel counts; None: all 1)."""
    cubed = np.asarray(distances, dtype=np.float64) ** QUALITY_ORDER
    mean = float(cubed.mean()) if weights is None else float((weights * cubed).sum() / np.sum(weights))
    return mean ** (1.0 / QUALITY_ORDER)


def quality_from_error(error: float) -> float:
    """kmq quality 0..100 from the error E of :func:`quality_error`."""
    if not error > 0:
        return 100.0
    return float(100.0 * math.exp(-((error / QUALITY_E0) ** QUALITY_POWER)))


def error_from_quality(quality: float) -> float:
    """The error E at which :func:`quality_from_error` gives ``quality``
    (0..100): 0 for 100, infinite for 0."""
    if quality >= 100:
        return 0.0
    if quality <= 0:
        return math.inf
    return float(QUALITY_E0 * (-math.log(quality / 100.0)) ** (1.0 / QUALITY_POWER))


def score_from_error(mean_error: float) -> float:
    """kmq.metrics.perceptual_score: 0..100 from the mean error after the
    eye's blur (ΔEok x 100)."""
    if not mean_error > 0:
        return 100.0
    return float(100.0 * math.exp(-((mean_error / SCORE_E0) ** SCORE_POWER)))


def ward_palettes(centers: np.ndarray, weights: np.ndarray, return_costs: bool = False):
    """Merge centres pairwise, cheapest first, down to one.

    Parameters
    ----------
    centers : (K, D) float64; weights : (K,) float64 (pixels of each)
    return_costs : bool
        Also return the costs.

    Returns
    -------
    list of K arrays: entry ``k - 1`` is the (k, D) centres after merging
    down to k (entry K - 1 is ``centers``). Merging i and j costs
    ``w_i w_j / (w_i + w_j) |c_i - c_j|^2``; ties go to the lowest pair.
    With ``return_costs``, also (K,) float64: entry ``k - 1`` is the sum of
    the costs of the merges down to k (0 for K), the weighted squared
    error they add when every point stays with its merged cluster.
    """
    c = np.array(centers, dtype=np.float64)
    w = np.array(weights, dtype=np.float64)
    k = len(c)
    alive = np.ones(k, dtype=bool)

    def costs(i):
        d2 = ((c - c[i]) ** 2).sum(axis=1)
        total = w + w[i]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(total > 0, w * w[i] / np.where(total > 0, total, 1.0), 0.0) * d2
        out[~alive] = np.inf
        out[i] = np.inf
        return out

    cost = np.stack([costs(i) for i in range(k)]) if k > 1 else np.full((1, 1), np.inf)
    out = [None] * k
    out[k - 1] = c.copy()
    added = np.zeros(k)
    for n in range(k - 1, 0, -1):
        flat = int(np.argmin(cost))
        added[n - 1] = added[n] + cost.flat[flat]
        i, j = divmod(flat, k)
        i, j = min(i, j), max(i, j)
        total = w[i] + w[j]
        if total > 0:
            c[i] = (w[i] * c[i] + w[j] * c[j]) / total
        w[i] = total
        alive[j] = False
        cost[j, :] = np.inf
        cost[:, j] = np.inf
        row = costs(i)
        cost[i, :] = row
        cost[:, i] = row
        out[n - 1] = c[alive].copy()
    return (out, added) if return_costs else out
