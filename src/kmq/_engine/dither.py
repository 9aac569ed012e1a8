"""Error diffusion: Floyd-Steinberg, serpentine, in the working colour space
(the compiled loop is ``_dither.floyd_steinberg``)."""

from __future__ import annotations

import numpy as np

from .colorspace import PaletteSearch

__all__ = ["dither_labels", "MODE_ANY", "MODE_OPAQUE", "MODE_FIXED"]

MODE_ANY, MODE_OPAQUE, MODE_FIXED = 0, 1, 2


def dither_labels(color_index, points, start, mode, search: PaletteSearch, opaque_entry, level: float, edge: float = 0.0,
                  cell: float = 0.5, settle: float = 0.0):
    """Dithered palette index of every pixel.

    Parameters
    ----------
    color_index : (H, W) int32 — row of ``points`` of each pixel's colour
    points : (M, D) float64 — the distinct colours in the working space
    start : (M,) int — undithered entry of each colour (the search's start)
    mode : (M,) uint8 — MODE_ANY, MODE_OPAQUE (opaque entries only) or
        MODE_FIXED (keep ``start``, pass no error on)
    search : PaletteSearch — the palette in the same space
    opaque_entry : (K,) bool
    level : float in [0, 1] — fraction of the error passed on
    edge : float — 0 for plain Floyd-Steinberg; else a colour difference
        (working units) to the neighbours above which the error passed to a
        pixel is scaled down
    cell : float > 0 — edge of the grid cells whose nearest entries the
        kernel caches (working units; see ``_dither.pyx``)
    settle : float >= 0 — a pixel that receives an error at most this long
        (working units) keeps its ``start`` entry (see ``_dither.pyx``);
        0: never

    Returns
    -------
    (H, W) uint8 (K <= 256) or uint16: the labels' stored dtype
    """
    from . import _dither
    from .remap import label_dtype

    color_index = np.ascontiguousarray(color_index, dtype=np.int32)
    out = np.empty(color_index.shape, dtype=label_dtype(len(search.points)))
    pal = search.points
    _dither.floyd_steinberg(
        color_index,
        np.ascontiguousarray(points, dtype=np.float64),
        np.ascontiguousarray(start, dtype=np.int32),
        np.ascontiguousarray(mode, dtype=np.uint8),
        pal,
        search.dist,
        search.order,
        np.ascontiguousarray(opaque_entry, dtype=np.uint8),
        float(level),
        float(edge),
        float(cell),
        np.ascontiguousarray(pal.min(axis=0)),
        np.ascontiguousarray(pal.max(axis=0)),
        out,
        float(settle),
    )
    return out
