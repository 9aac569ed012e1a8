"""The ``kmq plot`` and ``kmq report`` subcommands.

Added to the parser by :func:`kmq._cli._main.build_parser`; they share its
parser class, quiet/verbose options and error handling (one line
on stderr, exit code by error type). matplotlib is imported only when a
figure is drawn, never to build the parser.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

from .._errors import OutputError, UsageError
from .._io import DEFAULT_MAX_PIXELS
from ._args import _add_common, _fraction, _k_value, _max_pixels, _Parser, _positive_int, progress_for, short_name

__all__ = ["register_plot", "register_report"]

_FIGURE_HELP = {
    "compare": (
        "the original beside the image rebuilt for each K",
        "The original beside the image rebuilt for several K, each titled with K, the compression "
        "ratio, PSNR and kmq's perceptual score (0-100, after the eye's blur). With --dither-both, each K "
        "undithered beside dithered, with the bytes and perceptual score of each. Default K: 2 4 16 64.",
    ),
    "scatter": (
        "pixels in 3-D RGB space with the palette's centroids",
        "A sample of the pixels in 3-D RGB space, each in its own colour, with the K centroids; a second "
        "panel shows each pixel in its centroid's colour. Default K: 16.",
    ),
    "segments": (
        "the cluster labels as a segmentation",
        "The image, its cluster labels (one colour per cluster) and each cluster in its mean colour. "
        "Default K: 16.",
    ),
    "palette": (
        "the palette as swatches sized by pixel share",
        "The palette as swatches ordered by luminance, each as wide as its share of the pixels; one row "
        "per K. Default K: 16.",
    ),
    "curve": (
        "MSE, PSNR and file size against K (choose K here)",
        "Distortion (MSE, PSNR) and size (bits per pixel, .kmq and indexed-PNG bytes) against K on a "
        "log-2 axis: the elbow to read when choosing K. Default K: 2 4 8 16 32 64 128 256.",
    ),
}

_SEED_HELP = "k-means seed (default 0, so the same command gives the same result)"


def _add_figure_options(parser: argparse.ArgumentParser, *, default_output: str, many_ks: bool) -> None:
    parser.add_argument(
        "input",
        nargs="?",
        metavar="INPUT",
        help="image file, http(s) URL, or - for stdin (default: the photograph shipped with kmq)",
    )
    parser.add_argument(
        "-k",
        "--colors",
        dest="ks",
        type=_k_value,
        nargs="+" if many_ks else None,
        metavar="K",
        help="numbers of colours, e.g. -k 2 4 16 64 (put INPUT before -k)" if many_ks else "number of colours",
    )
    parser.add_argument("-o", "--output", metavar="OUTPUT", help=f"output file (default: {default_output} in the current folder)")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--seed", type=int, default=0, help=_SEED_HELP)
    parser.add_argument("--sample", type=_fraction, metavar="FRACTION", help="fit each palette on this fraction of the pixels (faster)")
    parser.add_argument("--dpi", type=_positive_int, default=100, help="pixels per inch of PNG figures (default 100)")
    parser.add_argument(
        "--max-pixels",
        type=_max_pixels,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse images with more pixels (default {DEFAULT_MAX_PIXELS}; 0 = no limit)",
    )
    _add_common(parser)


def register_plot(commands) -> None:
    """Add ``kmq plot FIGURE ...`` to the subcommands."""
    plot = commands.add_parser(
        "plot",
        help="draw a figure of the quantization (PNG or SVG)",
        description="Draw one of the figures of k-means colour quantization, as PNG or SVG (by the output's "
        "extension). Example: kmq plot compare photo.jpg -k 2 3 6 16 -o compare.png",
    )
    figures = plot.add_subparsers(dest="figure", metavar="FIGURE", parser_class=_Parser, required=True)
    plot.subcommands = figures
    for name, (short_help, description) in _FIGURE_HELP.items():
        parser = figures.add_parser(name, help=short_help, description=description)
        many_ks = name in ("compare", "palette", "curve")
        _add_figure_options(parser, default_output=f"<input stem>-{name}.png", many_ks=many_ks)
        if name == "scatter":
            parser.add_argument("--points", type=_positive_int, default=3000, metavar="N", help="pixels drawn (default 3000)")
        if name == "compare":
            parser.add_argument(
                "--dither-both", action="store_true",
                help="show each K undithered beside dithered (kmq's default level), one row per K",
            )
        parser.set_defaults(run=_run_plot)


def register_report(commands) -> None:
    """Add ``kmq report ...`` to the subcommands."""
    report = commands.add_parser(
        "report",
        help="write an HTML report: figures and a table of quality and size per K",
        description="Compress an image for several K and write one self-contained HTML file (figures "
        "embedded, no network needed): the figures of 'kmq plot', a table of MSE, PSNR, SSIM, kmq's "
        "perceptual error and score, ratio and bytes per K, one K undithered beside dithered, and the first "
        "K that reaches PSNR 30 and 35 dB. Default K: 2 4 8 16 32 64 128 256.",
    )
    _add_figure_options(report, default_output="<input stem>-report.html", many_ks=True)
    report.set_defaults(run=_run_report)


def _part_of(bar, index: int, parts: int):
    """The progress callback of sweep ``index`` of ``parts`` sweeps of the
    same Ks, shown on one bar: its Ks count after the earlier sweeps'."""

    def progress(done, total, k):
        if k is None and index < parts - 1:
            return  # not the end of the whole yet
        bar(index * total + done, parts * total, k)

    return progress


