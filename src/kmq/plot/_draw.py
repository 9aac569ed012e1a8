"""The drawing behind :mod:`kmq.plot` (matplotlib); see that module."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullLocator

from .._errors import OutputError, UsageError
from ._sweep import (
    DEFAULT_COMPARE_KS,
    DEFAULT_FIGURE_K,
    DEFAULT_FIGURE_SEED,
    DEFAULT_SWEEP_KS,
    QUALITY_TARGETS_DB,
    KResult,
    Sweep,
    check_dither_levels,
    check_ks,
    dither_name,
    display_name,
    display_pixels,
    distinct_colors,
    format_bytes,
    format_psnr,
    luminance,
    luminance_order,
    resolve_image,
    run_sweep,
)
from .._engine.histogram import pack_colors
from .._io import write_atomic
from .._quantize import Compressed, compress
from ..metrics import compression_ratio

__all__ = [
    "compare",
    "scatter",
    "segments",
    "palette",
    "curve",
    "sweep",
    "Sweep",
    "KResult",
    "save_figure",
    "render_figure",
    "FIGURES",
]

#: The figure names, as ``kmq plot`` takes them.
FIGURES = ("compare", "scatter", "segments", "palette", "curve")

#: Figure formats by extension.
_FIGURE_FORMATS = {".png": "png", ".svg": "svg"}
_DPI = 100
_NOTE_COLOR = "0.35"


# -- computing ----------------------------------------------------------------


def sweep(
    image,
    ks=DEFAULT_SWEEP_KS,
    *,
    seed=DEFAULT_FIGURE_SEED,
    sample: float | None = None,
    with_ssim: bool = False,
    progress=None,
    dither: float | None = None,
) -> Sweep:
    """Compress an image once per K and measure each result.

    Pass the returned :class:`Sweep` to :func:`compare`, :func:`curve` or any
    other figure to draw from it without running k-means again.

    Parameters
    ----------
    image : path, URL, bytes, PIL.Image, ndarray (H, W[, C]) uint8, Compressed or Sweep
        A Compressed or Sweep given here is reused for the Ks it holds.
    ks : int or sequence of int
        Palette sizes, each 1..65536 (sorted, duplicates dropped).
    seed : None, int or numpy.random.Generator
        k-means seed for every K (default 0: reproducible).
    sample : float in (0, 1], optional
        Fit each palette on this fraction of the pixels.
    with_ssim : bool
        Also compute SSIM for each K (slower).
    progress : callable, optional
        Called as ``progress(done, total, k)`` before each K and as
        ``progress(total, total, None)`` at the end.
    dither : float in [0, 1], optional
        Floyd-Steinberg level of every compression (default: kmq's, ``DEFAULT_DITHER``).

    Returns
    -------
    Sweep
        ``.results[i]`` holds the Compressed, its Metrics and the bytes of
        its ``.kmq`` file and indexed PNG.
    """
    return run_sweep(image, ks, seed=seed, sample=sample, with_ssim=with_ssim, progress=progress, dither=dither)


def _sweep_for(image, ks, default_ks, seed, sample, *, single_compressed_ok: bool, dither=None) -> Sweep:
    """The sweep a multi-K figure draws: ``ks`` if given; else the Ks of a
    given Sweep, the K of a given Compressed (when one K makes sense), or
    ``default_ks``; at dithering level ``dither`` if given (results of a
    given Sweep or Compressed are reused only at that level)."""
    if ks is None:
        if isinstance(image, Sweep):
            ks = image.ks
        elif isinstance(image, Compressed) and single_compressed_ok:
            ks = [image.k_requested or image.k]
        else:
            ks = default_ks
    ks = check_ks(ks)
    if isinstance(image, Sweep) and all(
        k in image and (dither is None or image[k].compressed.dither == dither) for k in ks
    ):
        return Sweep(image.source, [image[k] for k in ks], seed=image.seed, sample=image.sample, dither=image.dither)
    return run_sweep(image, ks, seed=seed, sample=sample, dither=dither)


def _one_k(image, k, seed, sample) -> tuple:
    """(source or None, Compressed) for the one-K figures.

    A Compressed is used as it is when ``k`` is None or its own K; a Sweep
    lends its result for ``k``; otherwise the image is compressed.
    """
    source, given, given_sweep = resolve_image(image)
    if k is None:
        if given is not None:
            return source, given
        if given_sweep is not None and DEFAULT_FIGURE_K not in given_sweep:
            k = given_sweep.ks[len(given_sweep.ks) // 2]
        else:
            k = DEFAULT_FIGURE_K
    (k,) = check_ks(k, what="k")
    if given is not None and k == (given.k_requested or given.k):
        return source, given
    if given_sweep is not None and k in given_sweep:
        return source, given_sweep[k].compressed
    if source is None:
        raise UsageError(
            f"this Compressed (K={given.k}) has no original image to compress again with K={k}; "
            "pass the image instead"
        )
    return source, compress(source, k, seed=seed, sample=sample)


def _require_source(source, what: str):
    if source is None:
        raise UsageError(
            f"the {what} figure needs the original image, and this Compressed was loaded from a .kmq file; "
            "pass the image (or kmq.compress(image, k)) instead"
        )
    return source


# -- drawing helpers ----------------------------------------------------------


def _target(fig, figsize, layout: str | None = "constrained") -> Figure:
    """A new Figure of ``figsize`` inches, or the given Figure/SubFigure
    (drawn into as it is, not resized)."""
    if fig is None:
        return Figure(figsize=figsize, dpi=_DPI, layout=layout)
    if not hasattr(fig, "add_subplot"):
        raise UsageError(f"fig must be a matplotlib Figure or SubFigure, got {type(fig).__name__}")
    return fig


def _top(fig) -> Figure:
    """The Figure a (Sub)Figure belongs to."""
    parent = getattr(fig, "figure", None)
    return fig if parent is None or parent is fig else _top(parent)


def _show_image(ax, pixels: np.ndarray) -> None:
    """Draw (H, W[, C]) uint8 pixels on ``ax`` without axes."""
    shown = display_pixels(pixels)
    if shown.ndim == 2:
        ax.imshow(shown, cmap="gray", vmin=0, vmax=255, interpolation="antialiased")
    else:
        ax.imshow(shown, interpolation="antialiased")
    ax.set_axis_off()


def _count_colors(pixels: np.ndarray) -> int:
    return int(np.unique(pack_colors(pixels.reshape(-1, pixels.shape[2]))).size)


def _k_label(result_k: int, compressed: Compressed) -> str:
    if compressed.k < result_k:
        return f"K = {result_k} (all {compressed.k} colours)"
    return f"K = {result_k}"


def _log2_k_axis(ax, ks) -> None:
    """x axis of K: log 2, a tick at every K tried, labelled as integers."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(ks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    if len(ks) > 1:
        ax.set_xlim(ks[0] / 2**0.3, ks[-1] * 2**0.3)
    ax.set_xlabel("K, colours in the palette (log₂ scale)")
    ax.grid(True, color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)


def _plain_log_ticks(axis, *, locator: bool = True) -> None:
    """Label a log axis 0.25, 0.5, 1, 2... rather than 2^-2 or 10^1."""
    if locator:
        axis.set_major_locator(LogLocator(base=2))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_locator(NullLocator())


def _seed_text(seed) -> str:
    if seed is None:
        return "random seed"
    if isinstance(seed, np.random.Generator):
        return "seeded by a Generator"
    return f"seed {seed}"


# -- compare ------------------------------------------------------------------


def compare(
    image, *, ks=None, seed=DEFAULT_FIGURE_SEED, sample: float | None = None, dither=None, fig=None
) -> Figure:
    """The original beside the image rebuilt for several K.

    Each panel is titled with K, the compression ratio (raw bits over index
    bits plus palette bits, as the k-means tutorials count it), the PSNR
    and kmq's perceptual score (:func:`kmq.metrics.perceptual_score`: 0-100,
    from the Oklab difference after the eye's blur, which credits
    dithering where PSNR does not).

    With several dithering levels, e.g. ``dither=(0, 1)``, each K gets a
    row: the original, then the image rebuilt at each level side by side,
    titled with the level, the bytes of its ``.kmq`` file and indexed PNG,
    its perceptual score and PSNR: what dithering costs in bytes and buys
    to the eye.

    Parameters
    ----------
    image : path, URL, bytes, PIL.Image, ndarray (H, W[, C]) uint8, Compressed or Sweep
    ks : sequence of int, optional
        Palette sizes; default (2, 4, 16, 64), or the K of a given
        Compressed, or the Ks of a given Sweep.
    seed : None, int or numpy.random.Generator
        k-means seed (default 0).
    sample : float in (0, 1], optional
        Fit each palette on this fraction of the pixels.
    dither : float in [0, 1] or sequence of them, optional
        Floyd-Steinberg level(s). None (default): kmq's default level, or
        whatever a given Sweep or Compressed was made with. One level: every
        panel at that level. Several distinct levels, e.g. ``(0, 1)``:
        undithered beside dithered for each K. A given Sweep or Compressed
        is reused at the levels it was made with.
    fig : Figure or SubFigure, optional
        Draw into this (not resized) instead of a new Figure.

    Returns
    -------
    matplotlib.figure.Figure
        One image panel for the original and one per K, in K order; with
        several levels, per K a row of the original and one panel per level.
    """
    if dither is not None and not isinstance(dither, (int, float, np.integer, np.floating)):
        levels = check_dither_levels(dither)
        if len(levels) > 1:
            sweeps = [
                _sweep_for(image, ks, DEFAULT_COMPARE_KS, seed, sample, single_compressed_ok=True, dither=level)
                for level in levels
            ]
            return _draw_compare_dithering(sweeps, levels, fig)
        dither = levels[0]
    if dither is not None:
        (dither,) = check_dither_levels([dither])
    data = _sweep_for(image, ks, DEFAULT_COMPARE_KS, seed, sample, single_compressed_ok=True, dither=dither)
    return _draw_compare(data, fig)


def _perceptual_text(metrics) -> str:
    return f"perceptual {metrics.perceptual_score:.1f}"


def _draw_compare(data: Sweep, fig=None) -> Figure:
    source = data.source
    height, width = source.pixels.shape[:2]
    n_panels = len(data.results) + 1
    # At most five panels a row; rows as even as possible (9 -> 5 + 4).
    n_rows = math.ceil(n_panels / 5)
    n_cols = math.ceil(n_panels / n_rows)
    panel_width = 3.0
    panel_height = panel_width * height / width + 0.5
    fig = _target(fig, (n_cols * panel_width + 0.2, n_rows * panel_height + 0.5))
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()

    _show_original(axes[0], data)
    for ax, result in zip(axes[1:], data.results):
        _show_image(ax, result.compressed.reconstruct())
        ratio = result.metrics.ratio_to_1
        ax.set_title(
            f"{_k_label(result.k, result.compressed)}\n{ratio:.1f}:1 · PSNR {format_psnr(result.metrics.psnr)} · "
            f"{_perceptual_text(result.metrics)}",
            fontsize=9.5,
        )
    fig.suptitle(f"{data.name} quantized by k-means ({_seed_text(data.seed)})", fontsize=12)
    fig.supxlabel(
        "ratio = raw bits ÷ (index + palette bits); perceptual: kmq's 0–100 score after the eye's blur",
        fontsize=8.5,
        color=_NOTE_COLOR,
    )
    return _top(fig)


def _show_original(ax, data: Sweep) -> None:
    source = data.source
    height, width = source.pixels.shape[:2]
    first = data.results[0].compressed if data.results else None
    n_colors = first.n_colors_in if first is not None and first.n_colors_in is not None else None
    if n_colors is None:
        n_colors = _count_colors(source.pixels)
    _show_image(ax, source.pixels)
    ax.set_title(f"Original\n{width} × {height}, {n_colors:,} colours", fontsize=10)


def _draw_compare_dithering(sweeps: list[Sweep], levels: list[float], fig=None) -> Figure:
    """Per K a row: the original, then the result at each level."""
    first = sweeps[0]
    height, width = first.source.pixels.shape[:2]
    ks = first.ks
    n_cols = 1 + len(levels)
    panel_width = 3.0
    panel_height = panel_width * height / width + 0.75
    fig = _target(fig, (n_cols * panel_width + 0.2, len(ks) * panel_height + 0.4))
    axes = fig.subplots(len(ks), n_cols, squeeze=False)
    for row, k in zip(axes, ks):
        for ax in row:
            ax.set_axis_off()
        _show_original(row[0], first)
        for ax, data, level in zip(row[1:], sweeps, levels):
            result = data[k]
            _show_image(ax, result.compressed.reconstruct())
            png = f" · PNG {format_bytes(result.png_bytes)}" if result.png_bytes is not None else ""
            ax.set_title(
                f"{_k_label(k, result.compressed)}, {dither_name(level)}\n"
                f".kmq {format_bytes(result.kmq_bytes)}{png}\n"
                f"{_perceptual_text(result.metrics)} · PSNR {format_psnr(result.metrics.psnr)}",
                fontsize=9.5,
            )
    k_text = ", ".join(str(k) for k in ks)
    names = [dither_name(level) for level in levels]
    fig.suptitle(
        f"{first.name} at K = {k_text}: {', '.join(names[:-1])} and {names[-1]} (k-means, {_seed_text(first.seed)})",
        fontsize=12,
    )
    fig.supxlabel(
        "perceptual: kmq's 0–100 score after the eye's blur (it credits dithering; PSNR does not)",
        fontsize=8.5,
        color=_NOTE_COLOR,
    )
    return _top(fig)


# -- scatter ------------------------------------------------------------------


def scatter(
    image,
    *,
    k: int | None = None,
    seed=DEFAULT_FIGURE_SEED,
    sample: float | None = None,
    sample_size: int = 3000,
    fig=None,
) -> Figure:
    """Pixels as points in RGB space, with the palette's centroids.

    Left: a random sample of the pixels, each drawn in its own colour, with
    the K centroids (the palette) as large outlined dots. Right: the same
    pixels after quantization, each drawn in the colour of its centroid, so
    the clusters k-means found show as regions of one colour. Grayscale
    images get histograms of gray level instead (one axis, not three).

    Parameters
    ----------
    image : path, URL, bytes, PIL.Image, ndarray (H, W[, C]) uint8, Compressed or Sweep
        Needs the original pixels (a Compressed from kmq.compress has them).
    k : int, optional
        Palette size; default 16, or the K of a given Compressed.
    seed : None, int or numpy.random.Generator
        k-means seed and the seed of the pixel sample (default 0).
    sample : float in (0, 1], optional
        Fit the palette on this fraction of the pixels.
    sample_size : int
        Pixels drawn (all of them if the image has fewer). Fully transparent
        pixels are left out.
    fig : Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < 1:
        raise UsageError(f"sample_size must be a whole number >= 1, got {sample_size!r}")
    source, compressed = _one_k(image, k, seed, sample)
    source = _require_source(source, "scatter")
    return _draw_scatter(source, compressed, seed=seed, sample_size=int(sample_size), name=display_name(source), fig=fig)


def _sample_pixels(pixels: np.ndarray, labels: np.ndarray, sample_size: int, seed):
    """A random sample of the visible (not fully transparent) pixels.

    Returns
    -------
    colours : ndarray, shape (n, C), uint8
    labels : ndarray, shape (n,)
    n_visible : int
        Visible pixels in the whole image.
    """
    channels = pixels.shape[2]
    flat = pixels.reshape(-1, channels)
    flat_labels = labels.reshape(-1)
    visible = np.flatnonzero(flat[:, -1] > 0) if channels in (2, 4) else np.arange(len(flat))
    n_visible = len(visible)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(0 if seed is None else seed)
    if n_visible > sample_size:
        visible = np.sort(rng.choice(visible, size=sample_size, replace=False))
    return flat[visible], flat_labels[visible], n_visible


def _draw_scatter(source, compressed: Compressed, *, seed, sample_size: int, name: str, fig=None) -> Figure:
    pixels = source.pixels
    colours, labels, n_visible = _sample_pixels(pixels, compressed.labels, sample_size, seed)
    pal = compressed.palette
    k = compressed.k
    if pixels.shape[2] in (1, 2):
        return _draw_gray_histograms(pixels, compressed, name, fig)

    # 3-D axes reserve room to rotate, which constrained layout takes as
    # their size and shrinks them; place them by hand instead.
    new_figure = fig is None
    fig = _target(fig, (11.0, 5.0), layout=None)
    if new_figure:
        fig.subplots_adjust(left=0.0, right=0.97, bottom=0.04, top=0.98, wspace=0.02)
    rgb = colours[:, :3].astype(np.float64)
    centroid_rgb = pal[:, :3].astype(np.float64)
    point_size = 6 if len(rgb) <= 5000 else 2
    titles = (
        f"Original: {len(rgb):,} of {n_visible:,} pixels,\neach in its own colour",
        f"After quantization to K = {k}:\neach pixel in its centroid's colour",
    )
    point_colours = (rgb / 255, centroid_rgb[labels] / 255)
    for index, (title, point_colour) in enumerate(zip(titles, point_colours)):
        ax = fig.add_subplot(1, 2, index + 1, projection="3d")
        # Drawn in call order, not sorted by depth: the centroids always
        # come out above the thousands of points around them.
        ax.computed_zorder = False
        ax.scatter(
            rgb[:, 0], rgb[:, 1], rgb[:, 2], c=point_colour, s=point_size, depthshade=False, linewidths=0, alpha=0.6,
            zorder=1,
        )
        size = 110 if k <= 64 else 50
        # A white halo under a black ring: visible on dark and light points.
        ax.scatter(
            centroid_rgb[:, 0], centroid_rgb[:, 1], centroid_rgb[:, 2],
            c="white", s=size * 1.9, marker="o", linewidths=0, depthshade=False, zorder=2,
        )
        ax.scatter(
            centroid_rgb[:, 0],
            centroid_rgb[:, 1],
            centroid_rgb[:, 2],
            c=centroid_rgb / 255,
            s=size,
            marker="o",
            edgecolors="black",
            linewidths=1.3,
            depthshade=False,
            zorder=3,
        )
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_pane_color((0.93, 0.93, 0.93, 1.0))
        ax.set(xlim=(0, 255), ylim=(0, 255), zlim=(0, 255))
        ticks = [0, 128, 255]
        ax.set_xticks(ticks), ax.set_yticks(ticks), ax.set_zticks(ticks)
        ax.set_xlabel("red", labelpad=2)
        ax.set_ylabel("green", labelpad=2)
        ax.set_zlabel("blue", labelpad=4)
        ax.tick_params(labelsize=8, pad=0)
        ax.set_box_aspect((1, 1, 1), zoom=0.86)
        ax.view_init(elev=22, azim=-58)
        ax.set_title(title, fontsize=10, y=0.96)
    centroid_marker = Line2D([], [], marker="o", linestyle="none", markerfacecolor="0.75", markeredgecolor="black", markersize=8)
    fig.legend([centroid_marker], [f"centroid: one of the {k} palette colours"], loc="lower center", frameon=False, fontsize=9)
    fig.suptitle(f"{name} in RGB space: k-means with K = {k}", fontsize=12, y=0.985)
    return _top(fig)


def _draw_gray_histograms(pixels, compressed: Compressed, name: str, fig=None) -> Figure:
    """The grayscale version of the scatter figure: gray-level histograms."""
    fig = _target(fig, (10.0, 4.2))
    gray = pixels[:, :, 0]
    visible = pixels[:, :, 1] > 0 if pixels.shape[2] == 2 else np.ones(gray.shape, bool)
    axes = fig.subplots(1, 2)
    original_counts = np.bincount(gray[visible].ravel(), minlength=256)
    axes[0].bar(np.arange(256), original_counts / max(visible.sum(), 1) * 100, width=1.0, color="0.35", edgecolor="none")
    for level in compressed.palette[:, 0]:
        axes[0].axvline(level, color="tab:red", linewidth=1.0, alpha=0.8)
    axes[0].set_title("Original, with the centroids", fontsize=10)
    levels = compressed.palette[:, 0]
    # Bars as wide as fits between the two closest levels (1 to 12 levels).
    gaps = np.diff(np.sort(levels.astype(np.int64)))
    bar_width = float(np.clip(0.8 * gaps.min(), 1.0, 12.0)) if len(gaps) else 8.0
    quantized_counts = np.bincount(compressed.labels[visible].ravel(), minlength=len(levels))
    axes[1].bar(
        levels,
        quantized_counts / max(visible.sum(), 1) * 100,
        width=bar_width,
        color=np.repeat(levels[:, None] / 255, 3, axis=1),
        edgecolor="black",
        linewidth=0.6,
    )
    axes[1].set_title(f"After quantization to K = {compressed.k}: one bar per palette level", fontsize=10)
    for ax in axes:
        ax.set_xlim(-2, 257)
        ax.set_xlabel("gray level")
        ax.grid(True, axis="y", color="0.9")
        ax.set_axisbelow(True)
    axes[0].set_ylabel("share of pixels (%)")
    axes[0].legend([Line2D([], [], color="tab:red")], ["centroid (palette level)"], fontsize=9, loc="upper right")
    fig.suptitle(f"{name}: gray levels and the {compressed.k} centroids of k-means", fontsize=12)
    return _top(fig)


# -- segments -----------------------------------------------------------------


def segments(image, *, k: int | None = None, seed=DEFAULT_FIGURE_SEED, sample: float | None = None, fig=None) -> Figure:
    """The cluster labels as a segmentation of the image.

    Three panels: the image; the label map with each cluster in a distinct
    colour; each cluster in its mean colour (the rebuilt image). A key
    underneath pairs each cluster's label colour with its mean colour.
    Clusters are numbered from dark to light, as in :func:`palette`.

    Parameters
    ----------
    image : path, URL, bytes, PIL.Image, ndarray (H, W[, C]) uint8, Compressed or Sweep
    k : int, optional
        Palette size; default 16, or the K of a given Compressed.
    seed : None, int or numpy.random.Generator
    sample : float in (0, 1], optional
    fig : Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    source, compressed = _one_k(image, k, seed, sample)
    name = display_name(source) if source is not None else "the image"
    return _draw_segments(source, compressed, name=name, fig=fig)


def _draw_segments(source, compressed: Compressed, *, name: str, fig=None) -> Figure:
    height, width = compressed.shape
    k = compressed.k
    order = luminance_order(compressed.palette)
    rank = np.empty(k, dtype=np.intp)
    rank[order] = np.arange(k)
    label_colours = distinct_colors(k)
    label_image = (label_colours[rank[compressed.labels]] * 255).round().astype(np.uint8)

    panel_width = 3.6
    image_height = panel_width * height / width
    fig = _target(fig, (3 * panel_width + 0.3, image_height + 1.75))
    grid = fig.add_gridspec(2, 3, height_ratios=[image_height, 0.55])
    shown = source.pixels if source is not None else compressed.reconstruct()
    panels = (
        (shown, "Original" if source is not None else "Rebuilt image"),
        (label_image, f"Cluster labels, K = {k}\n(one colour per cluster)"),
        (compressed.reconstruct(), "Each cluster in its mean colour\n(the compressed image)"),
    )
    for column, (pixels, title) in enumerate(panels):
        ax = fig.add_subplot(grid[0, column])
        _show_image(ax, pixels)
        ax.set_title(title, fontsize=10)

    # The key: cluster i's label colour over its mean colour.
    key = fig.add_subplot(grid[1, :])
    mean_colours = display_pixels(compressed.palette[order][None, :, :])
    if mean_colours.ndim == 2:
        mean_rgb = np.repeat(mean_colours[:, :, None] / 255, 3, axis=2)
    else:
        mean_rgb = mean_colours[:, :, :3] / 255
    strip = np.concatenate([label_colours[None, :, :], mean_rgb], axis=0)
    key.imshow(strip, aspect="auto", interpolation="nearest", extent=(-0.5, k - 0.5, 1.5, -0.5))
    key.set_yticks([0, 1], ["label", "mean colour"], fontsize=8)
    key.xaxis.set_major_locator(MaxNLocator(nbins=min(k, 16), integer=True))
    key.tick_params(axis="x", labelsize=8)
    key.set_xlabel("cluster, numbered from dark to light", fontsize=9)
    if k <= 64:
        for boundary in np.arange(k - 1) + 0.5:
            key.axvline(boundary, color="white", linewidth=0.6)
    fig.suptitle(f"{name} segmented by k-means colour clusters", fontsize=12)
    return _top(fig)


# -- palette ------------------------------------------------------------------


def palette(
    image,
    *,
    ks=None,
    seed=DEFAULT_FIGURE_SEED,
    sample: float | None = None,
    ax=None,
    fig=None,
) -> Figure:
    """The palette as swatches ordered by luminance, each as wide as its
    share of the pixels.

    One row per K. Wide swatches are labelled with their colour (hex) and
    share.

    Parameters
    ----------
    image : path, URL, bytes, PIL.Image, ndarray (H, W[, C]) uint8, Compressed or Sweep
    ks : int or sequence of int, optional
        Palette sizes, one row each; default 16, or the K of a given
        Compressed, or the Ks of a given Sweep.
    seed : None, int or numpy.random.Generator
    sample : float in (0, 1], optional
    ax : matplotlib Axes, optional
        Draw the swatches on this Axes (its figure is returned).
    fig : Figure or SubFigure, optional
        Draw into this instead of a new Figure (ignored when ``ax`` is given).

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = _palette_rows(image, ks, seed, sample)
    source, _, _ = resolve_image(image)
    name = display_name(source) if source is not None else "the image"
    return _draw_palette(rows, name=name, ax=ax, fig=fig)


def _palette_rows(image, ks, seed, sample) -> list[tuple[int, Compressed]]:
    if ks is None and isinstance(image, Sweep):
        return [(result.k, result.compressed) for result in image.results]
    if ks is None:
        source, compressed = _one_k(image, None, seed, sample)
        return [(compressed.k_requested or compressed.k, compressed)]
    return [(k, _one_k(image, k, seed, sample)[1]) for k in check_ks(ks)]


def _draw_palette(rows: list[tuple[int, Compressed]], *, name: str, ax=None, fig=None) -> Figure:
    if ax is None:
        fig = _target(fig, (10.0, 1.1 + 0.62 * len(rows)))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    has_alpha = any(c.palette.shape[1] in (2, 4) for _, c in rows)
    if has_alpha:
        # A checkerboard behind the swatches, as image editors show
        # transparency: a partly transparent colour lets it through.
        squares = 200
        checker = (np.add.outer(np.arange(len(rows) * 8), np.arange(squares)) % 2) * 0.25 + 0.62
        ax.imshow(
            checker, cmap="gray", vmin=0, vmax=1, extent=(0, 100, len(rows) - 0.5, -0.5),
            aspect="auto", interpolation="nearest", zorder=0,
        )
    for row, (k, compressed) in enumerate(rows):
        pal = compressed.palette
        order = luminance_order(pal)
        counts = np.bincount(compressed.labels.ravel(), minlength=len(pal))[order]
        shares = counts / max(counts.sum(), 1) * 100
        lefts = np.concatenate([[0.0], np.cumsum(shares)[:-1]])
        if pal.shape[1] in (2, 4):
            grey = pal.shape[1] == 2
            rgb = np.repeat(pal[order][:, :1], 3, axis=1) if grey else pal[order][:, :3]
            colours = np.concatenate([rgb / 255, pal[order][:, -1:] / 255], axis=1)
        else:
            shown = display_pixels(pal[order][None, :, :])
            colours = np.repeat(shown[0][:, None] / 255, 3, axis=1) if shown.ndim == 2 else shown[0] / 255
        ax.barh(
            row,
            shares,
            left=lefts,
            height=0.78,
            color=colours,
            edgecolor="white",
            linewidth=0.6 if len(pal) <= 64 else 0,
        )
        lights = luminance(pal[order])
        for left, share, colour, light in zip(lefts, shares, pal[order], lights):
            alpha = int(colour[-1]) if len(colour) in (2, 4) else 255
            # Over the checkerboard a mostly transparent swatch looks grey.
            shown_light = (light * alpha + 160 * (255 - alpha)) / 255
            text_colour = "black" if shown_light >= 140 else "white"
            hex_code = "#" + "".join(f"{v:02x}" for v in (colour[:3] if len(colour) >= 3 else colour[:1].repeat(3)))
            if alpha < 255:
                hex_code += f" α{alpha}"
            centre = left + share / 2
            if share >= 7.0:
                ax.text(centre, row, f"{hex_code}\n{share:.1f} %", ha="center", va="center", fontsize=7, color=text_colour)
            elif share >= 3.2:
                ax.text(centre, row, f"{share:.0f} %", ha="center", va="center", fontsize=6.5, color=text_colour)
    ax.set_yticks(range(len(rows)), [_k_label(k, c) for k, c in rows], fontsize=9)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel(
        "share of pixels (%), colours ordered from dark to light"
        + ("; transparency shown over a checkerboard, α = alpha" if has_alpha else "")
    )
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.set_title(f"Palette of {name}: each colour as wide as its share of the pixels", fontsize=11)
    return _top(fig)


# -- curve --------------------------------------------------------------------


def curve(image, *, ks=None, seed=DEFAULT_FIGURE_SEED, sample: float | None = None, fig=None) -> Figure:
    """Distortion and size against K: the elbow to read when choosing K.

    Three panels over K on a log-2 axis: the mean squared error (the elbow
    plot of k-means); PSNR with the 30 and 35 dB levels and the first K that
    reaches each, and beside it kmq's perceptual score (0-100, right-hand
    axis; :func:`kmq.metrics.perceptual_score`); bits per pixel of the
    ``.kmq`` file, the indexed PNG, the tutorials' count (index bits plus
    palette) and the input file, with the file size in kB on the right-hand
    axis.

    Parameters
    ----------
    image : path, URL, bytes, PIL.Image, ndarray (H, W[, C]) uint8, Compressed or Sweep
    ks : sequence of int, optional
        Default (2, 4, 8, 16, 32, 64, 128, 256), or the Ks of a given Sweep.
    seed : None, int or numpy.random.Generator
    sample : float in (0, 1], optional
    fig : Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
        Its lines are labelled ("MSE", "PSNR", "perceptual score", ".kmq
        file", "indexed PNG", "index bits + palette"), so their data can be
        read back with ``line.get_xdata()`` and ``line.get_ydata()``.
    """
    data = _sweep_for(image, ks, DEFAULT_SWEEP_KS, seed, sample, single_compressed_ok=False)
    return _draw_curve(data, fig)


def _draw_curve(data: Sweep, fig=None) -> Figure:
    fig = _target(fig, (14.0, 4.6))
    ax_mse, ax_psnr, ax_size = fig.subplots(1, 3)
    ks = np.array(data.ks)
    metrics = [r.metrics for r in data.results]
    n_pixels = metrics[0].n_pixels
    channels = metrics[0].channels
    blue, orange, green, grey, purple = "tab:blue", "tab:orange", "tab:green", "0.45", "tab:purple"

    # MSE, linear: the elbow.
    ax_mse.plot(ks, [m.mse for m in metrics], "o-", color=blue, label="MSE")
    ax_mse.set_ylim(bottom=0)
    ax_mse.set_ylabel("MSE (squared 8-bit levels per channel)")
    ax_mse.set_title("Distortion: mean squared error", fontsize=11)
    _log2_k_axis(ax_mse, ks)

    # PSNR with the report's quality levels.
    psnrs = np.array([m.psnr for m in metrics])
    finite = np.isfinite(psnrs)
    ax_psnr.plot(ks[finite], psnrs[finite], "o-", color=orange, label="PSNR")
    if not finite.all():
        lossless_k = int(ks[~finite][0])
        ax_psnr.annotate(
            f"lossless from K = {lossless_k}",
            xy=(0.98, 0.04),
            xycoords="axes fraction",
            ha="right",
            fontsize=8.5,
            color=_NOTE_COLOR,
        )
    for target in QUALITY_TARGETS_DB:
        ax_psnr.axhline(target, color=grey, linestyle=":", linewidth=1)
        ax_psnr.annotate(
            f"{target:g} dB",
            xy=(0.0, target),
            xycoords=("axes fraction", "data"),
            xytext=(3, 2),
            textcoords="offset points",
            fontsize=8,
            color=grey,
        )
        first = data.first_k_reaching(target)
        if first is not None and math.isfinite(data[first].metrics.psnr):
            ax_psnr.plot([first], [data[first].metrics.psnr], "o", markersize=11, markerfacecolor="none", markeredgecolor="black")
            ax_psnr.annotate(
                f"≥ {target:g} dB: K = {first}",
                xy=(first, data[first].metrics.psnr),
                xytext=(-8, 6),
                textcoords="offset points",
                ha="right",
                fontsize=8.5,
            )
    ax_psnr.set_ylabel("PSNR (dB)")
    ax_psnr.set_title("Quality: PSNR and perceptual score (higher is better)", fontsize=11)
    low = min([*psnrs[finite], QUALITY_TARGETS_DB[0]]) if finite.any() else QUALITY_TARGETS_DB[0]
    high = max([*psnrs[finite], QUALITY_TARGETS_DB[-1]]) if finite.any() else QUALITY_TARGETS_DB[-1]
    ax_psnr.set_ylim(low - 2, high + 2)
    _log2_k_axis(ax_psnr, ks)
    # kmq's perceptual score beside PSNR, on its own 0-100 axis.
    ax_score = ax_psnr.twinx()
    scores = [m.perceptual_score for m in metrics]
    ax_score.plot(ks, scores, "D--", color=purple, markersize=4.5, linewidth=1.3, label="perceptual score")
    ax_score.set_ylim(max(0.0, min(scores) - 5), 101)
    ax_score.set_ylabel("perceptual score (0–100, kmq.metrics)", color=purple)
    ax_score.tick_params(axis="y", colors=purple)
    handles = [*ax_psnr.get_lines()[:1], *ax_score.get_lines()]
    ax_psnr.legend(
        handles, [h.get_label() for h in handles], fontsize=8.5, loc="lower right", bbox_to_anchor=(1.0, 0.08),
        framealpha=0.9, edgecolor="none",
    )

    # Size in bits per pixel, bytes on the right.
    def bits_per_pixel(n_bytes):
        return 8 * n_bytes / n_pixels

    ax_size.plot(ks, [bits_per_pixel(r.kmq_bytes) for r in data.results], "o-", color=blue, label=".kmq file")
    png_points = [(r.k, bits_per_pixel(r.png_bytes)) for r in data.results if r.png_bytes is not None]
    if png_points:
        ax_size.plot(*zip(*png_points), "s-", color=green, label="indexed PNG", markersize=5)
    ax_size.plot(
        ks,
        [compression_ratio(n_pixels, r.compressed.k, channels) * 8 * channels for r in data.results],
        "--",
        color=grey,
        label="index bits + palette",
    )
    input_bytes = data.source.input_bytes
    if input_bytes is not None:
        input_bpp = bits_per_pixel(input_bytes)
        kind = f" ({data.source.format})" if data.source.format else ""
        ax_size.axhline(input_bpp, color="tab:red", linestyle="-.", linewidth=1.2, label=f"input file{kind}, {format_bytes(input_bytes)}")
    # Log scale: equal distances are equal size ratios, and the small
    # files of small K do not vanish under the input's line.
    ax_size.set_yscale("log", base=2)
    _plain_log_ticks(ax_size.yaxis)
    ax_size.set_ylabel("bits per pixel (log scale)")
    ax_size.set_title(f"Size ({n_pixels * channels * 8 // n_pixels} bits per pixel raw)", fontsize=11)
    kilobytes = ax_size.secondary_yaxis(
        "right", functions=(lambda bpp: bpp * n_pixels / 8 / 1000, lambda kb: kb * 1000 * 8 / n_pixels)
    )
    kilobytes.set_ylabel("file size (kB)")
    kilobytes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    _plain_log_ticks(kilobytes.yaxis, locator=False)
    ax_size.legend(fontsize=8.5, loc="best", framealpha=0.9, edgecolor="none")
    _log2_k_axis(ax_size, ks)

    fig.suptitle(
        f"{data.name} ({data.source.pixels.shape[1]} × {data.source.pixels.shape[0]}): quality and size against K "
        f"(k-means, {_seed_text(data.seed)})",
        fontsize=12,
    )
    return _top(fig)


# -- saving -------------------------------------------------------------------


def figure_format(path) -> str:
    """"png" or "svg" from the extension of ``path``; OutputError otherwise."""
    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix not in _FIGURE_FORMATS:
        shown = suffix or "no extension"
        raise OutputError(f"cannot save a figure as {os.fspath(path)} ({shown}); use a .png or .svg file name")
    return _FIGURE_FORMATS[suffix]


def render_figure(fig: Figure, format: str = "png", *, dpi: float | None = None) -> bytes:
    """A figure as PNG or SVG bytes, rendered in memory.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    format : {"png", "svg"}
    dpi : float, optional
        Pixels per inch of a PNG (default: the figure's, 100 for kmq's).

    Returns
    -------
    bytes
    """
    if format not in ("png", "svg"):
        raise OutputError(f"figures are saved as png or svg, got {format!r}")
    buffer = io.BytesIO()
    options = {"format": format, "facecolor": "white"}
    if format == "svg":
        options["metadata"] = {"Date": None}  # no date: the same figure gives the same file
    else:
        options["dpi"] = dpi or "figure"
        options["pil_kwargs"] = {"optimize": True}
    # A fixed salt for the SVG element ids (matplotlib draws a random one
    # per file otherwise), so that the same figure gives the same bytes.
    with matplotlib.rc_context({"svg.hashsalt": "kmq"}):
        fig.savefig(buffer, **options)
    return buffer.getvalue()


def save_figure(fig: Figure, path, *, force: bool = False, dpi: float | None = None) -> int:
    """Write a figure to ``path`` as PNG or SVG, by its extension.

    The file is rendered in memory and written atomically (temporary file,
    then rename).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or os.PathLike
        Ends in ``.png`` or ``.svg``.
    force : bool
        Overwrite an existing file.
    dpi : float, optional
        Pixels per inch of a PNG.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    OutputError
        The extension is not .png or .svg, the file exists and ``force`` is
        false, or the write failed.
    """
    data = render_figure(fig, figure_format(path), dpi=dpi)
    write_atomic(path, data, force=force)
    return len(data)
