"""For the weights tests: a loopback HTTP server (a folder served with ``Range`` support, requests
recorded, a connection that can be cut in the middle of a body once) and tiny files in the
released layouts to serve.

Bounded in time: the handler's socket times out after a few seconds, and ``stop`` shuts the
server down (the tests use it as a context manager).
"""

from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from vjepa2.checkpoints import keymaps as km
from vjepa2.checkpoints.loading import random_model
from vjepa2.models.probe import AttentiveClassifier, ProbeConfig


class WeightsServer:
    """``with WeightsServer(folder) as server``: ``server.url`` serves ``folder``;
    ``server.cut[path] = n`` makes the next GET of ``path`` stop after ``n`` bytes of the body
    (the connection is closed: a dropped download); ``server.requests`` lists (path, Range);
    ``server.if_ranges`` the If-Range header of each request. Every file is sent with an ETag (its
    content's digest) and ``If-Range`` is honoured unless ``server.honour_if_range`` is False."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.cut: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.if_ranges: list[str | None] = []
        self.honour_if_range = True
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> WeightsServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @staticmethod
    def etag(data: bytes) -> str:
        return f'"{hashlib.sha256(data).hexdigest()[:16]}"'

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
            state.if_ranges.append(self.headers.get("If-Range"))
            file = (state.root / self.path.lstrip("/")).resolve()
            if state.root.resolve() not in file.parents or not file.is_file():
                self.send_error(404, "Not Found")
                return
            data = file.read_bytes()
            etag = state.etag(data)
            start = 0
            found = re.fullmatch(r"bytes=(\d+)-", wanted or "")
            if_range = self.headers.get("If-Range")
            if found and if_range and if_range != etag and state.honour_if_range:
                found = None  # RFC 9110: the file changed, send all of it
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
            self.send_header("ETag", etag)
            self.end_headers()
            body = data[start:]
            if self.path in state.cut:
                body = body[: state.cut.pop(self.path)]
                self.close_connection = True
            self.wfile.write(body)

    return Handler


def reference_checkpoint(path, seed=0):
    """A tiny pretraining file in the released layout (``module.backbone.`` keys)."""
    model = random_model("tiny", seed=seed, depth=1)

    def prefixed(state, table):
        return {f"module.backbone.{k}": v for k, v in km.to_theirs(state, table).items()}

    ckpt = {
        "target_encoder": prefixed(model.encoder.state_dict(), km.REFERENCE_ENCODER),
        "predictor": prefixed(model.predictor.state_dict(), km.REFERENCE_PREDICTOR),
        "epoch": 1,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return model


def reference_probe(path):
    torch.manual_seed(0)
    probe = AttentiveClassifier(ProbeConfig(dim=192, heads=3, depth=2, num_classes=5))
    state = {f"module.{k}": v for k, v in km.to_theirs(probe.state_dict(), km.REFERENCE_PROBE).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"classifiers": [state]}, path)
    return probe