# -- running --------------------------------------------------------------------


def _source_and_output(args, default_suffix: str):
    """(input argument, output path): INPUT defaults to the shipped photo,
    OUTPUT to ``<stem>-<suffix>`` in the current folder; an existing output
    without --force is refused before any work."""
    from .. import _io
    from ..plot._sweep import default_output_stem

    source_arg = args.input if args.input is not None else str(_io.sample_image_path())
    output = args.output or f"{default_output_stem(args.input)}-{default_suffix}"
    if output == "-":
        raise OutputError("figures and reports are written to files, not stdout; give -o NAME.png, .svg or .html")
    _io.check_output(output, force=args.force)  # fail before computing anything
    return source_arg, output


def _require_plot_extra(command: str) -> None:
    """Exit 2 with the install line when matplotlib is missing."""
    try:
        import kmq.plot  # noqa: F401
    except ImportError:
        raise UsageError(f"kmq {command} draws with matplotlib, which comes with the plot extra: pip install 'kmq[plot]'") from None


def _run_plot(args) -> int:
    _require_plot_extra("plot")
    from .. import _io
    from .._quantize import compress
    from ..plot._sweep import (
        DEFAULT_COMPARE_KS,
        DEFAULT_FIGURE_K,
        DEFAULT_SWEEP_KS,
        DITHER_PAIR,
        check_ks,
        display_name,
        run_sweep,
    )
    from ..plot._draw import _draw_compare_dithering, compare, curve, figure_format, palette, render_figure, scatter, segments

    figure = args.figure
    source_arg, output = _source_and_output(args, f"{figure}.png")
    fmt = figure_format(output)
    options = {"seed": args.seed, "sample": args.sample}

    # The K are computed here, with the progress shown, and the figure
    # drawn from them: the same results as the figure's own computing.
    ks = None
    if figure in ("compare", "curve") or (figure == "palette" and args.ks):
        ks = check_ks(args.ks or (DEFAULT_COMPARE_KS if figure == "compare" else DEFAULT_SWEEP_KS))
    both = figure == "compare" and args.dither_both
    levels = DITHER_PAIR if both else (None,)
    with progress_for(args, total=len(ks) * len(levels) if ks else None, unit="K") as bar:
        bar.stage(f"reading {short_name(source_arg)}")
        source = _io.read_image(source_arg, max_pixels=args.max_pixels)
        if both:
            # Undithered and dithered, one bar over both sweeps.
            sweeps = [
                run_sweep(source, ks, progress=_part_of(bar, i, len(levels)), dither=level, **options)
                for i, level in enumerate(levels)
            ]
        elif ks:
            # The palette figure needs no metrics: its K are only compressed.
            data = run_sweep(source, ks, progress=bar, measure=figure != "palette", **options)
        else:
            data = compress(source, args.ks or DEFAULT_FIGURE_K, progress=bar.stage, **options)
        bar.stage(f"drawing {figure}")
        if both:
            fig = _draw_compare_dithering(sweeps, list(levels))
        elif figure in ("compare", "curve"):
            fig = (compare if figure == "compare" else curve)(data)
        elif figure == "palette":
            fig = palette(data, ks=args.ks)
        elif figure == "scatter":
            fig = scatter(data, k=args.ks, sample_size=args.points, seed=args.seed)
        else:
            fig = segments(data, k=args.ks)
        data = render_figure(fig, fmt, dpi=args.dpi)
    _io.write_atomic(output, data, force=args.force, inputs=(source.path,))
    if not args.quiet:
        if fmt == "png":
            width, height = struct.unpack(">II", data[16:24])  # from the IHDR chunk
            size = f"{width} x {height} px"
        else:
            width, height = fig.get_size_inches() * 72
            size = f"{round(width)} x {round(height)} pt"
        print(f"kmq: {display_name(source)} -> {output} ({figure}, {fmt.upper()}, {size}, {len(data):,} B)")
    return 0


def _run_report(args) -> int:
    _require_plot_extra("report")
    from .. import _io
    from ..plot._sweep import DEFAULT_SWEEP_KS, QUALITY_TARGETS_DB, check_ks, display_name, format_bytes
    from ..plot._report import build_report
    from ..plot import sweep

    source_arg, output = _source_and_output(args, "report.html")
    if Path(output).suffix.lower() not in (".html", ".htm"):
        raise OutputError(f"the report is an HTML file: give an output name ending in .html, got {output}")
    ks = check_ks(args.ks or DEFAULT_SWEEP_KS)

    with progress_for(args, total=len(ks), unit="K") as bar:
        bar.stage(f"reading {short_name(source_arg)}")
        source = _io.read_image(source_arg, max_pixels=args.max_pixels)
        data = sweep(source, ks, seed=args.seed, sample=args.sample, with_ssim=True, progress=bar)
        page = build_report(data, dpi=args.dpi, on_figure=lambda name: bar.stage(f"drawing {name}"))
    encoded = page.encode("utf-8")
    _io.write_atomic(output, encoded, force=args.force, inputs=(source.path,))
    if not args.quiet:
        print(f"kmq: {display_name(source)} -> {output} (report on {len(data)} K, {format_bytes(len(encoded))})")
        for target in QUALITY_TARGETS_DB:
            first = data.first_k_reaching(target)
            reached = f"K = {first}" if first is not None else "none of the K tried"
            print(f"  PSNR >= {target:g} dB first at {reached}")
    return 0

