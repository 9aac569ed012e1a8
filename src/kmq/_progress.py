"""Progress on stderr: the one helper every progress bar and status line of
kmq is made with (tqdm).

:class:`Progress` is a bar when the amount of work is known (images of a
batch, K of a sweep) and a status line naming the current stage otherwise
(one large image: reading, k-means, mapping, encoding...). It draws only
when asked: the CLI asks when stderr is a terminal and ``-q`` is not given;
library functions draw nothing unless the caller asks (``progress=``).

A run short enough not to need one never shows it: the bar appears once the
run has lasted ``delay`` seconds (1 s by default, 0 for batches), is redrawn
every second after that (its clock moves during a long stage), and is erased
when the run ends, so that nothing of it is left in the terminal's text.
The environment variable ``KMQ_PROGRESS_DELAY`` (seconds) replaces every
delay; ``KMQ_PROGRESS_DELAY=0`` shows each bar at once (the tests use it).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time

__all__ = ["Progress", "wanted", "DELAY_ENV", "DEFAULT_DELAY"]

#: Environment variable: seconds a run lasts before its bar appears.
DELAY_ENV = "KMQ_PROGRESS_DELAY"
#: The delay of single runs (one image, a sweep, a report), in seconds.
DEFAULT_DELAY = 1.0
#: Seconds between redraws once shown.
_TICK = 1.0

_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"
_STATUS_FORMAT = "{desc} [{elapsed}]"


def on_terminal() -> bool:
    """Whether stderr is a terminal."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, OSError, ValueError):  # closed or replaced by an object without a descriptor
        return False


def wanted(show: bool | None) -> bool:
    """``show``, or None: whether stderr is a terminal."""
    return on_terminal() if show is None else bool(show)


def _delay(default: float | None) -> float:
    text = os.environ.get(DELAY_ENV, "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    return DEFAULT_DELAY if default is None else float(default)


class Progress:
    """A progress bar (``total`` given) or a status line on stderr, or
    nothing.

    Parameters
    ----------
    show : bool or None
        Draw it; None: only when stderr is a terminal. When not shown,
        every method does nothing.
    total : int or None
        Units of work (a bar); None: a status line (see :meth:`stage`).
    unit : str
        What is counted, for the bar.
    delay : float or None
        Seconds before it appears (None: :data:`DEFAULT_DELAY`);
        ``KMQ_PROGRESS_DELAY`` replaces it.
    label : str
        Text at the start of the line.

    Use it as a context manager, or call :meth:`close` (which erases it) in
    a ``finally``. A bar that ends at the next update is never drawn, so a
    quick run draws nothing.
    """

    def __init__(self, show: bool | None, *, total: int | None = None, unit: str = "it", delay: float | None = None,
                 label: str = "kmq"):
        self.enabled = wanted(show)
        self.total = total
        self.n = 0
        self.text = ""
        self.unit = unit
        self.label = label
        self._bar = None
        self._closed = False
        self._started = time.time()  # tqdm's clock
        if not self.enabled:
            return
        self._lock = threading.RLock()
        self._closing = threading.Event()
        seconds = _delay(delay)
        if seconds <= 0:
            self._open()
            seconds = _TICK
        # A thread draws it once the delay is over, then redraws it every
        # _TICK: the work itself may not call back for a long time (one
        # k-means fit). The kernels release the GIL while they run.
        self._thread = threading.Thread(target=self._tick, args=(seconds,), name="kmq-progress", daemon=True)
        self._thread.start()

    # -- drawing (under self._lock) --------------------------------------------

    def _open(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=self.total, initial=self.n, unit=self.unit, desc=self._desc(), file=sys.stderr,
            dynamic_ncols=True, leave=False, bar_format=_BAR_FORMAT if self.total is not None else _STATUS_FORMAT,
            postfix=self.text if self.total is not None and self.text else None,
        )
        # Its clock starts with the run, not when it first appears.
        self._bar.start_t = self._started
        self._bar.refresh()

    def _desc(self) -> str:
        if self.total is None and self.text:
            return f"{self.label}: {self.text}"
        return self.label

    def _tick(self, seconds: float) -> None:
        while not self._closing.wait(seconds):
            with self._lock:
                if self._closed:
                    return
                if self._bar is None:
                    self._open()
                else:
                    self._bar.refresh()
            seconds = _TICK

    def _redraw(self) -> None:
        bar = self._bar
        if bar is None:
            return
        if self.total != bar.total:
            bar.total = self.total
        bar.n = self.n
        if self.total is None:
            bar.set_description_str(self._desc(), refresh=False)
        else:
            bar.set_postfix_str(self.text, refresh=False)
        bar.refresh()

    # -- the work's side -------------------------------------------------------

    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        if not self.enabled:
            return
        with self._lock:
            self.n += n
            if self._bar is not None:
                self._bar.update(n)  # tqdm redraws at most every 0.1 s

    def stage(self, text: str) -> None:
        """Show ``text``: the stage begun (a status line), or after the bar
        (``"K=16"``, ``"drawing curve"``)."""
        if not self.enabled:
            return
        with self._lock:
            self.text = text
            self._redraw()

    def __call__(self, done: int, total: int, k=None) -> None:
        """A sweep's callback (:data:`kmq.plot._sweep.ProgressCallback`):
        ``done`` of ``total`` K, ``k`` the one begun (None at the end)."""
        if not self.enabled:
            return
        with self._lock:
            self.n, self.total = done, total
            self.text = f"K={k}" if k is not None else "done"
            self._redraw()

    def close(self) -> None:
        """Erase it (if it was drawn) and stop; later calls do nothing."""
        if not self.enabled or self._closed:
            return
        self._closing.set()
        with self._lock:
            self._closed = True
            if self._bar is not None:
                self._bar.close()
        self._thread.join()
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def shown(self) -> bool:
        """Whether it is drawn now."""
        return self._bar is not None and not self._closed
