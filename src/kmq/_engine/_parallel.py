"""The engine's threads: compiled kernels release the GIL, so a kernel run
on disjoint ranges of points from a few Python threads uses every core.

Results depend neither on timing nor on the number of cores: a kernel that
sums into accumulators runs on ranges fixed by the point count alone (at
most ``_MAX_PARTS``), each with its own accumulators, summed in range
order; threads only share those ranges out. So the same image gives the
same bytes on a laptop, a 64-core server and a batch worker limited to one
thread (:func:`set_threads`)."""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np

__all__ = ["Chunks", "cores", "n_threads", "pool", "run_chunked", "set_threads", "threads_limited"]

#: Below this many points per thread a second thread costs more than it saves.
_MIN_POINTS_PER_THREAD = 8192
#: Ranges of a kernel with accumulators, at most: the most threads such a
#: kernel uses (each range is one more kernel call per pass when threads
#: are fewer).
_MAX_PARTS = 8

_thread_limit: int | None = None


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cores() -> int:
    """Threads the engine may use in this process: the :func:`set_threads`
    limit, else the CPUs the process may run on."""
    return _thread_limit if _thread_limit is not None else _available_cores()


def set_threads(n: int | None) -> None:
    """Limit the engine's threads in this process to ``n`` (None: all
    cores). Output never depends on it; batch workers use it so that N
    processes share N cores instead of each taking them all."""
    global _thread_limit
    if n is not None and (isinstance(n, bool) or int(n) < 1):
        raise ValueError(f"threads must be >= 1, got {n!r}")
    _thread_limit = None if n is None else int(n)


@contextlib.contextmanager
def threads_limited(n: int | None):
    """:func:`set_threads` for the duration of a ``with`` block."""
    before = _thread_limit
    set_threads(n)
    try:
        yield
    finally:
        set_threads(before)


def n_threads(n_points: int, min_per_thread: int | None = None) -> int:
    """Threads worth using for ``n_points`` items of work: one per core, at
    most one per ``min_per_thread`` items (default _MIN_POINTS_PER_THREAD)."""
    return max(1, min(cores(), n_points // (min_per_thread or _MIN_POINTS_PER_THREAD)))


def n_parts(n_points: int, min_per_thread: int | None = None) -> int:
    """Ranges of ``range(n_points)`` for a kernel with accumulators: fixed by
    the point count alone, never by the machine."""
    return max(1, min(_MAX_PARTS, n_points // (min_per_thread or _MIN_POINTS_PER_THREAD)))


_executor = None
_executor_lock = threading.Lock()


def pool():
    """The process's worker threads (one per core), made on first use."""
    global _executor
    with _executor_lock:  # a caller's threads may ask for it at once
        if _executor is None:
            from concurrent.futures import ThreadPoolExecutor

            _executor = ThreadPoolExecutor(max_workers=_available_cores(), thread_name_prefix="kmq")
    return _executor


class Chunks:
    """Contiguous ranges of ``range(n_points)`` with per-range accumulator
    arrays that are reused from call to call. Kernels with accumulators get
    :func:`n_parts` ranges (fixed by ``n_points``; threads take several
    each when there are fewer of them), kernels without get one range per
    thread: their outputs are per point, so the split cannot change them."""

    def __init__(self, n_points, accumulators=(), min_per_thread=None):
        accumulators = list(accumulators)
        if accumulators:
            self.n_parts = n_parts(n_points, min_per_thread)
            self.n_threads = min(cores(), self.n_parts)
        else:
            self.n_parts = self.n_threads = n_threads(n_points, min_per_thread)
        self.bounds = [int(b) for b in np.linspace(0, n_points, self.n_parts + 1)]
        # One array per accumulator, a row per range: one fill and one sum a
        # pass whatever the number of ranges.
        self.stacks = [np.zeros((self.n_parts, *np.atleast_1d(shape))) for shape in accumulators]
        self.parts = [[stack[p] for stack in self.stacks] for p in range(self.n_parts)]

    def run(self, kernel, args_before, args_after):
        """``kernel(*args_before, start, stop, *args_after, *accumulators)``
        on each range (in parallel when there are several threads); the
        accumulators are zeroed first and summed in range order afterwards,
        so the result depends neither on timing nor on the thread count.

        Returns
        -------
        (results, accumulated) : the kernel's return values, one per range
        in range order (list), the summed accumulators (list of arrays).
        """
        for stack in self.stacks:
            stack.fill(0.0)
        bounds, parts = self.bounds, self.parts

        def call(p):
            return kernel(*args_before, bounds[p], bounds[p + 1], *args_after, *parts[p])

        if self.n_parts == 1:
            return [call(0)], parts[0]
        if self.n_threads == 1:
            results = [call(p) for p in range(self.n_parts)]
        else:
            threads = self.n_threads

            def share(t):
                return [call(p) for p in range(t, self.n_parts, threads)]

            # This thread takes the first share itself: one hand-off fewer
            # per call, which matters at ~0.1 ms a pass.
            futures = [pool().submit(share, t) for t in range(1, threads)]
            shares = [share(0)] + [future.result() for future in futures]
            results = [shares[p % threads][p // threads] for p in range(self.n_parts)]
        return results, [stack.sum(axis=0) for stack in self.stacks]


def run_chunked(kernel, n_points, args_before, args_after, *, accumulators=(), min_per_thread=None):
    """One :meth:`Chunks.run` of ``kernel`` over ``range(n_points)``."""
    return Chunks(n_points, accumulators, min_per_thread).run(kernel, args_before, args_after)


