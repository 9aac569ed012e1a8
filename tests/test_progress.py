"""Progress bars and status lines (kmq._progress): on a terminal only, never
with -q or when stderr is a file or a pipe, erased at the end, and without
any effect on what is written or on exit codes.

The commands run in a child process whose stderr is a real pseudo-terminal
(os.openpty), with KMQ_PROGRESS_DELAY=0 so that every bar is drawn at once,
however short the run; the same command run with stderr not a terminal
gives the reference bytes.
"""

from __future__ import annotations

import fcntl
import io
import math
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

import numpy as np
import pytest
from PIL import Image

import kmq
import kmq.plot
from kmq._cli import main
from kmq._progress import DELAY_ENV, Progress
from kmq.palette import fit_palette
from kmq.plot._sweep import run_sweep

pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")


# -- running under a terminal ------------------------------------------------------


def on_terminal(cwd, *argv, delay: str | None = "0") -> tuple[int, str, bytes]:
    """Run ``kmq ARGV`` in ``cwd`` with stderr on a pseudo-terminal 100
    columns wide; stdout goes to a file. Returns (exit code, what the
    terminal received, stdout bytes)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQDM_")}
    env.pop(DELAY_ENV, None)
    if delay is not None:
        env[DELAY_ENV] = delay
    stdout_path = cwd / ".stdout"
    with open(stdout_path, "wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "kmq", *argv], cwd=cwd, env=env,
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=slave,
        )
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal's other side is gone
                break
            if not chunk:
                break
            received += chunk
    finally:
        os.close(master)
    code = process.wait(timeout=60)
    out = stdout_path.read_bytes()
    stdout_path.unlink()
    return code, received.decode("utf-8", errors="replace"), out


def screen(received: str) -> list[str]:
    """The lines a terminal shows for ``received``: each carriage return
    moves back to the start of the line, later text overwrites earlier."""
    lines = []
    for raw in received.replace("\r\n", "\n").split("\n"):
        cells: list[str] = []
        column = 0
        for char in raw:
            if char == "\r":
                column = 0
                continue
            if column < len(cells):
                cells[column] = char
            else:
                cells.append(char)
            column += 1
        lines.append("".join(cells).rstrip())
    while lines and not lines[-1]:
        lines.pop()
    return lines


def drawn(received: str) -> list[str]:
    """Every state of the line the bar was redrawn into, in order."""
    return [part.rstrip() for part in received.replace("\r\n", "\n").split("\r") if part.strip()]


def not_a_terminal(capsys, *argv) -> tuple[int, str, str]:
    """The same command in this process: stderr is pytest's capture, not a terminal."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def pictures(in_tmp, photo):
    """Two small PNGs in the current folder: a.png (the photo crop), b.png."""
    Image.fromarray(photo).save("a.png")
    Image.fromarray(np.ascontiguousarray(photo[::-1, ::2])).save("b.png")
    return in_tmp


# -- the helper ---------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_shown_only_when_asked_or_on_a_terminal(monkeypatch):
    monkeypatch.setenv(DELAY_ENV, "0")
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    for show in (None, False):
        with Progress(show, total=3) as bar:
            bar.update(2)
            bar.stage("K=4")
        assert not bar.shown
    assert plain.getvalue() == ""
    with Progress(True, total=3, unit="K") as bar:
        bar(1, 3, 16)
        assert bar.shown
    assert "1/3" in plain.getvalue() and "K=16" in plain.getvalue()
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with Progress(None) as status:
        status.stage("k-means K=16")
    assert "kmq: k-means K=16 [" in terminal.getvalue()
    assert screen(terminal.getvalue()) == []  # erased when closed


