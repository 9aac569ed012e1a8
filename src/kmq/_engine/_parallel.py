"""The engine's threads: compiled kernels release the GIL, so a kernel run
on disjoint ranges of points from a few Python threads uses every core.
Results never depend on timing: ranges are fixed by the point count, and
per-range accumulators are summed in range order."""

from __future__ import annotations

import os
import threading

import numpy as np

__all__ = ["Chunks", "n_threads", "pool", "run_chunked"]

#: Below this many points per thread a second thread costs more than it saves.
_MIN_POINTS_PER_THREAD = 8192


def n_threads(n_points: int, min_per_thread: int | None = None) -> int:
    """Threads worth using for ``n_points`` items of work: one per core, at
    most one per ``min_per_thread`` items (default _MIN_POINTS_PER_THREAD)."""
    cores = os.cpu_count() or 1
    return max(1, min(cores, n_points // (min_per_thread or _MIN_POINTS_PER_THREAD)))


_executor = None
_executor_lock = threading.Lock()


def pool():
    """The process's worker threads (one per core), made on first use."""
    global _executor
    with _executor_lock:  # a caller's threads may ask for it at once
        if _executor is None:
            from concurrent.futures import ThreadPoolExecutor

            _executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="kmq")
    return _executor


class Chunks:
    """Contiguous ranges of ``range(n_points)``, one per thread, with
    per-range accumulator arrays that are reused from call to call."""

    def __init__(self, n_points, accumulators=(), min_per_thread=None):
        self.n_threads = n_threads(n_points, min_per_thread)
        self.bounds = [int(b) for b in np.linspace(0, n_points, self.n_threads + 1)]
        self.parts = [[np.zeros(shape) for shape in accumulators] for _ in range(self.n_threads)]

    def run(self, kernel, args_before, args_after):
        """``kernel(*args_before, start, stop, *args_after, *accumulators)``
        on each range (in parallel when there are several); the accumulators
        are zeroed first and summed in range order afterwards, so the result
        does not depend on timing.

        Returns
        -------
        (results, accumulated) : the kernel's return values (list), the
        summed accumulators (list of arrays; owned by this object).
        """
        for part in self.parts:
            for array in part:
                array.fill(0.0)
        bounds = self.bounds
        if self.n_threads == 1:
            results = [kernel(*args_before, 0, bounds[1], *args_after, *self.parts[0])]
            return results, self.parts[0]

        def call(t):
            return kernel(*args_before, bounds[t], bounds[t + 1], *args_after, *self.parts[t])

        # This thread takes the first range itself: one hand-off fewer per
        # call, which matters at ~0.1 ms a pass.
        futures = [pool().submit(call, t) for t in range(1, self.n_threads)]
        results = [call(0)] + [future.result() for future in futures]
        summed = [array.copy() for array in self.parts[0]]
        for part in self.parts[1:]:
            for total, array in zip(summed, part):
                total += array
        return results, summed


def run_chunked(kernel, n_points, args_before, args_after, *, accumulators=(), min_per_thread=None):
    """One :meth:`Chunks.run` of ``kernel`` over ``range(n_points)``."""
    return Chunks(n_points, accumulators, min_per_thread).run(kernel, args_before, args_after)


