"""``kmq serve``: the local web page (kmq._web) on uvicorn.

Binds 127.0.0.1 unless told otherwise, and warns when told to bind an
address other machines can reach. Ctrl-C (SIGINT) or SIGTERM stops it: the
server finishes the requests in flight (up to 3 s), then kmq exits 130 or
143, as for any other interrupted command.
"""

from __future__ import annotations

import ipaddress
import sys
import threading

from .._errors import UsageError
from ._args import _add_common, _checked, _Help, _max_pixels, _positive_int

__all__ = ["register_serve", "DEFAULT_PORT"]

DEFAULT_PORT = 8765
_MISSING = "kmq serve needs the web extra: pip install 'kmq[web]'"
_port = _checked(int, lambda v: 0 <= v <= 65535, "expected a port number", "expected a port from 0 to 65535")


def register_serve(commands) -> None:
    serve = commands.add_parser(
        "serve",
        formatter_class=_Help,
        help="start the local web page: drop an image, move K, compare, download",
        description="Serve a web page to compress images interactively: the original and the result "
        "side by side with a divider, zoom, the palette, the sizes and quality, a curve against K, and "
        "downloads as PNG, WebP, GIF and .kmq; and the JSON API under /api that the page uses. "
        "Ctrl-C stops it.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (anything but loopback is reachable by other machines)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port to listen on; 0 picks a free one")
    serve.add_argument("--open", action="store_true", help="open the page in the web browser")
    serve.add_argument("--max-upload-mb", type=_positive_int, default=64, metavar="MB", help="largest upload, in MiB (413 above)")
    serve.add_argument("--max-pixels", type=_max_pixels, default=50_000_000, metavar="N", help="largest image, in pixels (413 above; 0 = no limit)")
    serve.add_argument("--jobs", type=_positive_int, default=2, metavar="N", help="images compressed at once; further requests wait, then get 503")
    _add_common(serve)
    serve.set_defaults(run=_run_serve)


def _listen(host: str, port: int) -> tuple:
    """(a listening socket.socket on host:port, whether the address is
    loopback)."""
    import socket  # here, not at the top: every kmq command would pay for it

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    loopback = ipaddress.ip_address(address[0].split("%")[0]).is_loopback
    if not loopback:
        print(
            f"kmq: warning: listening on {host}, not on loopback: other machines that can reach this one "
            "can use the page and its API",
            file=sys.stderr,
        )
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {(exc.strerror or str(exc)).lower()}; choose another --port") from None
    return sock, loopback


def _run_serve(args) -> int:
    try:
        import uvicorn

        from .._web.app import create_app
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in ("starlette", "uvicorn", "multipart", "python_multipart"):
            raise UsageError(_MISSING) from None
        raise
    sock, loopback = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    allowed = ("127.0.0.1", "localhost", "[::1]", args.host.lower(), shown.lower()) if loopback else None
    app = create_app(
        max_upload_bytes=args.max_upload_mb << 20,
        max_pixels=args.max_pixels,
        jobs=args.jobs,
        allowed_hosts=allowed,
    )
    config = uvicorn.Config(
        app,
        log_level="info" if args.verbose else "warning",
        access_log=args.verbose,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    if not args.quiet:
        print(f"kmq: serving {url} (Ctrl-C to stop)", flush=True)
    if args.open:
        threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
    try:
        # uvicorn handles SIGINT/SIGTERM itself (graceful shutdown), then
        # raises the signal again: kmq's handlers turn it into exit 130/143.
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


def _open_when_started(server, url: str) -> None:
    import time
    import webbrowser

    for _ in range(200):
        if server.started:
            webbrowser.open(url)
            return
        time.sleep(0.05)
