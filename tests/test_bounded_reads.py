"""Reads of unknown size (stdin, named pipes, devices) are capped like URLs,
and a named pipe nobody writes to fails instead of blocking for ever."""

from __future__ import annotations

import io
import os
import threading

import pytest
from PIL import Image

import kmq
from kmq import _io
from kmq._cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def only_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def png_bytes(photo) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "PNG")
    return buffer.getvalue()


def test_dev_zero_is_capped(capsys, in_tmp):
    code, out, err = run(capsys, "compress", "/dev/zero", "-k", "4", "--max-input-bytes", "3000000", "-o", "z.png")
    assert code == 3
    assert only_line(err) == (
        "kmq: error: /dev/zero holds more than 3,000,000 bytes; nothing was written "
        "(raise the cap with --max-input-bytes if the input is meant to be this large)"
    )
    assert list(in_tmp.iterdir()) == []


def test_dev_zero_default_cap_is_256_mib():
    with pytest.raises(kmq.InputError, match=r"^/dev/zero holds more than 256 MiB; nothing was written"):
        _io.read_source_bytes("/dev/zero")


def test_stdin_is_capped(capsys, in_tmp, photo, monkeypatch):
    data = png_bytes(photo)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, err = run(capsys, "compress", "-", "-k", "4", "-o", "s.png", "--max-input-bytes", str(len(data) - 1))
    assert code == 3
    assert only_line(err).startswith(f"kmq: error: <stdin> holds more than {len(data) - 1:,} bytes; nothing was written")
    assert list(in_tmp.iterdir()) == []
    # At the cap exactly, it is read.
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, err = run(capsys, "compress", "-", "-k", "4", "-o", "s.png", "--max-input-bytes", str(len(data)), "-q")
    assert code == 0, err
    assert (in_tmp / "s.png").exists()


def test_zero_means_no_cap(capsys, in_tmp, photo, monkeypatch):
    data = png_bytes(photo)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, _, err = run(capsys, "compress", "-", "-k", "4", "-o", "s.kmq", "--max-input-bytes", "0", "--seed", "0", "-q")
    assert code == 0, err
    assert kmq.load("s.kmq") == kmq.compress(photo, 4, seed=0)


def test_bad_max_input_bytes_is_a_usage_error(capsys, in_tmp, photo_png):
    code, _, err = run(capsys, "compress", str(photo_png), "--max-input-bytes", "-1")
    assert code == 2
    assert "expected a whole number of bytes (0 = no cap), got -1" in only_line(err)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    return path


def test_named_pipe_without_writer_fails_instead_of_blocking(capsys, in_tmp, fifo, monkeypatch):
    monkeypatch.setattr(_io, "_PIPE_TIMEOUT_S", 0.2)
    code, _, err = run(capsys, "compress", str(fifo), "-k", "4", "-o", "p.png")
    assert code == 3
    assert only_line(err) == f"kmq: error: nothing to read from the named pipe {fifo} for 0.2 s (no writer?)"
    assert not (in_tmp / "p.png").exists()


def _write_to(fifo, data):
    def writer():
        try:
            with open(fifo, "wb") as handle:  # blocks until the reader opens it
                handle.write(data)
        except BrokenPipeError:  # the reader stopped at its cap
            pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return thread


def test_named_pipe_with_a_writer_is_read(capsys, in_tmp, fifo, photo):
    thread = _write_to(fifo, png_bytes(photo))
    code, _, err = run(capsys, "compress", str(fifo), "-k", "4", "--seed", "0", "-o", "p.kmq", "-q")
    thread.join(10)
    assert code == 0, err
    assert kmq.load("p.kmq") == kmq.compress(photo, 4, seed=0)


def test_named_pipe_over_the_cap(capsys, in_tmp, fifo, photo):
    data = png_bytes(photo)
    thread = _write_to(fifo, data)
    code, _, err = run(capsys, "compress", str(fifo), "-k", "4", "-o", "p.kmq", "--max-input-bytes", "1000")
    thread.join(10)
    assert code == 3
    assert only_line(err).startswith(f"kmq: error: {fifo} holds more than 1,000 bytes; nothing was written")
    assert not (in_tmp / "p.kmq").exists()


def test_decompress_reads_are_capped_too(capsys, in_tmp):
    code, _, err = run(capsys, "decompress", "/dev/zero", "-o", "z.png", "--max-input-bytes", "1048576")
    assert code == 3
    assert only_line(err).startswith("kmq: error: /dev/zero holds more than 1 MiB; nothing was written")
    assert list(in_tmp.iterdir()) == []
