"""Working colour spaces: where k-means runs and where the nearest palette
entry is searched.

The histogram stays exact (distinct sRGB colours and their counts); only
the points fed to k-means change. Each distinct colour becomes a float64
point in the working space, k-means runs on those points weighted by the
counts, the centres go back to sRGB uint8 (rounded, clipped: the stored
palette), and pixels are mapped to the entry nearest in the same space, the
palette being converted back from its uint8 values so that the search is in
the space of what is stored.

Spaces, all with units of comparable size (one unit is a just-noticeable
difference or less):

* ``"oklab"``: Oklab (Ottosson 2020, his published matrices), L, a, b
  times 100, so L runs 0..100 and a distance of 1 is ~1 % of the lightness
  range.
* ``"oklab-chroma"``: the same with a and b multiplied by
  ``CHROMA_WEIGHT`` (1.25) once more, so that a difference of chroma or hue
  costs 1.25 times a difference of lightness of the same ΔEok. Not a
  choice of the user's: the engine works in it for ``"oklab"`` palettes
  of more than 16 colours, or more than 8 for an opaque image dithered
  (kmq._quantize.working_space says why).
* ``"lab"``: CIELAB, D65 white (sRGB's), L 0..100; distances are CIE76 ΔE.
* ``"rgb"``: the sRGB values themselves, 0..255.

With alpha, a colour is placed where it is seen. A pixel of colour c and
alpha a shows a c + (1 - a) B over a background B (in sRGB values, as
browsers and image viewers blend), and users put images on dark pages and
light ones: what matters is the error over black and over white. Those two
composites are affine in (c, a), so their mean and their half-difference
carry the same information: the colour coordinates are those of the pixel
composited over the mid-grey 127.5 (the mean of the two composites), and
alpha is one more coordinate, alpha/255 times :func:`alpha_scale`, half
the distance between black and white in the space (the composites over
black and over white of a fully transparent pixel are that far from their
mean).
In a space where blending is linear (``"rgb"``) the squared distance is then
exactly the mean of the squared errors over black and over white; in Oklab
and CIELAB it is that mean to first order about the grey. Hidden colour
under transparent pixels costs nothing (at alpha 0 every colour is the
grey), and the colour of a nearly transparent pixel counts as much as it
shows, on either background. (The earlier model, colour premultiplied by
alpha, measured the composite over black only and weighed alpha twice: on
soft masks and alpha gradients it spent entries on alpha levels and left
the translucent colours coarse; docs/benchmarks.md, "Perceptual quality".)
"""

from __future__ import annotations

import numpy as np

# The weight of a and b in "oklab-chroma": the kernels' own constant.
from ._colorspace import CHROMA_WEIGHT

__all__ = [
    "SPACES", "WORKING_SPACES", "CHROMA_WEIGHT", "to_space", "from_space", "level_scale", "nearest_in_space",
    "PaletteSearch",
]

#: The spaces a user names (``space=``, ``--space``), by kernel id.
SPACES = {"oklab": 1, "lab": 2, "rgb": 0}
#: Those and the engine's own.
WORKING_SPACES = {**SPACES, "oklab-chroma": 3}
#: The alpha scale: half the distance from black to white. L runs
#: 0..100 in Oklab x 100 and CIELAB (a, b stay 0 on the grey axis); in sRGB
#: values each channel runs 0..255, so alpha_scale gives sqrt(3) x 127.5 for
#: RGBA and 127.5 for LA.
ALPHA_SCALE = {"rgb": 127.5, "oklab": 50.0, "oklab-chroma": 50.0, "lab": 50.0}


def alpha_scale(space: str, channels: int) -> float:
    """The alpha coordinate's scale for colours of ``channels`` (2 or 4;
    any other count has no alpha) in ``space``."""
    if space == "rgb":
        return ALPHA_SCALE["rgb"] * (3.0 ** 0.5 if channels == 4 else 1.0)
    return ALPHA_SCALE[space]


#: Palettes larger than this are searched by brute force: the K x K
#: neighbour tables would cost more than they save.
_MAX_SORTED_K = 1024


def _space_id(space: str) -> int:
    try:
        return WORKING_SPACES[space]
    except KeyError:
        raise ValueError(f"unknown colour space {space!r}: expected one of {', '.join(SPACES)}") from None


