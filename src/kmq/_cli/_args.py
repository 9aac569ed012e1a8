"""What every ``kmq`` subcommand's parser shares: the parser class whose
errors are one line (exit 2), checked argument types, and the common
options."""

from __future__ import annotations

import argparse

from .._errors import UsageError
from .._io import DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_PIXELS

_PROG = "kmq"


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only when there is one worth showing."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and a UsageError (exit 2)."""

    def error(self, message):  # noqa: D401 - argparse API
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def parse_args(self, args=None, namespace=None):
        # Unknown options reach the top parser; name the subcommand's help
        # in the error, where the options that exist are listed.
        args, extras = self.parse_known_args(args, namespace)
        if extras:
            # The innermost subcommand given (``kmq plot scatter``), whose
            # help lists the options that exist.
            target = self
            while (commands := getattr(target, "subcommands", None)) is not None:
                name = getattr(args, commands.dest, None)
                if name not in commands.choices:
                    break
                target = commands.choices[name]
            target.error("unrecognized arguments: " + " ".join(extras))
        return args


def _checked(convert, valid, what: str, out_of_range: str | None = None):
    """An argparse type: ``convert(text)``, then ``valid(value)``, else a
    one-line error naming what was expected and what was given."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}, got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"{out_of_range or what}, got {value}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "expected a whole number", "expected a number >= 1")
_k_value = _checked(
    int,
    lambda v: 1 <= v <= 65536,
    "the number of colours must be a whole number from 1 to 65536",
    "the number of colours must be from 1 to 65536",
)
_dither_level = _checked(
    float, lambda v: 0 <= v <= 1, "the dithering level must be a number from 0 to 1", "the dithering level must be from 0 to 1"
)
_speed = _checked(
    int, lambda v: 1 <= v <= 11, "the speed must be a whole number from 1 to 11", "the speed must be from 1 to 11"
)


def _quality_range(text: str) -> tuple[float, float]:
    """``MIN-MAX`` or ``MAX`` (MIN 0), 0 <= MIN <= MAX <= 100 (pngquant's form)."""
    expected = "expected MIN-MAX with 0 <= MIN <= MAX <= 100"
    parts = text.split("-")
    try:
        values = [float(v) for v in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{expected}, got {text!r}") from None
    if len(values) == 1:
        values = [0.0, values[0]]
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"{expected}, got {text!r}")
    low, high = values
    if not (0 <= low <= 100 and 0 <= high <= 100):
        raise argparse.ArgumentTypeError(f"quality values must be from 0 to 100 ({expected}), got {text!r}")
    if low > high:
        raise argparse.ArgumentTypeError(f"the minimum must not exceed the maximum ({expected}), got {text!r}")
    return low, high


_fraction = _checked(float, lambda v: 0 < v <= 1, "expected a fraction in (0, 1]")
_non_negative_float = _checked(float, lambda v: v >= 0, "expected a number >= 0")
_seconds = _checked(float, lambda v: v > 0 and v != float("inf"), "expected a number of seconds > 0")
_seed_value = _checked(int, lambda v: 0 <= v < 2**128, "expected a whole number from 0 to 2**128 - 1", "the seed must be from 0 to 2**128 - 1")
_alpha_value = _checked(int, lambda v: 0 <= v <= 255, "expected a whole number from 0 to 255")
_pixel_count = _checked(int, lambda v: v >= 0, "expected a whole number of pixels (0 = no limit)")


def _max_pixels(text: str) -> int | None:
    value = _pixel_count(text)
    return None if value == 0 else value


_byte_count = _checked(int, lambda v: v >= 0, "expected a whole number of bytes (0 = no cap)")


def _max_input_bytes(text: str) -> int | None:
    value = _byte_count(text)
    return None if value == 0 else value


def _add_common(parser: argparse.ArgumentParser) -> None:
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    noise.add_argument("-v", "--verbose", action="store_true", help="print more (and tracebacks of internal errors)")


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", metavar="OUTPUT",
        help="output file (its extension picks the format), a folder (an existing one, or a name ending in /, created if missing: default names in it), or - for stdout",
    )
    parser.add_argument(
        "--format",
        choices=["kmq", "png", "gif", "webp", "jpg", "bmp", "tif"],
        help="output format when the extension does not say (e.g. with -o -)",
    )
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument(
        "--max-pixels",
        type=_max_pixels,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help="refuse images with more pixels (twice Pillow's decompression-bomb limit; 0 = no limit)",
    )
    parser.add_argument(
        "--max-input-bytes",
        type=_max_input_bytes,
        default=DEFAULT_MAX_INPUT_BYTES,
        metavar="N",
        help="most bytes read from stdin, a pipe, a device or a URL (exit 3 beyond; 0 = no cap)",
    )
    parser.add_argument(
        "--alpha-threshold", type=_alpha_value, default=None, metavar="A",
        help="GIF output (on/off transparency): alpha below A becomes transparent, the rest opaque (default 128)",
    )
    parser.add_argument(
        "--timeout", type=_seconds, default=None, metavar="SECONDS",
        help="deadline of a URL input's whole download (default 60)",
    )


def engine_options(args) -> dict:
    """The k-means and mapping options of ``kmq compress`` as keyword
    arguments of :func:`kmq.compress`: ``--speed`` sets ``--n-init``,
    ``--tol`` and the dithering unless they are given."""
    from .._quantize import DEFAULT_DITHER, SPEEDS

    knobs = SPEEDS[args.speed]
    return {
        "sample": args.sample if args.sample is not None else knobs["sample"],
        "n_init": args.n_init if args.n_init is not None else knobs["n_init"],
        "tol": args.tol if args.tol is not None else knobs["tol"],
        "space": args.space,
        "dither": next(v for v in (args.dither, knobs["dither"], DEFAULT_DITHER) if v is not None),
        "quality": args.quality,
    }


def ask_k() -> int:
    """Ask for K on a terminal ("Number of colours [16]:"); Enter: the default."""
    from .._quantize import DEFAULT_K

    try:
        answer = input(f"Number of colours [{DEFAULT_K}]: ").strip()
    except EOFError:
        answer = ""
    if not answer:
        return DEFAULT_K
    try:
        return _k_value(answer)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(str(exc)) from None


def show_progress(args) -> bool | None:
    """The ``progress=`` of library calls: None (a bar when stderr is a
    terminal), False with -q."""
    return False if getattr(args, "quiet", False) else None


def progress_for(args, **options):
    """A :class:`kmq._progress.Progress` (bar or status line, the one kind
    every subcommand draws) shown when stderr is a terminal, unless -q."""
    from .._progress import Progress

    return Progress(show_progress(args), **options)


def short_name(name: str) -> str:
    """An input's name for a progress line: its file name, without folders
    (the line must fit the terminal's width); ``-`` is stdin."""
    from pathlib import Path

    if name == "-":
        return "stdin"
    return Path(name.split("?")[0].rstrip("/")).name or name
