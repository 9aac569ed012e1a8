"""The HTML report (``kmq report``).

The report is one self-contained HTML file: inline CSS, every figure a PNG
embedded as a ``data:`` URL, no script, no link to anything outside the
file, so it opens in any browser without a network. It holds no date and no
absolute path, so the same input, Ks and seed give the same file.
"""

from __future__ import annotations

import html

import numpy as np

from .._display import png_data_url as _png_data_url
from ..metrics import _share_text
from ._sweep import (
    DEFAULT_FIGURE_K,
    DITHER_PAIR,
    QUALITY_TARGETS_DB,
    KResult,
    Sweep,
    dither_name,
    dither_results,
    display_name,
    format_bytes,
    format_psnr,
)

__all__ = ["build_report", "featured_k"]

#: Pixels per inch of the report's figures: sharp on a laptop screen while
#: keeping the file a few MB.
REPORT_DPI = 100

_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #1d1d1f; background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.25em; margin: 1.8em 0 0.5em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.lead { color: #555; margin-top: 0; }
.verdict { display: flex; gap: 16px; flex-wrap: wrap; }
.verdict div { border: 1px solid #ddd; border-radius: 8px; padding: 10px 16px; min-width: 220px; }
.verdict strong { font-size: 1.35em; display: block; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; width: 100%; font-size: 0.93em; }
th, td { padding: 5px 10px; text-align: right; border-bottom: 1px solid #eee; }
th { background: #f5f5f7; border-bottom: 1px solid #ccc; }
td:first-child, th:first-child { text-align: left; }
tr.target td { background: #eef6ee; }
.table-wrap { overflow-x: auto; max-width: 100%; }
.table-wrap table { min-width: 760px; }
.table-wrap td { white-space: nowrap; }
.crops { display: flex; flex-wrap: wrap; gap: 14px; }
.crops figure { margin: 0; }
.crops img { image-rendering: pixelated; border: 1px solid #ddd; display: block; }
.crops figcaption { font-size: 0.85em; margin-top: 3px; }
caption { caption-side: bottom; text-align: left; color: #666; font-size: 0.9em; padding-top: 6px; }
figure { margin: 1.2em 0 2em; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.92em; margin-top: 6px; }
footer { color: #888; font-size: 0.85em; margin-top: 3em; }
"""


#: Side of the 1:1 crops of the report, in pixels.
CROP_SIDE = 192


def crop_box(height: int, width: int, side: int = CROP_SIDE) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the central crop, at most ``side`` a side."""
    h, w = min(side, height), min(side, width)
    top, left = (height - h) // 2, (width - w) // 2
    return top, left, top + h, left + w


def _crops_html(sweep: Sweep) -> str:
    """The centre of the original and of each rebuilt image at 1:1 (one
    image pixel per screen pixel, never resampled), side by side: the
    figure above shrinks the images, these show the quantization as it is."""
    cells = [(f"K = {r.k}", r.compressed.reconstruct()) for r in sweep.results]
    return _crop_cells_html(sweep, cells, "crops")


def _crop_cells_html(sweep: Sweep, cells: list, element_id: str) -> str:
    """The original's crop and those of ``cells`` [(label, pixels)]."""
    import io

    from PIL import Image

    source = sweep.source
    top, left, bottom, right = crop_box(*source.pixels.shape[:2])
    cells = [("original", source.pixels), *cells]
    parts = []
    for label, pixels in cells:
        crop = pixels[top:bottom, left:right]
        if crop.ndim == 3 and crop.shape[2] == 1:
            crop = crop[:, :, 0]
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(crop)).save(buffer, "PNG")
        h, w = crop.shape[:2]
        parts.append(
            f'<figure><img src="{_png_data_url(buffer.getvalue())}" width="{w}" height="{h}" '
            f'alt="{html.escape(label)}, 1:1 crop"><figcaption>{html.escape(label)}</figcaption></figure>'
        )
    return (
        f'<div class="crops" id="{element_id}">\n' + "\n".join(parts) + "\n</div>\n"
        f"<p class=\"lead\">The centre of each image at 1:1 ({right - left} × {bottom - top} pixels from "
        f"({left}, {top})), not resampled.</p>"
    )


def featured_k(sweep: Sweep) -> int:
    """The K the one-K figures (scatter, segments) of a report show: 16 if
    it was tried (few enough clusters to tell apart), else the middle K."""
    if DEFAULT_FIGURE_K in sweep:
        return DEFAULT_FIGURE_K
    return sweep.ks[(len(sweep.ks) - 1) // 2]


def _figure_html(figure_id: str, png: bytes, alt: str, caption: str) -> str:
    return (
        f'<figure id="{figure_id}">\n'
        f'<img src="{_png_data_url(png)}" alt="{html.escape(alt)}">\n'
        f"<figcaption>{caption}</figcaption>\n"
        "</figure>"
    )


def _ratio(value: float) -> str:
    return f"{value:.1f}:1"


def _percent_of(n: int | None, whole: int | None) -> str:
    if n is None or not whole:
        return "–"
    return f"{100 * n / whole:.1f} %"


def _has_alpha_figures(results) -> bool:
    """Whether the image has opaque or fully transparent pixels whose alpha
    the table can say was kept (an image with alpha)."""
    return any(r.metrics.opaque_kept is not None or r.metrics.transparent_kept is not None for r in results)


def _alpha_cell(m) -> str:
    """``opaque / transparent``: the shares still at alpha 255 and at 0."""
    return "<td>" + " / ".join("–" if v is None else _share_text(v) for v in (m.opaque_kept, m.transparent_kept)) + "</td>"


_ALPHA_HEADER = "<th>alpha kept (opaque / transparent)</th>"
_ALPHA_CAPTION = (
    " Alpha kept: the share of the opaque pixels still at alpha 255 and of the fully transparent ones "
    "still at 0 (100 % only when exact)."
)


def _table_html(sweep: Sweep, targets: dict) -> str:
    input_bytes = sweep.source.input_bytes
    first_ks = {k for k in targets.values() if k is not None}
    alpha = _has_alpha_figures(sweep.results)
    rows = []
    for result in sweep.results:
        m = result.metrics
        ssim = "–" if m.ssim is None else f"{m.ssim:.4f}"
        colours = str(result.compressed.k)
        css = ' class="target"' if result.k in first_ks else ""
        rows.append(
            f"<tr{css}><td>{result.k}</td><td>{colours}</td><td>{m.mse:.2f}</td>"
            f"<td>{html.escape(format_psnr(m.psnr))}</td><td>{ssim}</td>"
            f"<td>{m.perceptual_error:.2f}</td><td>{m.perceptual_score:.1f}</td><td>{_ratio(m.ratio_to_1)}</td>"
            f"<td>{result.kmq_bytes:,}</td><td>{_percent_of(result.kmq_bytes, input_bytes)}</td>"
            f"<td>{'–' if result.png_bytes is None else f'{result.png_bytes:,}'}</td>"
            f"<td>{_percent_of(result.png_bytes, input_bytes)}</td>{_alpha_cell(m) if alpha else ''}</tr>"
        )
    input_text = f"{input_bytes:,} B" if input_bytes is not None else "unknown (not read from a file)"
    # The wrapper scrolls sideways on a narrow screen instead of cutting
    # the table's right-hand columns off.
    return (
        '<div class="table-wrap">\n<table>\n<thead><tr><th>K</th><th>colours used</th><th>MSE</th><th>PSNR</th><th>SSIM</th>'
        "<th>perceptual (ΔEok)</th><th>perceptual score</th>"
        "<th>ratio (bits)</th><th>.kmq (B)</th><th>.kmq / input</th><th>indexed PNG (B)</th>"
        "<th>PNG / input</th>" + (_ALPHA_HEADER if alpha else "") + "</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n"
        f"<caption>Input file: {input_text}. MSE in squared 8-bit levels per channel; perceptual: kmq's "
        "mean Oklab difference (ΔEok × 100) after the eye's blur, and its 0–100 score, which "
        "credit dithering where PSNR and SSIM do not; ratio = raw bits ÷ "
        "(index bits + palette bits), as the k-means tutorials count it; indexed PNG holds at most 256 "
        "colours. Shaded: the first K to reach each PSNR level." + (_ALPHA_CAPTION if alpha else "")
        + "</caption>\n</table>\n</div>"
    )


def _verdict_html(sweep: Sweep, targets: dict) -> str:
    input_bytes = sweep.source.input_bytes
    boxes = []
    for target, k in targets.items():
        if k is None:
            best = max(sweep.results, key=lambda r: r.metrics.psnr)
            body = (
                f"<strong>none of the K tried</strong>best: {html.escape(format_psnr(best.metrics.psnr))} "
                f"at K = {best.k}"
            )
        else:
            result = sweep[k]
            size = format_bytes(result.kmq_bytes)
            share = f", {_percent_of(result.kmq_bytes, input_bytes)} of the input" if input_bytes else ""
            body = (
                f"<strong>K = {k}</strong>{html.escape(format_psnr(result.metrics.psnr))}, perceptual "
                f"{result.metrics.perceptual_score:.1f}; .kmq {size}{share}"
            )
        boxes.append(f"<div>PSNR ≥ {target:g} dB first at<br>{body}</div>")
    return '<div class="verdict">\n' + "\n".join(boxes) + "\n</div>"


def _dithering_html(sweep: Sweep, pair: list[KResult], levels, png: bytes) -> str:
    """The section comparing one K at each dithering level: the figure,
    1:1 crops and a table of bytes and quality."""
    k = pair[0].k
    names = [dither_name(level) for level in levels]
    input_bytes = sweep.source.input_bytes
    alpha = _has_alpha_figures(pair)
    rows = []
    for name, result in zip(names, pair):
        m = result.metrics
        ssim = "–" if m.ssim is None else f"{m.ssim:.4f}"
        png_bytes = "–" if result.png_bytes is None else f"{result.png_bytes:,}"
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{result.kmq_bytes:,}</td>"
            f"<td>{_percent_of(result.kmq_bytes, input_bytes)}</td><td>{png_bytes}</td><td>{html.escape(format_psnr(m.psnr))}</td><td>{ssim}</td>"
            f"<td>{m.perceptual_error:.2f}</td><td>{m.perceptual_score:.1f}</td>{_alpha_cell(m) if alpha else ''}</tr>"
        )
    note = ""
    if pair[0].compressed.lossless:
        note = (
            f"<p class=\"lead\">At K = {k} the palette holds every colour of the image: there is no error to "
            "diffuse, and both are the image itself.</p>\n"
        )
    cells = [(f"K = {k}, {name}", result.compressed.reconstruct()) for name, result in zip(names, pair)]
    crops = _crop_cells_html(sweep, cells, "dither-crops")
    figure = _figure_html(
        "fig-dithering",
        png,
        f"K = {k}: {' beside '.join(names)}",
        f"K = {k}, {' and '.join(names)} (Floyd–Steinberg error diffusion; <code>--nofs</code> and "
        "<code>--dither LEVEL</code> in <code>kmq compress</code>). Titles: the bytes of the <code>.kmq</code> file "
        "and the indexed PNG, kmq's perceptual score and the PSNR.",
    )
    return (
        f"{note}{figure}\n{crops}\n"
        '<div class="table-wrap">\n<table id="dither-table">\n<thead><tr><th>K = ' + str(k) + "</th><th>.kmq (B)</th>"
        "<th>.kmq / input</th><th>indexed PNG (B)</th><th>PSNR</th><th>SSIM</th><th>perceptual (ΔEok)</th>"
        "<th>perceptual score</th>" + (_ALPHA_HEADER if alpha else "") + "</tr></thead>\n<tbody>\n"
        + "\n".join(rows) + "\n</tbody>\n"
        "<caption>Dithering places colours so that their local average is the original's. PSNR and SSIM "
        "measure each pixel against the original, kmq's perceptual error what the eye averages; the bytes "
        "are what the less regular indices cost." + (_ALPHA_CAPTION if alpha else "") + "</caption>\n</table>\n</div>"
    )


def build_report(sweep: Sweep, *, dpi: float = REPORT_DPI, on_figure=None) -> str:
    """The report of a sweep as one self-contained HTML page.

    Parameters
    ----------
    sweep : Sweep
        Made with ``with_ssim=True`` for the SSIM column (else it shows –).
        The section on dithering compresses one K (:func:`featured_k`) once
        more, at the level of :data:`DITHER_PAIR` the sweep does not hold.
    dpi : float
        Pixels per inch of the embedded figures.
    on_figure : callable, optional
        Called with each figure's name before it is drawn (for progress).

    Returns
    -------
    str
        The HTML text (UTF-8 when written).
    """
    from .. import __version__
    from ._draw import (
        _draw_compare,
        _draw_compare_dithering,
        _draw_curve,
        _draw_palette,
        _draw_scatter,
        _draw_segments,
        render_figure,
    )

    source = sweep.source
    name = display_name(source)
    height, width = source.pixels.shape[:2]
    ks = sweep.ks
    k_one = featured_k(sweep)
    targets = {target: sweep.first_k_reaching(target) for target in QUALITY_TARGETS_DB}
    first = sweep.results[0].compressed
    colours = (
        f", {first.n_colors_in:,} distinct colour{'' if first.n_colors_in == 1 else 's'}" if first.n_colors_in is not None else ""
    )
    input_text = (
        f", input file {format_bytes(source.input_bytes)}" + (f" ({source.format})" if source.format else "")
        if source.input_bytes is not None
        else ""
    )
    seed = "random seed (not reproducible)" if sweep.seed is None else f"seed {sweep.seed}"
    sample = f", palettes fitted on {sweep.sample:g} of the pixels" if sweep.sample else ""

    def draw(figure_name, draw_function):
        if on_figure is not None:
            on_figure(figure_name)
        figure = draw_function()
        return render_figure(figure, "png", dpi=dpi)

    one = sweep[k_one]
    pair: list[KResult] = []

    def dithering_figure():
        # The one compression the sweep does not hold: k_one at the other level.
        pair.extend(dither_results(sweep, k_one, DITHER_PAIR))
        pair_sweeps = [
            Sweep(source, [result], seed=sweep.seed, sample=sweep.sample, dither=level)
            for result, level in zip(pair, DITHER_PAIR)
        ]
        return _draw_compare_dithering(pair_sweeps, list(DITHER_PAIR))

    dithering_png = draw("dithering", dithering_figure)
    dithering = _dithering_html(sweep, pair, DITHER_PAIR, dithering_png)
    figures = [
        (
            "compare",
            draw("compare", lambda: _draw_compare(sweep)),
            "The original and the image rebuilt for each K",
            "The original beside the image rebuilt from K colours, for each K tried. Titles: K, the "
            "compression ratio in bits, the PSNR against the original and kmq's perceptual score.",
        ),
        (
            "curve",
            draw("curve", lambda: _draw_curve(sweep)),
            "Distortion and size against K",
            "Distortion and size against K. Where the MSE curve flattens (the elbow), more colours buy "
            "little quality; the PSNR panel marks the first K reaching 30 and 35 dB, and shows kmq's "
            "perceptual score (0–100, right-hand axis) beside it.",
        ),
        (
            "palette",
            draw(
                "palette",
                lambda: _draw_palette([(r.k, r.compressed) for r in sweep.results], name=name),
            ),
            "The palettes as swatches",
            "Each palette, colours ordered from dark to light, each as wide as its share of the pixels.",
        ),
        (
            "scatter",
            draw(
                "scatter",
                lambda: _draw_scatter(source, one.compressed, seed=sweep.seed, sample_size=3000, name=name),
            ),
            f"Pixels in RGB space with the K = {k_one} centroids",
            f"A sample of the pixels in RGB space with the {one.compressed.k} centroids k-means found for "
            f"K = {k_one}; right, each pixel in the colour of its centroid.",
        ),
        (
            "segments",
            draw("segments", lambda: _draw_segments(source, one.compressed, name=name)),
            f"The K = {k_one} clusters as a segmentation",
            f"The K = {k_one} clusters as a segmentation: each cluster in a colour of its own, and in its "
            "mean colour.",
        ),
    ]
    figure_html = "\n".join(
        _figure_html(f"fig-{figure_name}", png, alt, caption) for figure_name, png, alt, caption in figures
    )
    ks_text = ", ".join(str(k) for k in ks)
    command = f"kmq report {name} -k {' '.join(str(k) for k in ks)}"
    if isinstance(sweep.seed, (int, np.integer)):
        command += f" --seed {sweep.seed}"
    if sweep.sample:
        command += f" --sample {sweep.sample:g}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="kmq {html.escape(__version__)}">
<title>kmq report: {html.escape(name)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>kmq report: {html.escape(name)}</h1>
<p class="lead">{width} × {height} {html.escape(source.mode)}, {width * height:,} pixels{colours}{html.escape(input_text)}.<br>
k-means colour quantization for K = {ks_text}; {html.escape(seed)}{html.escape(sample)}.</p>
<h2>Which K?</h2>
{_verdict_html(sweep, targets)}
<h2>Quality and size for each K</h2>
{_table_html(sweep, targets)}
<h2>Up close: 1:1 crops</h2>
{_crops_html(sweep)}
<h2>Dithered or not, at K = {k_one}</h2>
{dithering}
<h2>Figures</h2>
{figure_html}
<footer>Made with kmq {html.escape(__version__)}: <code>{html.escape(command)}</code></footer>
</main>
</body>
</html>
"""
