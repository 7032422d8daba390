"""Serve a written viewer folder on 127.0.0.1 (for large runs, or browsers that limit file://)."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        return


def start_server(folder: Path, port: int = 0) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start serving ``folder`` in a daemon thread; returns the server and its URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, name="evalkit-view", daemon=True)
    thread.start()
    host, bound = server.server_address[:2]
    return server, f"http://{host}:{bound}/index.html"


def serve_forever(folder: Path, port: int = 0, announce=print) -> None:  # type: ignore[no-untyped-def]
    """Serve until Ctrl-C."""
    server, url = start_server(folder, port)
    announce(f"serving {folder} at {url} (Ctrl-C stops)")
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
