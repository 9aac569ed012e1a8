"""Error diffusion: Floyd-Steinberg, serpentine, in the working colour space
(the compiled loop is ``_dither.floyd_steinberg``), in bands of rows run on
the engine's threads."""

from __future__ import annotations

import numpy as np

from ._parallel import cores, pool
from .colorspace import PaletteSearch

__all__ = ["dither_labels", "dither_bands", "MODE_ANY", "MODE_OPAQUE", "MODE_FIXED"]

MODE_ANY, MODE_OPAQUE, MODE_FIXED = 0, 1, 2

#: Pixels per band at least: a large image is dithered in bands of rows,
#: one per thread at a time (the diffusion is serial within a band).
_BAND_PIXELS = 1 << 17
#: Bands at most (a power of two, as every band count is: 2, 4 and 8 cores
#: then share them evenly).
_MAX_BANDS = 8
#: Rows each band but the first dithers above its own, without keeping
#: them, so that the error entering its first row is like the one coming
#: from above in a run from the top: started with no error, Floyd-Steinberg
#: reaches its steady state within a few rows (the error a row receives
#: comes from the row above only). Without them a band's first row would
#: be quantized like an undithered one, a line across the image.
WARM_ROWS = 8
#: Rows per band at least (its warm-up rows then add at most a tenth).
_MIN_BAND_ROWS = 80


def dither_bands(height: int, width: int) -> list[tuple[int, int, int]]:
    """The bands of an image of ``height`` x ``width`` pixels: (first row
    dithered, first row kept, end) of each, top to bottom. They depend on
    the size alone, never on the machine: the same image gives the same
    labels on any number of cores."""
    n = min(_MAX_BANDS, (height * width) // _BAND_PIXELS, height // _MIN_BAND_ROWS)
    bands = 1
    while bands * 2 <= n:
        bands *= 2
    edges = [height * b // bands for b in range(bands + 1)]
    return [(max(0, edges[b] - WARM_ROWS) if b else 0, edges[b], edges[b + 1]) for b in range(bands)]


def dither_labels(color_index, points, start, mode, search: PaletteSearch, opaque_entry, level: float, edge: float = 0.0,
                  cell: float = 0.5, settle: float = 0.0, bands=None):
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
    settle : float >= 0, or (M,) float64 — a pixel that receives an error
        at most this long (working units) keeps its ``start`` entry (see
        ``_dither.pyx``): one bound for every colour, or each colour's own;
        0: never
    bands : list of (begin, first kept, end) row triples, optional — the
        bands (default :func:`dither_bands` of the image's size); their kept
        rows must not overlap, and rows no band keeps are 0

    Returns
    -------
    (H, W) uint8 (K <= 256) or uint16: the labels' stored dtype
    """
    from . import _dither
    from .remap import label_dtype

    color_index = np.ascontiguousarray(color_index, dtype=np.int32)
    height, width = color_index.shape
    out = np.empty(color_index.shape, dtype=label_dtype(len(search.points)))
    pal = search.points
    low, high = np.ascontiguousarray(pal.min(axis=0)), np.ascontiguousarray(pal.max(axis=0))
    cell, table_bytes = _dither.grid(low, high, float(cell), len(pal))
    # Zeroed by calloc: only the pages of the cells that targets fall in
    # are ever touched. Shared by the bands (see _dither.pyx).
    tables = np.zeros((2, table_bytes), dtype=np.uint8)
    args = (
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
        cell,
        low,
        high,
        tables,
        out,
    )
    if height == 0 or width == 0:
        return out
    if bands is None:
        bands = dither_bands(height, width)
    else:
        bands = [tuple(int(v) for v in band) for band in bands]
        kept = sorted((first, end) for _, first, end in bands)
        if any(a[1] > b[0] for a, b in zip(kept, kept[1:])):
            raise ValueError("the bands' kept rows overlap")
        out[:] = 0

    settle_of = None
    if np.ndim(settle):
        settle_of = np.ascontiguousarray(settle, dtype=np.float64)
        settle = 0.0

    def run(share):
        for begin, first, end in share:
            _dither.floyd_steinberg(*args, begin, first, end, float(settle), settle_of)

    threads = min(cores(), len(bands))
    shares = [bands[t::threads] for t in range(threads)]
    futures = [pool().submit(run, share) for share in shares[1:]]
    run(shares[0])
    for future in futures:
        future.result()
    return out
