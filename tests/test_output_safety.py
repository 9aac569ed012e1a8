"""Writing outputs safely: standard output that fails, several runs racing
for one file, temporary files left by killed runs, binary data and
terminals. Real file descriptors, so most of these run ``python -m kmq``."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from kmq import _io
from kmq._cli import main
from kmq._errors import OutputError


def _kmq(*argv, **kwargs):
    return subprocess.run([sys.executable, "-m", "kmq", *argv], capture_output=kwargs.pop("capture", True), check=False, **kwargs)


def _one_error_line(stderr: bytes) -> str:
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmq: error: "), stderr.decode()
    return lines[0]


@pytest.fixture
def tiny_png(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.png"
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    return path


# -- standard output ------------------------------------------------------------


def test_stdout_closed(tmp_path, tiny_png):
    result = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" -m kmq compress "{tiny_png}" -k 2 -o - >&-'],
        capture_output=False, stderr=subprocess.PIPE, check=False, cwd=tmp_path,
    )
    assert result.returncode == 5
    assert _one_error_line(result.stderr) == "kmq: error: cannot write to standard output: it is closed"


def test_stdout_on_dev_full(tmp_path, tiny_png):
    with open("/dev/full", "wb") as full:
        result = _kmq("compress", str(tiny_png), "-k", "2", "-o", "-", stdout=full, stderr=subprocess.PIPE, capture=False, cwd=tmp_path)
    assert result.returncode == 5
    assert _one_error_line(result.stderr) == "kmq: error: cannot write to standard output: No space left on device"


def test_report_to_dev_full(tmp_path, tiny_png):
    # The report (text, buffered) is flushed before exiting: same error.
    with open("/dev/full", "wb") as full:
        result = _kmq("compress", str(tiny_png), "-k", "2", stdout=full, stderr=subprocess.PIPE, capture=False, cwd=tmp_path)
    assert result.returncode == 5
    assert _one_error_line(result.stderr) == "kmq: error: cannot write to standard output: No space left on device"


def test_reader_closed_the_pipe(tmp_path, tiny_png):
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the first write gets EPIPE
    try:
        result = _kmq("compress", str(tiny_png), "-k", "2", "-o", "-", stdout=write_end, stderr=subprocess.PIPE, capture=False, cwd=tmp_path)
    finally:
        os.close(write_end)
    assert result.returncode == 5
    assert _one_error_line(result.stderr) == "kmq: error: cannot write to standard output: the reader closed the pipe"


def test_binary_output_is_not_written_to_a_terminal(tmp_path, tiny_png):
    leader, follower = os.openpty()
    try:
        refused = _kmq("compress", str(tiny_png), "-k", "2", "-o", "-", stdout=follower, stderr=subprocess.PIPE, capture=False, cwd=tmp_path)
        forced = _kmq("compress", str(tiny_png), "-k", "2", "-o", "-", "-f", "-q", "--format", "png", stdout=follower, stderr=subprocess.PIPE, capture=False, cwd=tmp_path)
    finally:
        os.close(follower)
        os.close(leader)
    assert refused.returncode == 5
    assert "refusing to write binary image data to a terminal" in _one_error_line(refused.stderr)
    assert forced.returncode == 0, forced.stderr


# -- racing runs ----------------------------------------------------------------


def test_the_existence_check_is_made_at_the_move(tmp_path, monkeypatch):
    # Another run creates the target after our check and before our move
    # (simulated at fsync): without --force ours must fail, not overwrite.
    target = tmp_path / "out.kmq"
    real_fsync = os.fsync

    def racing_fsync(fd):
        real_fsync(fd)
        if not target.exists():
            target.write_bytes(b"the other run's file")

    monkeypatch.setattr(os, "fsync", racing_fsync)
    with pytest.raises(OutputError, match=r"out\.kmq already exists; use --force"):
        _io.write_atomic(target, b"ours")
    assert target.read_bytes() == b"the other run's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.kmq"]  # no temporary file left
    _io.write_atomic(target, b"ours", force=True)
    assert target.read_bytes() == b"ours"


def test_three_runs_writing_one_output_at_once(tmp_path, tiny_png):
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "kmq", "compress", str(tiny_png), "-k", "2", "-o", "same.kmq", "-q"],
            cwd=tmp_path, stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    codes = sorted(run.wait() for run in runs)
    errors = [run.stderr.read().decode() for run in runs]
    assert codes == [0, 5, 5], errors
    assert sum("same.kmq already exists; use --force (-f) to overwrite it" in e for e in errors) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.kmq", "tiny.png"]


# -- leftovers of killed runs ------------------------------------------------------


def test_stale_temporary_files_are_removed_by_the_next_run(capsys, tmp_path, monkeypatch, tiny_png):
    monkeypatch.chdir(tmp_path)
    hour_ago = _io._RUN_STARTED - 3600
    stale = tmp_path / ".photo-k16.kmq.kmq-a1b2c3d4.tmp"
    fresh = tmp_path / ".other-k4.png.kmq-e5f6g7h8.tmp"  # a run still writing
    foreign = tmp_path / ".photo.png.x1y2z3w4.tmp"  # not kmq's name
    for path in (stale, fresh, foreign):
        path.write_bytes(b"\0" * 1000)
    os.utime(stale, (hour_ago, hour_ago))
    os.utime(foreign, (hour_ago, hour_ago))
    assert main(["compress", str(tiny_png), "-k", "2", "-o", "out.kmq", "-q"]) == 0
    assert not stale.exists()
    assert fresh.exists() and foreign.exists()


def test_temporary_files_carry_kmq_s_mark(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    _io.write_atomic(tmp_path / "a.png", b"x", force=True)
    assert len(seen) == 1 and seen[0].startswith(".a.png.kmq-") and seen[0].endswith(".tmp")
