"""kmq's error types and the exit code each one maps to.

Every failure kmq reports on purpose is a :class:`KmqError`. The CLI catches
it, prints ``kmq: error: <message>`` on one line to stderr and exits with the
class's ``exit_code``; README.md lists the codes. Library callers can catch
the base class or the specific one (each also derives from the built-in
exception a Python user would expect, e.g. ``ValueError``).
"""

from __future__ import annotations

__all__ = [
    "KmqError",
    "UsageError",
    "InputError",
    "DecodeError",
    "OutputError",
    "LimitError",
    "NotFittedError",
    "EXIT_OK",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
]

EXIT_OK = 0
#: A bug in kmq: an exception that is not a KmqError (the CLI still prints
#: one line; ``-v`` shows the traceback).
EXIT_INTERNAL = 1
#: Ctrl-C, as a shell reports SIGINT.
EXIT_INTERRUPTED = 130


class KmqError(Exception):
    """Base class of every error kmq raises on purpose."""

    exit_code = EXIT_INTERNAL


class UsageError(KmqError, ValueError):
    """An argument is out of range or malformed (K < 1, a bad fraction, ...).

    Exit code 2, as for a command-line usage error.
    """

    exit_code = 2


class InputError(KmqError, OSError):
    """The input cannot be reached: missing file, directory, no permission,
    unreachable URL. Exit code 3."""

    exit_code = 3


class DecodeError(KmqError, ValueError):
    """The input was read but is not a valid image or ``.kmq`` file:
    unknown format, truncated, corrupt, failed checksum. Exit code 4."""

    exit_code = 4


class OutputError(KmqError, OSError):
    """The output cannot be written as asked: it exists (use ``--force``),
    it is the input, its extension is unknown, the format cannot hold K
    colours, or the write failed (disk full, no permission). Exit code 5."""

    exit_code = 5


class LimitError(KmqError, ValueError):
    """The image exceeds a safety limit (pixel count, like Pillow's
    decompression-bomb limit). Exit code 6; raise the limit with
    ``--max-pixels`` if the file is trusted."""

    exit_code = 6


class NotFittedError(UsageError, AttributeError):
    """An estimator was used before ``fit``. Like scikit-learn's
    ``NotFittedError``, it is both a ValueError and an AttributeError (so
    ``hasattr``-style checks and scikit-learn's own tests accept it)."""
