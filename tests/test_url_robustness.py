"""URL inputs against hostile servers: a raw-socket server on 127.0.0.1
answers each connection with fixed bytes (or drips them), so that answers
no real HTTP server library would send can be tried."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from kmq._cli import main
from kmq._errors import InputError
from kmq._io import download, read_image


class RawServer:
    """Answers every connection on 127.0.0.1 with ``answer(n)`` for the n-th
    connection (bytes), after reading the request head; ``drip`` sends the
    answer one byte every ``drip`` seconds until the client goes away."""

    def __init__(self, answer, drip: float | None = None):
        self.answer = answer if callable(answer) else (lambda n: answer)
        self.drip = drip
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn, self.connections), daemon=True).start()

    def _answer(self, conn, n):
        with conn:
            conn.settimeout(5)
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    part = conn.recv(4096)
                    if not part:
                        return
                    request += part
                data = self.answer(n)
                if self.drip is None:
                    conn.sendall(data)
                else:
                    for i in range(len(data)):
                        if self.stopping.is_set():
                            return
                        conn.sendall(data[i : i + 1])
                        time.sleep(self.drip)
            except OSError:
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        self.sock.close()


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmq: error: "), err
    return code, lines[0]


HEAD_OK = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"


@pytest.mark.parametrize(
    "answer, words",
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not HTTP"),
        (HEAD_OK + b"X-Long: " + b"a" * 70_000 + b"\r\n\r\n", "header line too long"),
        (HEAD_OK + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", "malformed HTTP answer"),
        (HEAD_OK + b"Transfer-Encoding: chunked\r\n\r\n10\r\nshort\r\nzz\r\n", "incomplete download"),
    ],
    ids=["not-http", "70kb-header-line", "150-headers", "broken-chunked"],
)
def test_malformed_answers_are_one_line_exit_3(capsys, in_tmp, answer, words):
    with RawServer(answer) as server:
        code, line = _run(capsys, "compress", server.url + "/a.png", "-k", "4")
    assert code == 3
    assert f"cannot download {server.url}/a.png" in line and words in line
    assert list(in_tmp.iterdir()) == []


def test_body_shorter_than_content_length_is_an_incomplete_download(capsys, in_tmp, photo_png):
    data = photo_png.read_bytes()
    answer = HEAD_OK + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(data) + data[: len(data) // 2]
    with RawServer(answer) as server:
        code, line = _run(capsys, "compress", server.url + "/a.png", "-k", "4")
        with pytest.raises(InputError, match=rf"incomplete download \({len(data) // 2:,} of {len(data):,} bytes"):
            read_image(server.url + "/a.png")
    assert code == 3


def test_a_dripping_server_meets_the_overall_deadline(capsys, in_tmp, photo_png):
    data = photo_png.read_bytes()
    answer = HEAD_OK + b"Content-Length: %d\r\n\r\n" % len(data) + data
    with RawServer(answer, drip=0.05) as server:
        # Each byte comes well within any per-read timeout; only a deadline
        # on the whole download stops it (the answer would take minutes).
        code, line = _run(capsys, "compress", server.url + "/a.png", "-k", "4", "--timeout", "0.5")
        with pytest.raises(InputError, match=r"no complete answer within 0\.3 s"):
            download(server.url + "/b.png", timeout=0.3)
    assert code == 3 and "no complete answer within 0.5 s (--timeout)" in line


def test_timeout_option_is_checked(capsys):
    code, line = _run(capsys, "compress", "x.png", "--timeout", "0")
    assert code == 2 and "expected a number of seconds > 0" in line


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/a.png", "file:///etc/passwd", "gopher://127.0.0.1/"])
def test_redirects_to_other_schemes_are_refused(capsys, in_tmp, target):
    answer = b"HTTP/1.1 302 Found\r\nLocation: " + target.encode() + b"\r\nContent-Length: 0\r\n\r\n"
    with RawServer(answer) as server:
        code, line = _run(capsys, "compress", server.url + "/a.png", "-k", "4")
    scheme = target.split(":")[0]
    assert code == 3 and f"redirected to {scheme!r}, not http(s)" in line


def test_a_redirect_loop_is_one_line(capsys, in_tmp):
    def answer(n):
        return b"HTTP/1.1 302 Found\r\nLocation: /hop%d\r\nContent-Length: 0\r\n\r\n" % (n % 2)

    with RawServer(answer) as server:
        code, line = _run(capsys, "compress", server.url + "/a.png", "-k", "4")
    assert code == 3 and "too many redirects or a redirect loop" in line


def test_decompress_takes_the_timeout_too(capsys, in_tmp):
    answer = HEAD_OK + b"Content-Length: 100000\r\n\r\n" + b"K" * 1000
    with RawServer(answer, drip=0.05) as server:
        code, line = _run(capsys, "decompress", server.url + "/a.kmq", "--timeout", "0.3")
    assert code == 3 and "no complete answer within 0.3 s" in line
