"""``kmq compress`` for many images: the batch options and their report.

The work is :func:`kmq.batch.compress_many`; this module adds its options to
the compress parser, decides when a run is a batch, and prints one line per
file (in input order), a progress bar on a terminal and the summary.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from .._errors import UsageError
from .._io import _is_url
from ._args import _positive_int, ask_k, engine_options, show_progress

__all__ = ["add_batch_options", "is_batch", "run_batch", "register_palette"]


def add_batch_options(parser) -> None:
    group = parser.add_argument_group("many images")
    group.add_argument("-j", "--jobs", type=_positive_int, metavar="N",
                       help="cores to use (default: all): a worker process each for several images, "
                       "threads for one; -j 1 runs in this process on one thread")
    group.add_argument("-r", "--recursive", action="store_true",
                       help="compress the images in sub-folders of folder inputs too, mirroring the tree under -o")
    group.add_argument("--ext", metavar="EXT",
                       help="output name <stem>EXT instead of <stem>-k<K>.<format>; '--ext .png --force' on PNG "
                       "inputs replaces each input in place, atomically")
    group.add_argument("--manifest", metavar="FILE",
                       help="append one row per input (.csv or .jsonl) as each file finishes")
    group.add_argument("--resume", action="store_true",
                       help="skip inputs the --manifest records as done whose output is there, complete")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on this dask.distributed scheduler (tcp://host:8786; pip install 'kmq[dask]')")
    group.add_argument("--palette", metavar="PALETTE",
                       help="map every image to this palette (a GIMP .gpl file, e.g. from 'kmq palette') instead of fitting one each")


def register_palette(commands) -> None:
    """The ``kmq palette`` subcommand."""
    from ._args import _Help, _add_common, _dither_level, _k_value, _max_input_bytes, _max_pixels
    from .._io import DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_PIXELS
    from .._quantize import DEFAULT_SPACE

    parser = commands.add_parser(
        "palette",
        help="fit one palette to many images (GIMP .gpl), for compress --palette",
        description="Fit one K-colour palette to many images by k-means on their merged colour histograms "
        "(exactly the palette of all their pixels pooled), and write it as a GIMP palette (.gpl).",
        formatter_class=_Help,
    )
    parser.add_argument("input", nargs="+", metavar="INPUT", help="image files, folders or URLs")
    parser.add_argument("-k", "--colors", dest="k", type=_k_value, default=16, metavar="K", help="number of colours")
    parser.add_argument("-o", "--output", required=True, metavar="PALETTE", help="the palette file to write (.gpl)")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing palette file")
    parser.add_argument("--seed", type=int, default=None, help="random seed: the same seed gives the same palette")
    parser.add_argument("-r", "--recursive", action="store_true", help="look in sub-folders of folder inputs too")
    parser.add_argument("--space", choices=["oklab", "lab", "rgb"], default=DEFAULT_SPACE,
                        help="colour space of k-means (compress --palette maps in the same one: give it --space too)")
    dither = parser.add_mutually_exclusive_group()
    dither.add_argument("--dither", type=_dither_level, default=None, metavar="LEVEL",
                        help="the dithering compress --palette will use (default: compress's); an Oklab palette of "
                        "9-16 colours without alpha is fitted for dithered or undithered mapping: give compress --nofs too")
    dither.add_argument("--nofs", dest="dither", action="store_const", const=0.0,
                        help="fit for compress --palette --nofs (same as --dither 0)")
    parser.add_argument("-j", "--jobs", type=_positive_int, metavar="N", help="cores to use (default: all): a worker process each")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="make the histograms on this dask.distributed scheduler")
    parser.add_argument("--max-pixels", type=_max_pixels, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="refuse images with more pixels (0 = no limit)")
    parser.add_argument("--max-input-bytes", type=_max_input_bytes, default=DEFAULT_MAX_INPUT_BYTES, metavar="N",
                        help="most bytes read from a pipe, a device or a URL (0 = no cap)")
    _add_common(parser)
    parser.set_defaults(run=_run_palette)


def _run_palette(args) -> int:
    import time

    from .. import _io
    from ..palette import fit_palette, write_palette

    started = time.perf_counter()
    if Path(args.output).suffix.lower() != ".gpl":
        raise UsageError(f"the palette file must end in .gpl (GIMP palette), got {args.output!r}")
    _io.check_output(args.output, force=args.force)
    client = _connect(args.scheduler) if args.scheduler else None
    try:
        palette, n_images, n_colors = fit_palette(
            args.input, args.k, seed=args.seed, recursive=args.recursive, space=args.space, dither=args.dither, max_pixels=args.max_pixels,
            max_input_bytes=args.max_input_bytes, jobs=args.jobs, client=client, progress=show_progress(args),
        )
    finally:
        if client is not None:
            client.close()
    write_palette(args.output, palette, force=args.force)
    if not args.quiet:
        kind = "RGBA" if palette.shape[1] == 4 else "RGB"
        print(
            f"kmq: {len(palette)} colours ({kind}) fitted to {_plural(n_images, 'image')} "
            f"({n_colors:,} distinct colours) -> {args.output} in {time.perf_counter() - started:.2f} s"
        )
    return 0


def is_batch(args, names) -> bool:
    """Several inputs, a folder, or an option only batches have."""
    if len(names) > 1:
        return True
    if any(n != "-" and not _is_url(n) and Path(n).is_dir() for n in names):
        return True
    # Not -j: for one image it is the number of threads (same bytes).
    return bool(args.ext or args.recursive or args.manifest or args.resume or args.scheduler or args.palette)


def _connect(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--scheduler needs dask.distributed: pip install 'kmq[dask]'") from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        from .._errors import InputError

        raise InputError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def run_batch(args, names) -> int:
    from .. import batch
    from .._quantize import DEFAULT_K

    if not names:
        raise UsageError("give the images to compress (files, folders or URLs)")
    if args.output == "-":
        raise UsageError("with several inputs, -o must be a folder, got '-'")
    if args.output is not None and Path(args.output).suffix.lower() in (".kmq", *batch.IMAGE_SUFFIXES) \
            and not Path(args.output).is_dir():
        raise UsageError(f"with several inputs, -o must be a folder, got {args.output!r}")
    k = args.k
    if k is None and args.quality is not None and not args.palette:
        k = 256  # the quality search picks each image's K, up to 256
    if k is None and not args.palette:
        k = ask_k() if sys.stdin.isatty() else DEFAULT_K
    from tqdm import tqdm

    def show(record):
        status = record["status"]
        if status == "failed":
            tqdm.write(f"kmq: error: {record['error']}", file=sys.stderr)
        elif status == "skipped" and not args.quiet and not args.json:
            tqdm.write(
                f"kmq: skipped: the output would be {record['bytes_out']:,} bytes, larger than the input's "
                f"{record['bytes_in']:,} ({record['input']})", file=sys.stderr,
            )
        elif status == "ok" and not args.quiet and not args.json:
            psnr = "inf" if math.isinf(record["psnr"]) else f"{record['psnr']:.2f} dB"
            tqdm.write(
                f"kmq: {record['input']} -> {record['output']} (K={record['k']}, {record['bytes_out']:,} B, "
                f"PSNR {psnr}, {record['seconds']:.2f} s)", file=sys.stdout,
            )

    client = _connect(args.scheduler) if args.scheduler else None
    try:
        result = batch.compress_many(
            names, k=k, output_dir=args.output, format=args.format, ext=args.ext, recursive=args.recursive,
            force=args.force, skip_if_larger=args.skip_if_larger, seed=args.seed, **engine_options(args),
            max_iter=args.max_iter, init=args.init, max_pixels=args.max_pixels,
            effort=args.effort, strip=args.strip, alpha_threshold=args.alpha_threshold,
            max_input_bytes=args.max_input_bytes, palette=args.palette, jobs=args.jobs,
            client=client, manifest=args.manifest, resume=args.resume,
            progress=show_progress(args), on_result=show, details=args.json,
        )
    finally:
        if client is not None:
            client.close()
    if args.json:
        print(json.dumps([_json_record(r) for r in result.records], indent=2))
    elif not args.quiet:
        print(_summary(result))
    return result.exit_code


def _json_record(record) -> dict:
    shown = {key: value for key, value in record.items() if key != "index"}
    if shown["psnr"] is not None and math.isinf(shown["psnr"]):
        shown["psnr"] = None  # identical images: JSON has no infinity, as in "metrics"
    shown["output"] = shown["output"] or None
    return shown


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _summary(result) -> str:
    """"kmq: 3 images: 2 written, 1 skipped, 0 failed in 1.20 s; ..." """
    written, skipped, failed, done = (result.count(s) for s in ("ok", "skipped", "failed", "done"))
    line = f"kmq: {_plural(len(result.records), 'image')}: {written} written, {skipped} skipped, {failed} failed"
    if done:
        line += f", {done} already done (--resume)"
    line += f" in {result.seconds:.2f} s"
    if written:
        bytes_in = sum(r["bytes_in"] or 0 for r in result.records if r["status"] == "ok")
        bytes_out = sum(r["bytes_out"] for r in result.records if r["status"] == "ok")
        line += f"; {bytes_in:,} B in, {bytes_out:,} B out"
    if result.not_images:
        line += f"; {_plural(result.not_images, 'file')} that {'is' if result.not_images == 1 else 'are'} not an image skipped"
    if result.subfolders_skipped:
        line += f"; {_plural(result.subfolders_skipped, 'sub-folder')} not entered (-r enters them)"
    return line
