"""The ``kmq`` command: its parser, its error handling, and compress, decompress, info.

Options follow pngquant where they overlap (``-o/--output``, ``-f/--force``,
``--skip-if-larger``, ``-q/-v``, ``-`` for stdin/stdout). The work is done by
the library; this module parses, reports and maps errors to exit codes:
one line on stderr, never a traceback (``-v`` shows it for internal errors).

Exit codes (README.md, "Exit codes"):
0 success · 1 internal error · 2 usage · 3 input unreachable · 4 not a valid
image or .kmq · 5 output cannot be written · 6 image over the pixel limit · 7 out of memory ·
98 output larger than input with --skip-if-larger · 99 quality below --quality MIN · 130 interrupted (Ctrl-C) ·
143 terminated (SIGTERM). Interrupted or terminated, kmq removes its
temporary file: no partial output is left. Several inputs, a folder or a
batch option (-j, -r, --ext, --manifest, --resume, --scheduler, --palette)
make a batch: kmq.batch runs it and _batch.py reports it; a file that fails
is reported and the others go on; the exit code is the first failure's (98
if files were only skipped).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

from .._errors import EXIT_INTERNAL, EXIT_INTERRUPTED, KmqError, OutputError, UsageError
from .._engine._parallel import threads_limited
from ._args import (
    ask_k as _ask_k,
    engine_options,
    _add_common,
    _add_output,
    _dither_level,
    _fraction,
    _quality_range,
    _speed,
    _Help,
    _k_value,
    _non_negative_float,
    _Parser,
    _positive_int,
    _seed_value,
    progress_for,
    short_name,
)
from ..batch import measure_written, result_notes
from ._batch import add_batch_options, is_batch, register_palette, run_batch
from ._figures import register_plot, register_report
from ._serve import register_serve

__all__ = ["main", "build_parser", "EXIT_SKIPPED"]

#: --skip-if-larger and the output would be larger than the input (as pngquant).
EXIT_SKIPPED = 98
#: SIGTERM, as a shell reports it (128 + 15).
EXIT_TERMINATED = 143
#: Out of memory (reading, quantizing or decompressing).
EXIT_OUT_OF_MEMORY = 7

from ._args import _PROG


def build_parser() -> argparse.ArgumentParser:
    """The ``kmq`` argument parser (subcommands compress, decompress, info)."""
    from .. import __version__
    from .._quantize import DEFAULT_DITHER, DEFAULT_MAX_ITER, DEFAULT_SEED, DEFAULT_SPACE, DEFAULT_SPEED

    parser = _Parser(
        prog=_PROG,
        description="Compress images by k-means colour quantization.",
        epilog="Exit codes: 0 ok, 1 internal error, 2 usage, 3 input unreachable, 4 invalid image or .kmq, "
        "5 output not written, 6 over the pixel limit, 7 out of memory, 98 skipped (--skip-if-larger), 99 below --quality MIN, 130 interrupted, "
        "143 terminated. With several inputs: the first failure's code.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"kmq {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser.subcommands = commands

    compress = commands.add_parser(
        "compress",
        help="quantize an image to K colours and save it",
        description="Quantize images to K colours by k-means and save them (.kmq by default) as "
        "<stem>-k<K>.<format> in the current folder, or -o. Without INPUT, compresses the photograph "
        "shipped with kmq. With several inputs (or a folder), a file that fails does not stop the others.",
        formatter_class=_Help,
    )
    compress.add_argument(
        "input",
        nargs="*",
        metavar="INPUT",
        help="image files, folders (their images), http(s) URLs, or - for stdin; with several, "
        "each goes to its default name, in the folder given by -o if any",
    )
    compress.add_argument("-k", "--colors", dest="k", type=_k_value, metavar="K", help="number of colours, 1..65536 (asked for on a terminal; 16 otherwise)")
    _add_output(compress)
    compress.add_argument(
        "--seed", type=_seed_value, default=None,
        help=f"random seed (default {DEFAULT_SEED}: the same input and options give the same bytes every run)",
    )
    compress.add_argument(
        "--space", choices=["oklab", "lab", "rgb"], default=DEFAULT_SPACE,
        help="colour space of k-means and of the mapping to the palette",
    )
    dither = compress.add_mutually_exclusive_group()
    dither.add_argument(
        "--dither", type=_dither_level, default=None, metavar="LEVEL",
        help=f"Floyd-Steinberg dithering level, 0 (none) to 1 (full); default {DEFAULT_DITHER:g} (0 at --speed 11)",
    )
    dither.add_argument("--nofs", dest="dither", action="store_const", const=0.0, help="no dithering (same as --dither 0)")
    compress.add_argument("--sample", type=_fraction, metavar="FRACTION", help="fit the palette on this fraction of the pixels")
    compress.add_argument(
        "--quality", type=_quality_range, metavar="MIN-MAX",
        help="use the fewest colours (at most K, 256 by default) reaching quality MAX (0-100, kmq's scale); "
        "if even K colours fall short of MIN, write nothing and exit 99",
    )
    compress.add_argument(
        "--speed", type=_speed, default=DEFAULT_SPEED, metavar="N",
        help="1 (slowest, best) to 11 (fastest): sets --n-init and --tol unless given (11 also --nofs)",
    )
    compress.add_argument("--n-init", type=_positive_int, default=None, metavar="N", help="k-means runs, the best kept")
    compress.add_argument("--max-iter", type=_positive_int, default=DEFAULT_MAX_ITER, metavar="N", help="maximum k-means iterations")
    compress.add_argument("--tol", type=_non_negative_float, default=None, help="k-means convergence tolerance (relative to the colour variance)")
    compress.add_argument("--init", choices=["k-means++", "random"], default="k-means++", help="k-means seeding")
    compress.add_argument("--skip-if-larger", action="store_true", help="write nothing (exit 98) if the output is larger than the input file")
    compress.add_argument("--json", action="store_true", help="print the report as JSON")
    add_batch_options(compress)
    compress.add_argument("--strip", action="store_true", help="leave the input's ICC colour profile out of the output")
    _add_effort(compress)
    _add_common(compress)
    compress.set_defaults(run=_run_compress)

    decompress = commands.add_parser(
        "decompress",
        formatter_class=_Help,
        help="restore a .kmq file to PNG, GIF, WebP, JPEG, BMP or TIFF",
        description="Restore a .kmq file. Default output: <stem>.png (<stem>.tif when K > 256) in the current folder.",
    )
    decompress.add_argument("input", metavar="INPUT", help=".kmq file, URL, or - for stdin")
    _add_output(decompress)
    _add_effort(decompress)
    _add_common(decompress)
    decompress.set_defaults(run=_run_decompress)

    info = commands.add_parser(
        "info",
        help="print the header of a .kmq file and check its CRC",
        description="Print the header of a .kmq file and check its CRC-32 (exit 4 if the file is damaged).",
    )
    info.add_argument("input", metavar="INPUT", help=".kmq file, URL, or - for stdin")
    info.add_argument("--json", action="store_true", help="print as JSON")
    info.set_defaults(run=_run_info)

    register_palette(commands)
    register_plot(commands)
    register_report(commands)
    register_serve(commands)
    return parser


class _Terminated(Exception):
    """SIGTERM, raised in the main thread so that cleanup (``finally``) runs."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run the ``kmq`` command; return its exit code."""
    try:
        previous_handler = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        previous_handler = None
    try:
        return _main(argv)
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