def to_space(colors: np.ndarray, space: str) -> np.ndarray:
    """sRGB colours (M, C) uint8, C in 1..4 -> working-space points (M, C)
    float64 (see the module docstring)."""
    from . import _colorspace
    from ._parallel import run_chunked

    colors = np.ascontiguousarray(colors, dtype=np.uint8)
    out = np.empty(colors.shape, dtype=np.float64)
    # A million colours take ~0.1 s (three cube roots each): on all cores.
    run_chunked(_colorspace.to_space, len(colors), (colors, _space_id(space), alpha_scale(space, colors.shape[1])), (out,))
    return out


def level_scale(space: str) -> np.ndarray | None:
    """Each sRGB level on the space's lightness scale: (256,) uint8, level v
    -> 2.55 x the lightness (0..100) of the grey (v, v, v), rounded; None
    for ``"rgb"``, whose scale is the levels themselves.

    Coarse histograms bin colours by their channels on this scale
    (:func:`kmq._engine.kmeans.fit_colors`), so that a bin is about as wide
    in the working space near black as elsewhere. On sRGB levels a 5-bit
    bin holds levels 0-7 of a channel, which span 12.9 units of Oklab
    lightness, and levels 248-255 span 2.1: dark photographs had most of
    their pixels in a handful of bins, each of which could hold one centre
    only."""
    if space == "rgb":
        return None
    lightness = to_space(np.arange(256, dtype=np.uint8)[:, None], space)[:, 0]
    return np.clip(np.rint(2.55 * lightness), 0, 255).astype(np.uint8)


def from_space(points: np.ndarray, space: str) -> np.ndarray:
    """Inverse of :func:`to_space`: (M, C) float64 -> (M, C) uint8, rounded
    to nearest, clipped to 0..255."""
    from . import _colorspace

    points = np.ascontiguousarray(points, dtype=np.float64)
    out = np.empty(points.shape, dtype=np.uint8)
    _colorspace.from_space(points, _space_id(space), alpha_scale(space, points.shape[1]), out)
    return out


class PaletteSearch:
    """A palette in the working space, ready for nearest-entry searches.

    Attributes
    ----------
    points : (K, D) float64
    dist : (K, K) float64 — Euclidean distances between entries
    order : (K, K) int32 — each row: entries by increasing distance
        (shape (0, 0) above ``_MAX_SORTED_K`` entries: brute force)
    """

    def __init__(self, palette: np.ndarray, space: str):
        self.points = to_space(palette, space)
        k = len(self.points)
        if k <= _MAX_SORTED_K:
            diff = self.points[:, None, :] - self.points[None, :, :]
            self.dist = np.ascontiguousarray(np.sqrt((diff * diff).sum(axis=2)))
            self.order = np.ascontiguousarray(np.argsort(self.dist, axis=1, kind="stable"), dtype=np.int32)
        else:
            self.dist = np.zeros((0, 0))
            self.order = np.zeros((0, 0), dtype=np.int32)

    def nearest(self, points: np.ndarray, *, guess=None, allowed=None):
        """(labels (M,) int32, dist2 (M,) float64) of the nearest allowed
        entry of each point; ties to the lowest index. ``guess`` (M,) speeds
        the search up only; ``allowed`` (K,) bool, default all."""
        from . import _colorspace
        from ._parallel import run_chunked

        points = np.ascontiguousarray(points, dtype=np.float64)
        n, k = len(points), len(self.points)
        if guess is None:
            guess = np.zeros(n, dtype=np.int32)
        guess = np.ascontiguousarray(guess, dtype=np.int32)
        allowed = np.ones(k, dtype=np.uint8) if allowed is None else np.ascontiguousarray(allowed, dtype=np.uint8)
        labels = np.empty(n, dtype=np.int32)
        dist2 = np.empty(n)
        run_chunked(
            _colorspace.nearest,
            n,
            (points, self.points, guess, self.dist, self.order, allowed),
            (labels, dist2),
        )
        return labels, dist2


def nearest_in_space(points: np.ndarray, palette: np.ndarray, space: str, *, guess=None):
    """Nearest entry of ``palette`` (K, C) uint8 for each working-space
    point (M, C): (labels (M,) int32, dist2 (M,) float64)."""
    return PaletteSearch(palette, space).nearest(points, guess=guess)
