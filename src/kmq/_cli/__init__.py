"""The ``kmq`` command line (entry point :func:`main`)."""

from ._main import EXIT_SKIPPED, build_parser, main

__all__ = ["main", "build_parser", "EXIT_SKIPPED"]