def _main(argv: list[str] | None) -> int:
    verbose = False
    command = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        verbose = getattr(args, "verbose", False)
        command = args.command
        if args.command is None:
            parser.print_help(sys.stderr)
            return UsageError.exit_code
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = args.run(args)
        if not getattr(args, "quiet", False):
            for warning in caught:
                if issubclass(warning.category, (UserWarning, RuntimeWarning)):
                    print(f"kmq: warning: {warning.message}", file=sys.stderr)
        _flush_stdout()
        return code
    except KmqError as exc:
        if isinstance(exc, OutputError) and "standard output" in str(exc):
            _silence_stdout()
        print(f"kmq: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kmq: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        print("kmq: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except BrokenPipeError:
        # The reader of our stdout went away (e.g. `kmq info x.kmq | head -0`).
        _silence_stdout()
        print("kmq: error: cannot write to standard output: the reader closed the pipe", file=sys.stderr)
        return OutputError.exit_code
    except MemoryError:
        if command == "decompress":
            message = "out of memory while decompressing: the image the file declares does not fit in memory"
        else:
            message = "out of memory; try --sample or a smaller image"
        print(f"kmq: error: {message}", file=sys.stderr)
        return EXIT_OUT_OF_MEMORY
    except OSError as exc:
        if exc.errno in _STDOUT_ERRNOS:
            # print() of a report to a full or closed stdout.
            _silence_stdout()
            print(f"kmq: error: cannot write to standard output: {exc.strerror or exc}", file=sys.stderr)
            return OutputError.exit_code
        return _internal_error(exc, verbose)
    except Exception as exc:  # a bug: still one line unless -v
        return _internal_error(exc, verbose)


def _internal_error(exc: BaseException, verbose: bool) -> int:
    if verbose:
        traceback.print_exc()
    print(f"kmq: internal error: {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr)
    return EXIT_INTERNAL


#: OSErrors that writing the report to stdout gives: full device, closed
#: descriptor, I/O error, quota.
_STDOUT_ERRNOS = frozenset({28, 9, 5, 122})


def _flush_stdout() -> None:
    """Flush the report now, so that a failing stdout is an error with an
    exit code, not a message from the interpreter at exit."""
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise OutputError("cannot write to standard output: the reader closed the pipe") from None
    except (OSError, ValueError) as exc:
        raise OutputError(f"cannot write to standard output: {getattr(exc, 'strerror', None) or exc}") from None


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null, so that the interpreter's last flush of
    what could not be written fails quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


# -- compress ---------------------------------------------------------------


def _default_output(input_name: str | None, k: int, fmt: str | None) -> str:
    if input_name in (None, ""):
        stem = "kodim23"
    elif input_name.startswith(("http://", "https://")):
        stem = Path(input_name.split("?")[0].rstrip("/")).stem or "download"
    else:
        stem = Path(input_name).stem
    extension = {"jpg": "jpg", "tif": "tif"}.get(fmt or "kmq", fmt or "kmq")
    return f"{stem}-k{k}.{extension}"


def _add_effort(parser: argparse.ArgumentParser) -> None:
    from .. import _io

    parser.add_argument(
        "-O", "--effort", type=int, choices=sorted(_io.PNG_EFFORTS), default=_io.DEFAULT_PNG_EFFORT,
        metavar="N",
        help=f"PNG compression effort 0..{_io.MAX_PNG_EFFORT} (1: zlib level 6, 9 too on flat graphics; 2: level 9; "
        f"{_io.MAX_PNG_EFFORT}: oxipng's strongest preset, needs pip install 'kmq[png]')",
    )


def _run_compress(args) -> int:
    from .. import _io
    from .._quantize import DEFAULT_K

    names = args.input
    if not is_batch(args, names):
        started = _process_start()
        name = names[0] if names else None
        k = args.k
        if k is None and args.quality is not None:
            k = 256  # the quality search picks K, as pngquant, up to 256
        if k is None:
            k = _ask_k() if name != "-" and sys.stdin.isatty() else DEFAULT_K
        output = args.output
        # The demo (no INPUT, no -o) replaces its own earlier output, so
        # that README's first command can be run again.
        demo = name is None and output is None
        if output is None:
            output = "-" if name == "-" else _default_output(name, k, args.format)
        elif (folder := _output_folder(output)) is not None:
            # -o FOLDER, as with several inputs: the default name in it.
            output = str(folder / _default_output(name, k, args.format))
        fmt = _io.format_for_path(output, override=args.format or ("kmq" if output == "-" else None))
        _check_k_fits(fmt, k)
        if output == "-":
            _refuse_terminal(args)
        # A status line naming the stage, on a terminal, if the run lasts over a second.
        label = f"kmq: {short_name(name if name is not None else str(_io.sample_image_path()))}"
        with progress_for(args, label=label) as status, threads_limited(args.jobs):
            code, payload, _, _ = _compress_one(
                args, name, k, output, fmt, started, print_json=False, force=args.force or demo, status=status
            )
        if payload is not None:
            # One input or several: --json prints a list of reports.
            print(json.dumps([payload], indent=2), file=sys.stderr if output == "-" else sys.stdout)
        return code
    return run_batch(args, names)


def _process_start() -> float:
    """When this process started, on the ``time.perf_counter`` clock
    (Linux: from /proc, so interpreter start-up and imports count; else
    now)."""
    now = time.perf_counter()
    try:
        with open("/proc/self/stat", "rb") as stat, open("/proc/uptime", "rb") as uptime:
            # Field 22, after the parenthesised command name: start time in
            # clock ticks since boot.
            start_ticks = int(stat.read().rsplit(b")", 1)[1].split()[19])
            booted_for = float(uptime.read().split()[0])
        return now - max(0.0, booted_for - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return now


def _output_folder(output: str | None) -> Path | None:
    """``-o`` as a folder: an existing one, or a name ending in ``/``
    (created, with its parents, if missing). None when ``-o`` is a file."""
    if output is None or output == "-":
        return None
    folder = Path(output)
    if output.endswith(("/", os.sep)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {output}: {exc.strerror or exc}") from None
        if not folder.is_dir():
            raise OutputError(f"cannot use {output} as the output folder: it is not a folder")
        return folder
    return folder if folder.is_dir() else None


def _refuse_terminal(args) -> None:
    """Binary data is not written to a terminal (as gzip refuses), unless -f."""
    if args.force or sys.stdout is None:
        return
    try:
        terminal = sys.stdout.isatty()
    except (OSError, ValueError):
        return
    if terminal:
        raise OutputError(
            "refusing to write binary image data to a terminal; redirect stdout (> file), give -o FILE, "
            "or use -f to force it"
        )


def _check_k_fits(fmt: str, k: int) -> None:
    from .. import _io

    if fmt in _io.PALETTE_FORMATS and k > 256:
        raise OutputError(f"{fmt.upper()} holds at most 256 colours, got -k {k}; use a .kmq output for K > 256")


def _compress_one(args, name: str | None, k: int, output: str, fmt: str, started: float, *, print_json: bool = True, force: bool | None = None, status=None):
    """Compress one image (``name`` None: the shipped sample) to ``output``
    and report it (unless ``-q``; with ``--json`` and not ``print_json``,
    the payload is returned instead of printed). ``started``: when the
    reported time starts (the process start for a single image).
    ``force``: overwrite an existing output (default ``args.force``).
    ``status``: a kmq._progress.Progress shown the stages, closed before
    the report is printed.

    Returns
    -------
    (exit code, JSON payload or None, input file bytes or None, bytes written)
    """
    from .. import _io
    from .._quantize import compress

    force = args.force if force is None else force
    say = status.stage if status is not None else (lambda stage: None)
    source_arg = name if name is not None else str(_io.sample_image_path())
    say("reading")
    source = _io.read_image(source_arg, max_pixels=args.max_pixels, max_input_bytes=args.max_input_bytes, timeout=args.timeout)
    if name is None:
        source.name = f"{Path(source_arg).name} (the sample photograph shipped with kmq)"
    if output != "-":  # fail before the k-means, not after
        _io.check_output(output, force=force, inputs=(source.path,))

    result = compress(source, k, seed=args.seed, max_iter=args.max_iter, init=args.init, progress=say, **engine_options(args))
    say(f"encoding {fmt.upper()}")
    data = result.to_bytes(fmt, alpha_threshold=args.alpha_threshold, strip=args.strip, effort=args.effort)
    skipped = args.skip_if_larger and source.input_bytes is not None and len(data) > source.input_bytes
    if not skipped:
        say("writing")
        _io.write_atomic(output, data, force=force, inputs=(source.path,))
    report_stream = sys.stderr if output == "-" else sys.stdout
    payload = None
    if args.json or not args.quiet:
        # The report's time is the whole run, its measuring included.
        say("measuring")
        metrics = measure_written(result, data, fmt)
        total = time.perf_counter() - started
    if status is not None:
        status.close()  # before the report is printed
    if args.json:
        payload = _compress_json(result, metrics, source_arg, output, fmt, len(data), total, skipped)
        if print_json:
            print(json.dumps(payload, indent=2), file=report_stream)
    elif not args.quiet:
        _print_compress_report(result, metrics, source, output, fmt, len(data), total, skipped, report_stream)
    if skipped:
        if not args.quiet and not args.json:
            print(
                f"kmq: skipped: the output would be {len(data):,} bytes, larger than the input's {source.input_bytes:,}",
                file=sys.stderr,
            )
        return EXIT_SKIPPED, payload, source.input_bytes, 0
    return 0, payload, source.input_bytes, len(data)


def _compress_json(result, metrics, input_name, output, fmt, output_bytes, total, skipped) -> dict:
    """One image's ``--json`` record: the shape of a batch's records
    (kmq.batch: the manifest's fields, ``exit_code`` and the details)."""
    from ..batch import describe

    details = describe(result, fmt, output_bytes, metrics)
    return {
        "input": input_name,
        "output": None if skipped else output,
        "k": result.k,
        "bytes_in": result.source.input_bytes if result.source is not None else None,
        "bytes_out": output_bytes,
        "psnr": details["metrics"]["psnr"],
        "seconds": total,
        "status": "skipped" if skipped else "ok",
        "error": "",
        "exit_code": EXIT_SKIPPED if skipped else 0,
        **details,
    }


def _fmt_bytes(n: int | None) -> str:
    return "-" if n is None else f"{n:,} B"


def _alpha_row(metrics) -> list:
    """The report's ``alpha`` row (none for images without alpha, or
    without opaque and fully transparent pixels)."""
    # Imported here: kmq.metrics is loaded only when something is measured
    # (not for -q, decompress or info).
    from ..metrics import _share_text

    parts = []
    if metrics.opaque_kept is not None:
        parts.append(f"opaque kept at 255: {_share_text(metrics.opaque_kept)}")
    if metrics.transparent_kept is not None:
        parts.append(f"transparent kept at 0: {_share_text(metrics.transparent_kept)}")
    return [("alpha", ", ".join(parts))] if parts else []


def _counted(n: int, noun: str) -> str:
    """``1 colour``, ``16 colours``, ``4,096 pixels``."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _print_compress_report(result, metrics, source, output, fmt, output_bytes, total, skipped, stream) -> None:
    channel_names = {"L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA"}[result.mode]
    per_channel = "  ".join(f"{name} {value:.2f}" for name, value in zip(channel_names, metrics.mse_per_channel))
    psnr = "inf (identical)" if math.isinf(metrics.psnr) else f"{metrics.psnr:.2f} dB"
    ssim = "-" if metrics.ssim is None else f"{metrics.ssim:.4f}"
    distinct = f", {_counted(result.n_colors_in, 'distinct colour')}" if result.n_colors_in is not None else ""
    if result.lossless:
        fit = "lossless: every distinct colour kept"
    else:
        fit = f"k-means in {result.space}, {_counted(result.n_iter, 'iteration')}, seed {result.seed}"
        if result.dither:
            fit += f", dithered {result.dither:g}"
        if result.sample is not None:
            fit += f", fitted on {result.sample:g} of the pixels"
    output_name = "<stdout>" if output == "-" else output
    shown_output = f"{output_name} ({fmt})" if not skipped else "(skipped)"
    raw_percent = 100.0 * output_bytes / metrics.raw_bytes
    rows = [
        ("image", f"{metrics.width} x {metrics.height} {result.mode}, {_counted(metrics.n_pixels, 'pixel')}{distinct}"),
        ("palette", f"{_counted(result.k, 'colour')} ({fit})"),
        ("MSE", f"{per_channel}  (mean {metrics.mse:.2f})"),
        ("distortion J", f"{metrics.distortion:.2f}  (mean squared colour distance per pixel)"),
        ("PSNR", psnr),
        ("SSIM", ssim),
        (
            "perceptual",
            f"{metrics.perceptual_error:.2f}  (mean ΔEok x 100 after the eye's blur; score {metrics.perceptual_score:.1f} of 100)",
        ),
        *_alpha_row(metrics),
        (
            "ratio (bits)",
            f"{metrics.ratio:.4f} = {metrics.ratio_to_1:.1f}:1  ({metrics.index_bits} bits/pixel + {result.k * metrics.channels}-byte palette)",
        ),
        ("input", _fmt_bytes(source.input_bytes)),
        ("raw pixels", _fmt_bytes(metrics.raw_bytes)),
        ("output", f"{_fmt_bytes(output_bytes)}  ({raw_percent:.1f} % of raw, {metrics.output_bits_per_pixel:.3f} bits/pixel)"),
        ("time", f"{total:.2f} s  (k-means and mapping {result.seconds:.2f} s)"),
    ]
    print(f"kmq: {source.name} -> {shown_output}", file=stream)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}", file=stream)
    for note in result_notes(result, fmt):
        print(f"  note: {note}", file=stream)


# -- decompress and info ------------------------------------------------------


def _run_decompress(args) -> int:
    from .. import _io
    from .._quantize import load

    input_path = None if args.input == "-" or args.input.startswith(("http://", "https://")) else Path(args.input)
    with progress_for(args, label=f"kmq: {short_name(args.input)}") as status:
        status.stage("reading and decoding")
        loaded = load(args.input, max_pixels=args.max_pixels, max_input_bytes=args.max_input_bytes, timeout=args.timeout)
        output = args.output
        folder = _output_folder(output)
        if output is None or folder is not None:
            if args.input == "-" and output is None:
                output = "-"
            else:
                stem = Path(args.input.split("?")[0]).stem if args.input != "-" else "stdin"
                name = f"{stem}.png" if loaded.k <= 256 else f"{stem}.tif"
                output = name if folder is None else str(folder / name)
        if output == "-":
            _refuse_terminal(args)
        fmt = _io.format_for_path(output, override=args.format or ("png" if output == "-" else None))
        status.stage(f"encoding {fmt.upper()}")
        data = loaded.to_bytes(fmt, alpha_threshold=args.alpha_threshold, effort=args.effort)
        status.stage("writing")
        _io.write_atomic(output, data, force=args.force, inputs=(input_path,))
    if not args.quiet and output != "-":
        h, w = loaded.shape
        print(f"kmq: {args.input} -> {output} ({fmt}, {w} x {h} {loaded.mode}, K={loaded.k}, {len(data):,} B)")
        for note in _io.export_notes(loaded.palette, loaded.mode, fmt):
            print(f"  note: {note}")
    return 0


def _run_info(args) -> int:
    from .._container import read_header
    from .._quantize import _read_kmq_bytes

    data = _read_kmq_bytes(args.input)
    # The CRC too, so that `kmq info` also tells whether the file is intact.
    header = read_header(data, check_crc=True)
    fields = {**header.as_dict(), "crc": "ok"}
    if args.json:
        print(json.dumps({"file": args.input, **fields}, indent=2))
    else:
        print(f"{args.input}: kmq container")
        width = max(len(key) for key in fields)
        for key, value in fields.items():
            print(f"  {key:<{width}}  {value}")
    return 0
