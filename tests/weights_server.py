"""A loopback HTTP server for the weights tests: a folder served with ``Range`` support, requests
recorded, and a connection that can be cut in the middle of a body once.

Bounded in time: the handler's socket times out after a few seconds, and ``stop`` shuts the
server down (the tests use it as a context manager).
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class WeightsServer:
    """``with WeightsServer(folder) as server``: ``server.url`` serves ``folder``;
    ``server.cut[path] = n`` makes the next GET of ``path`` stop after ``n`` bytes of the body
    (the connection is closed: a dropped download); ``server.requests`` lists (path, Range)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.cut: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> WeightsServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"


def _handler(state: WeightsServer):
    class Handler(BaseHTTPRequestHandler):
        timeout = 5  # seconds a connection may sit idle

        def log_message(self, *args):  # no line per request on stderr
            pass

        def do_GET(self):
            wanted = self.headers.get("Range")
            state.requests.append((self.path, wanted))
            file = (state.root / self.path.lstrip("/")).resolve()
            if state.root.resolve() not in file.parents or not file.is_file():
                self.send_error(404, "Not Found")
                return
            data = file.read_bytes()
            start = 0
            found = re.fullmatch(r"bytes=(\d+)-", wanted or "")
            if found:
                start = int(found.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            body = data[start:]
            if self.path in state.cut:
                body = body[: state.cut.pop(self.path)]
                self.close_connection = True
            self.wfile.write(body)

    return Handler
