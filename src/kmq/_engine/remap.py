"""Stage 4 of the pipeline: map every pixel to its palette index.

The nearest palette entry is searched once per distinct colour (Euclidean
distance in the image's own channels, the k-means metric), then spread to
the pixels through the histogram's lookup table. No per-pixel Python loop.

The search is exact and cheap: integer arithmetic on uint8 values, starting
from a good guess (the nearest entry to the centre of the colour's coarse
grid cell, or the k-means label when the caller has it) and visiting that
entry's neighbours nearest first, stopping as soon as no further entry can be
nearer (sort-means; see ``_remap.nearest_palette_sorted``).
"""

from __future__ import annotations

import numpy as np

from . import _kmeans, _remap
from ._parallel import run_chunked
from .histogram import ColorHistogram

__all__ = ["nearest_palette_index", "map_pixels", "label_dtype", "rebuild"]

#: Palettes larger than this are searched by brute force: the K x K
#: neighbour tables would cost more than they save.
_MAX_SORTED_K = 1024
#: Bits per channel of the grid whose cell centres give the search's start.
_GUESS_BITS = 4


def label_dtype(k: int) -> np.dtype:
    """Smallest unsigned dtype that holds indices 0..k-1 (k <= 65536)."""
    return np.dtype(np.uint8) if k <= 256 else np.dtype(np.uint16)


def _grid_guess(colors: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Nearest palette entry to the centre of each colour's grid cell.

    colors (M, C) uint8, palette (K, C) uint8 -> (M,) int32.
    """

    channels = colors.shape[1]
    shift = 8 - _GUESS_BITS
    levels = (np.arange(1 << _GUESS_BITS) << shift) + (1 << (shift - 1))
    grid = np.stack(np.meshgrid(*([levels] * channels), indexing="ij"), axis=-1).reshape(-1, channels)
    cell_labels = np.empty(len(grid), dtype=np.int32)
    _kmeans.assign_labels(grid.astype(np.float64), palette.astype(np.float64), cell_labels, np.empty(len(grid)))
    cells = np.zeros(len(colors), dtype=np.int64)
    for c in range(channels):
        cells = (cells << _GUESS_BITS) | (colors[:, c] >> shift)
    return cell_labels[cells]


def nearest_palette_index(colors: np.ndarray, palette: np.ndarray, *, guess: np.ndarray | None = None, return_dist2: bool = False):
    """Index of the nearest palette entry of each colour.

    Parameters
    ----------
    colors : ndarray, shape (M, C), uint8
    palette : ndarray, shape (K, C), uint8
    guess : ndarray, shape (M,), int, optional
        A likely nearest entry of each colour (any valid index); only speeds
        the search up.
    return_dist2 : bool
        Also return the squared distances.

    Returns
    -------
    labels : ndarray, shape (M,), uint8 if K <= 256 else uint16
        Ties go to the lowest index.
    dist2 : ndarray, shape (M,), int64
        Squared Euclidean distance (8-bit units) to that entry; only with
        ``return_dist2``.
    """

    colors = np.ascontiguousarray(colors, dtype=np.uint8)
    palette = np.ascontiguousarray(palette, dtype=np.uint8)
    n_colors, k = len(colors), len(palette)
    labels = np.empty(n_colors, dtype=np.int32)
    dist2 = np.empty(n_colors, dtype=np.int64)
    if k > _MAX_SORTED_K:
        squared = np.empty(n_colors)
        _kmeans.assign_labels(colors.astype(np.float64), palette.astype(np.float64), labels, squared)
        dist2[:] = squared
    else:
        if guess is None:
            guess = _grid_guess(colors, palette)
        guess = np.ascontiguousarray(guess, dtype=np.int32)
        entries = palette.astype(np.int64)
        pal_dist2 = ((entries[:, None, :] - entries[None, :, :]) ** 2).sum(axis=2)
        order = np.empty((k, k), dtype=np.int32)
        _kmeans.center_geometry(entries.astype(np.float64), np.empty((k, k)), order, np.empty(k))
        run_chunked(
            _remap.nearest_palette_sorted,
            n_colors,
            (colors, palette, guess, pal_dist2, order),
            (labels, dist2),
        )
    labels = labels.astype(label_dtype(k))
    return (labels, dist2) if return_dist2 else labels


def map_pixels(histogram: ColorHistogram, pixel_keys: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Palette index of every pixel.

    Parameters
    ----------
    histogram : ColorHistogram
        The distinct colours of the pixels (all of them).
    pixel_keys : ndarray, shape (N,), uint32
        Packed pixels.
    palette : ndarray, shape (K, C), uint8

    Returns
    -------
    ndarray, shape (N,), uint8 if K <= 256 else uint16
    """
    return histogram.lookup(nearest_palette_index(histogram.colors, palette), pixel_keys)


def rebuild(palette: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Decompression, ``palette[labels]``, by a compiled table lookup.

    Parameters
    ----------
    palette : ndarray, shape (K, C), uint8
    labels : ndarray, shape (H, W), integer, every value < K

    Returns
    -------
    ndarray, shape (H, W, C), uint8
    """
    palette = np.ascontiguousarray(palette, dtype=np.uint8)
    if labels.dtype not in (np.uint8, np.uint16):
        return palette[labels]
    out = np.empty(labels.shape + (palette.shape[1],), dtype=np.uint8)
    _remap.lookup(palette, np.ascontiguousarray(labels).reshape(-1), out.reshape(-1, palette.shape[1]))
    return out
