"""The ``kmq plot`` and ``kmq report`` subcommands.

Added to the parser by :func:`kmq._cli._main.build_parser`; they share its
parser class, quiet/verbose options and error handling (one line
on stderr, exit code by error type). matplotlib is imported only when a
figure is drawn, never to build the parser.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

from .._errors import OutputError, UsageError
from .._io import DEFAULT_MAX_PIXELS
from ._args import _add_common, _fraction, _k_value, _max_pixels, _Parser, _positive_int

__all__ = ["register_plot", "register_report", "ProgressBar"]

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




# -- progress -------------------------------------------------------------------


class ProgressBar:
    """``[#####.....] 3/8 K=16`` on one terminal line, redrawn in place.

    Draws nothing unless ``enabled`` (the CLI enables it when stderr is a
    terminal and -q was not given). Use as the ``progress`` callback of a
    sweep; :meth:`close` erases the line.
    """

    width = 20

    def __init__(self, stream, enabled: bool):
        self.stream = stream
        self.enabled = enabled
        self._shown = 0
        self._done = 0
        self._total = 0

    def _draw(self, text: str) -> None:
        if not self.enabled:
            return
        filled = round(self.width * self._done / self._total) if self._total else 0
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {self._done}/{self._total} {text}"
        # Pad with spaces to wipe the end of a longer previous line.
        self.stream.write("\r" + line.ljust(self._shown))
        self.stream.flush()
        self._shown = len(line)

    def __call__(self, done: int, total: int, k) -> None:
        self._done, self._total = done, total
        self._draw(f"K={k}" if k is not None else "done")

    def stage(self, text: str) -> None:
        """Show ``text`` after the bar (e.g. "drawing curve")."""
        self._draw(text)

    def close(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0


def _part_of(bar: ProgressBar, index: int, parts: int):
    """The progress callback of part ``index`` of ``parts`` equal sweeps
    shown on one bar: its Ks count after the earlier parts'."""

    def progress(done, total, k):
        if k is None and index < parts - 1:
            return  # not the end of the whole yet
        bar(index * total + done, parts * total, k)

    return progress


def _progress_bar(args) -> ProgressBar:
    stderr = sys.stderr
    enabled = not args.quiet and hasattr(stderr, "isatty") and stderr.isatty()
    return ProgressBar(stderr, enabled)


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
    from ..plot._sweep import display_name
    from ..plot._draw import compare, curve, figure_format, palette, render_figure, scatter, segments, sweep

    figure = args.figure
    source_arg, output = _source_and_output(args, f"{figure}.png")
    fmt = figure_format(output)
    source = _io.read_image(source_arg, max_pixels=args.max_pixels)
    options = {"seed": args.seed, "sample": args.sample}

    bar = _progress_bar(args)
    try:
        if figure == "compare" and args.dither_both:
            from ..plot._draw import _draw_compare_dithering
            from ..plot._sweep import DEFAULT_COMPARE_KS, DITHER_PAIR

            ks = args.ks or DEFAULT_COMPARE_KS
            sweeps = [
                sweep(source, ks, progress=_part_of(bar, i, len(DITHER_PAIR)), dither=level, **options)
                for i, level in enumerate(DITHER_PAIR)
            ]
            bar.stage(f"drawing {figure}")
            fig = _draw_compare_dithering(sweeps, list(DITHER_PAIR))
        elif figure in ("compare", "curve"):
            from ..plot._sweep import DEFAULT_COMPARE_KS, DEFAULT_SWEEP_KS

            ks = args.ks or (DEFAULT_COMPARE_KS if figure == "compare" else DEFAULT_SWEEP_KS)
            data = sweep(source, ks, progress=bar, **options)
            bar.stage(f"drawing {figure}")
            fig = (compare if figure == "compare" else curve)(data)
        elif figure == "palette":
            fig = palette(source, ks=args.ks, **options)
        elif figure == "scatter":
            fig = scatter(source, k=args.ks, sample_size=args.points, **options)
        else:
            fig = segments(source, k=args.ks, **options)
        data = render_figure(fig, fmt, dpi=args.dpi)
    finally:
        bar.close()
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
    from ..plot._sweep import DEFAULT_SWEEP_KS, QUALITY_TARGETS_DB, display_name, format_bytes
    from ..plot._report import build_report
    from ..plot import sweep

    source_arg, output = _source_and_output(args, "report.html")
    if Path(output).suffix.lower() not in (".html", ".htm"):
        raise OutputError(f"the report is an HTML file: give an output name ending in .html, got {output}")
    source = _io.read_image(source_arg, max_pixels=args.max_pixels)
    ks = args.ks or DEFAULT_SWEEP_KS

    bar = _progress_bar(args)
    try:
        data = sweep(source, ks, seed=args.seed, sample=args.sample, with_ssim=True, progress=bar)
        page = build_report(data, dpi=args.dpi, on_figure=lambda name: bar.stage(f"drawing {name}"))
    finally:
        bar.close()
    encoded = page.encode("utf-8")
    _io.write_atomic(output, encoded, force=args.force, inputs=(source.path,))
    if not args.quiet:
        print(f"kmq: {display_name(source)} -> {output} (report on {len(data)} K, {format_bytes(len(encoded))})")
        for target in QUALITY_TARGETS_DB:
            first = data.first_k_reaching(target)
            reached = f"K = {first}" if first is not None else "none of the K tried"
            print(f"  PSNR >= {target:g} dB first at {reached}")
    return 0