def test_a_run_shorter_than_the_delay_draws_nothing(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.delenv(DELAY_ENV, raising=False)
    with Progress(True, total=2, delay=3600) as bar:
        bar.update(1)
        bar.stage("drawing")
        bar.update(1)
    with Progress(True, delay=3600) as status:
        status.stage("reading")
    assert terminal.getvalue() == ""
    # The environment variable replaces the delay; an unreadable one is ignored.
    monkeypatch.setenv(DELAY_ENV, "0")
    with Progress(True, delay=3600) as status:
        status.stage("reading")
    assert "kmq: reading [" in terminal.getvalue()
    for junk in ("soon", "-1", "nan"):
        monkeypatch.setenv(DELAY_ENV, junk)
        before = terminal.getvalue()
        with Progress(True, delay=3600) as status:
            status.stage("reading")
        assert terminal.getvalue() == before


def test_a_long_stage_is_drawn_when_its_delay_is_over(monkeypatch):
    # Nothing calls back during one long stage (a k-means fit): the bar's
    # thread draws it once the delay is over, and redraws it after.
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.delenv(DELAY_ENV, raising=False)
    status = Progress(True, delay=0.05, label="kmq: big.png")
    status.stage("k-means K=256")
    for _ in range(2000):  # until the thread has drawn it
        if status.shown:
            break
        time.sleep(0.01)
    status.close()
    assert drawn(terminal.getvalue())[0].startswith("kmq: big.png: k-means K=256 [")
    assert screen(terminal.getvalue()) == []
    status.close()  # a second close does nothing


def test_the_library_is_silent_by_default(monkeypatch, photo, tmp_path):
    # stderr a real terminal: still nothing from compress, a sweep or a palette fit.
    monkeypatch.setenv(DELAY_ENV, "0")
    master, slave = os.openpty()
    try:
        terminal = open(slave, "w", closefd=False)
        monkeypatch.setattr(sys, "stderr", terminal)
        Image.fromarray(photo).save(tmp_path / "a.png")
        kmq.compress(photo, 4, seed=0)
        run_sweep(photo, [2, 4], seed=0)
        fit_palette([tmp_path / "a.png"], 4, seed=0)
        terminal.flush()
        assert select.select([master], [], [], 0.2)[0] == []
    finally:
        os.close(master)
        os.close(slave)


def test_compress_reports_its_stages_and_gives_the_same_result(photo):
    stages = []
    with_progress = kmq.compress(photo, 8, seed=3, dither=0.5, progress=stages.append)
    assert with_progress == kmq.compress(photo, 8, seed=3, dither=0.5)
    n_colors = with_progress.n_colors_in
    assert stages == ["histogram", f"k-means K=8 ({n_colors:,} distinct colours)", "dithering"]
    stages.clear()
    kmq.compress(photo, 8, seed=3, dither=0, sample=0.5, progress=stages.append)
    assert stages[0] == "histogram" and stages[1].startswith("k-means K=8 (") and stages[2:] == ["mapping"]


def test_quality_search_counts_its_fits_and_measurements(photo):
    stages = []
    result = kmq.compress(photo, 64, seed=0, dither=0, quality=(0, 55), progress=stages.append)
    assert result == kmq.compress(photo, 64, seed=0, dither=0, quality=(0, 55))
    assert stages[:3] == [
        "histogram", f"quality search: up to K=64 ({result.n_colors_in:,} distinct colours)", "quality search: k-means K=32"
    ]
    measured = [re.fullmatch(r"quality search: K=(\d+) \(measurement (\d+)\)", s) for s in stages]
    steps = [m for m in measured if m]
    fits = [int(m[1]) for m in (re.fullmatch(r"quality search: k-means K=(\d+)", s) for s in stages) if m]
    # Numbered in order, the first the fit at 32, the palette written among
    # them; each fit is larger than the one before and measured next.
    assert [int(m[2]) for m in steps] == list(range(1, len(steps) + 1))
    assert int(steps[0][1]) == 32 and result.k in {int(m[1]) for m in steps}
    # (This crop needs more than 32 colours: a second fit, predicted.)
    assert fits == sorted(set(fits)) and len(fits) >= 2 and fits[0] == 32 and fits[-1] <= 64
    for k in fits:
        at = stages.index(f"quality search: k-means K={k}")
        assert re.fullmatch(rf"quality search: K={k} \(measurement \d+\)", stages[at + 1])
    # Each refinement on the exact colours is measured next.
    refined = [int(m[1]) for m in (re.fullmatch(r"quality search: refining K=(\d+)", s) for s in stages) if m]
    assert 1 <= len(refined) <= 2 and result.k in refined
    for k in refined:
        at = stages.index(f"quality search: refining K={k}")
        assert re.fullmatch(rf"quality search: K={k} \(measurement \d+\)", stages[at + 1])
    assert result.quality_note.endswith(
        f"(searched 1..64 with {len(fits)} fits, {len(refined)} refined and {len(steps)} measurements)"
    )
    # Undithered, the labels are the search's: nothing after it.
    assert stages[-1] == steps[-1][0]


# -- the commands on a terminal -----------------------------------------------------


def test_compress_one_image_shows_its_stages(capsys, pictures):
    code, received, out = on_terminal(pictures, "compress", "a.png", "-k", "8", "--quality", "0-90", "-o", "t.png")
    assert code == 0
    states = drawn(received)
    texts = [re.sub(r" \[\d\d:\d\d\]$", "", s) for s in states]
    for stage in ("kmq: a.png: reading", "kmq: a.png: histogram", "kmq: a.png: encoding PNG", "kmq: a.png: writing",
                  "kmq: a.png: measuring"):
        assert stage in texts, texts
    assert any(t.startswith("kmq: a.png: quality search: up to K=8 (") for t in texts)
    assert "kmq: a.png: quality search: k-means K=8" in texts and "kmq: a.png: quality search: K=8 (measurement 1)" in texts
    assert screen(received) == []  # nothing of it is left on the terminal
    assert out.startswith(b"kmq: a.png -> t.png (png)\n")
    # The same run with stderr not a terminal: no bar, the same bytes.
    code, plain_out, err = not_a_terminal(capsys, "compress", "a.png", "-k", "8", "--quality", "0-90", "-o", "p.png")
    assert code == 0 and err == ""
    assert (pictures / "t.png").read_bytes() == (pictures / "p.png").read_bytes()
    # -q: nothing at all on the terminal.
    code, received, out = on_terminal(pictures, "compress", "a.png", "-k", "8", "-o", "q.png", "-q")
    assert (code, received, out) == (0, "", b"")


def test_an_error_erases_the_bar_and_keeps_its_exit_code(pictures):
    code, received, out = on_terminal(pictures, "compress", "missing.png", "-k", "8")
    assert code == 3
    assert screen(received) == ["kmq: error: no such file: missing.png"]
    assert "kmq: missing.png: reading" in received  # the status was drawn, then erased
    Image.new("RGB", (4, 4)).save(pictures / "x.png")
    code, received, _ = on_terminal(pictures, "compress", "a.png", "-k", "8", "-o", "x.png")
    assert code == 5 and screen(received)[-1].startswith("kmq: error: ")
    code, received, _ = on_terminal(pictures, "compress", "a.png", "-k", "8", "--quality", "99-100", "-o", "hq.png")
    assert code == 99 and screen(received)[-1].startswith("kmq: error: the quality reached with 8 colours")
    assert not (pictures / "hq.png").exists()


def test_a_sweep_shows_a_bar_of_its_k(capsys, pictures):
    code, received, out = on_terminal(pictures, "plot", "curve", "a.png", "-k", "2", "4", "8", "-o", "t.png", "--dpi", "40")
    assert code == 0
    states = drawn(received)
    assert any("0/3" in s and s.endswith("K=2]") for s in states)
    assert any("2/3" in s and s.endswith("K=8]") for s in states)
    assert any("100%" in s and s.endswith("drawing curve]") for s in states)
    assert all(len(s) <= 100 for s in states)  # it fits the terminal's width
    assert screen(received) == []
    assert out.startswith(b"kmq: a.png -> t.png (curve, PNG")
    code, _, err = not_a_terminal(capsys, "plot", "curve", "a.png", "-k", "2", "4", "8", "-o", "p.png", "--dpi", "40")
    assert code == 0 and err == ""
    assert (pictures / "t.png").read_bytes() == (pictures / "p.png").read_bytes()
    code, received, out = on_terminal(pictures, "plot", "curve", "a.png", "-k", "2", "4", "-o", "q.png", "-q")
    assert (code, received, out) == (0, "", b"")


def test_compare_dither_both_counts_both_sweeps_on_one_bar(capsys, pictures):
    argv = ["plot", "compare", "a.png", "-k", "2", "4", "--dither-both", "--dpi", "30"]
    code, received, _ = on_terminal(pictures, *argv, "-o", "t.png")
    assert code == 0
    states = drawn(received)
    for done, k in ((0, 2), (1, 4), (2, 2), (3, 4)):
        assert any(f"{done}/4" in s and s.endswith(f"K={k}]") for s in states), (done, k)
    assert not any("2/4" in s and s.endswith("done]") for s in states)  # the first sweep's end is not the end
    assert any("100%" in s and s.endswith("drawing compare]") for s in states)
    assert screen(received) == []
    code, _, err = not_a_terminal(capsys, *argv, "-o", "p.png")
    assert code == 0 and err == ""
    assert (pictures / "t.png").read_bytes() == (pictures / "p.png").read_bytes()


@pytest.mark.parametrize(
    ("figure", "options", "expected"),
    [
        ("palette", ["-k", "2", "5"], ["2/2", "drawing palette"]),
        ("scatter", ["-k", "5", "--points", "200"], ["kmq: k-means K=5 (", "kmq: drawing scatter"]),
        ("segments", [], ["kmq: k-means K=16 (", "kmq: drawing segments"]),
    ],
)
def test_the_other_figures_show_their_progress(capsys, pictures, figure, options, expected):
    code, received, _ = on_terminal(pictures, "plot", figure, "b.png", *options, "-o", "t.png", "--dpi", "40")
    assert code == 0
    for text in expected:
        assert text in received
    assert screen(received) == []
    code, _, err = not_a_terminal(capsys, "plot", figure, "b.png", *options, "-o", "p.png", "--dpi", "40")
    assert code == 0 and err == ""
    assert (pictures / "t.png").read_bytes() == (pictures / "p.png").read_bytes()


def test_a_report_shows_its_k_then_its_figures(capsys, pictures):
    code, received, out = on_terminal(pictures, "report", "a.png", "-k", "2", "4", "-o", "t.html", "--dpi", "30")
    assert code == 0
    states = drawn(received)
    positions = [next(i for i, s in enumerate(states) if s.endswith(text + "]"))
                 for text in ("K=2", "K=4", "drawing compare", "drawing segments")]
    assert positions == sorted(positions)
    assert screen(received) == []
    code, _, err = not_a_terminal(capsys, "report", "a.png", "-k", "2", "4", "-o", "p.html", "--dpi", "30")
    assert code == 0 and err == ""
    assert (pictures / "t.html").read_bytes() == (pictures / "p.html").read_bytes()


def test_a_batch_and_a_palette_count_their_images(capsys, pictures):
    code, received, out = on_terminal(pictures, "compress", "a.png", "b.png", "-k", "4", "-o", "t", "-j", "1", "--seed", "1")
    assert code == 0
    assert "0/2" in received and "2/2" in received
    # The report lines go above the bar; the bar is gone at the end.
    assert screen(received) == []
    assert out.count(b"\n") == 3 and b"kmq: a.png -> t/a-k4.kmq" in out
    code, _, err = not_a_terminal(capsys, "compress", "a.png", "b.png", "-k", "4", "-o", "p", "-j", "1", "--seed", "1")
    assert code == 0 and err == ""
    for name in ("a-k4.kmq", "b-k4.kmq"):
        assert (pictures / "t" / name).read_bytes() == (pictures / "p" / name).read_bytes()

    code, received, out = on_terminal(pictures, "palette", "a.png", "b.png", "-k", "4", "-o", "t.gpl", "-j", "1", "--seed", "2")
    assert code == 0
    assert "2/2" in received and "k-means K=4 (" in received
    assert screen(received) == []
    code, _, err = not_a_terminal(capsys, "palette", "a.png", "b.png", "-k", "4", "-o", "p.gpl", "-j", "1", "--seed", "2")
    assert code == 0 and err == ""
    assert (pictures / "t.gpl").read_bytes() == (pictures / "p.gpl").read_bytes()
    code, received, out = on_terminal(pictures, "palette", "a.png", "b.png", "-k", "4", "-o", "q.gpl", "-j", "1", "-q")
    assert (code, received, out) == (0, "", b"")


def test_decompress_shows_its_stages(capsys, pictures):
    assert not_a_terminal(capsys, "compress", "a.png", "-k", "8", "-o", "a.kmq", "-q")[0] == 0
    code, received, out = on_terminal(pictures, "decompress", "a.kmq", "-o", "t.png")
    assert code == 0
    assert "kmq: a.kmq: reading and decoding" in received and "kmq: a.kmq: encoding PNG" in received
    assert screen(received) == []
    code, _, err = not_a_terminal(capsys, "decompress", "a.kmq", "-o", "p.png")
    assert code == 0 and err == ""
    assert (pictures / "t.png").read_bytes() == (pictures / "p.png").read_bytes()
