"""The ``kmq`` command line (entry point :func:`main`)."""

import os

# Before numpy is imported (kmq's package namespace imports it lazily for
# this): kmq calls no BLAS routine (its loops are its own kernels and
# numpy's element-wise operations, whose results do not depend on the BLAS
# build), but OpenBLAS starts a thread per core when numpy is imported, and
# they spin for about 0.1 s on the cores kmq's engine is using (measured:
# 100 ms of CPU on a 0.4 MP image, 7 % of the wall time at 2.5 MP on 2
# cores). The user's own setting wins; worker processes inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from ._main import EXIT_SKIPPED, build_parser, main

__all__ = ["main", "build_parser", "EXIT_SKIPPED"]
