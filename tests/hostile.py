"""Crafted shard sets and a loopback HTTP server that misbehaves on purpose, for the safety tests."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from vjepa2.data.video import write_video


def tiny_video(path: Path, seed: int = 0) -> bytes:
    """An 8-frame 32 px mp4 written to ``path`` -> its bytes."""
    frames = np.random.default_rng(seed).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    write_video(path, frames, fps=8)
    return path.read_bytes()


Member = tuple[tarfile.TarInfo, bytes]


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> Member:
    """A tar member: a file ``name`` of ``data``, or (``kind`` SYMTYPE / LNKTYPE) a link to ``link``."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def sample(key: str, video: bytes, label: int = 0) -> list[Member]:
    """The two members of one sample: ``<key>.json``, its sidecar, and ``<key>.mp4``."""
    return [member(f"{key}.json", json.dumps({"label": label}).encode()), member(f"{key}.mp4", video)]


def write_tar(path: Path, members: list[Member]) -> None:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)


def declare_size(path: Path, index: int, size: int) -> None:
    """Give member ``index`` of the tar at ``path`` a declared size of ``size`` bytes (its data
    stays as it was: the tar now claims far more than it holds)."""
    data = bytearray(path.read_bytes())
    with tarfile.open(path) as tar:
        offset = tar.getmembers()[index].offset
    header = data[offset : offset + 512]
    # Sizes past 11 octal digits take GNU's base-256 form: a first byte of 0x80, then big-endian.
    header[124:136] = f"{size:011o}\0".encode() if size < 8**11 else b"\x80" + size.to_bytes(11, "big")
    header[148:156] = b" " * 8  # the checksum counts its own field as spaces
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    data[offset : offset + 512] = header
    path.write_bytes(bytes(data))


def write_set(folder: Path, shards: list[list[Member]], counts: list[int] | None = None,
              sizes: bool = True) -> Path:  # fmt: skip
    """A shard set in ``folder``: one tar per member list and manifest.json (each shard's sample
    count given by ``counts``, else members / 2; ``sizes``: record bytes and sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, members in enumerate(shards):
        path = folder / f"shard-{i:06d}.tar"
        write_tar(path, members)
        entry = {"url": path.name, "source": 0, "count": counts[i] if counts else len(members) // 2}
        if sizes:
            entry |= {"bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        entries.append(entry)
    total = sum(e["count"] for e in entries)
    manifest = {"format": "vjepa2-shards", "version": 1, "failed": [], "shards": entries,
                "sources": [{"name": "crafted", "path": str(folder), "count": total}]}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def snapshot(root: Path, leave_out: tuple[Path, ...] = ()) -> dict[str, tuple]:
    """Every file, folder and link under ``root`` but those under ``leave_out``: path -> (kind,
    content hash or link target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if any(path == skip or path.is_relative_to(skip) for skip in leave_out):
            continue
        if path.is_symlink():
            out[str(path)] = ("link", str(path.readlink()))
        elif path.is_dir():
            out[str(path)] = ("dir",)
        else:
            out[str(path)] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return out


class Loopback:
    """An HTTP server on 127.0.0.1 (a thread of this process) whose answer per path is chosen by
    the test: bytes (200), an int (that status), "hang" (accept, never answer), "drop" (close at
    once), ("cut", data, n) (announce all of data, send n bytes, close), ("stall", data, n) (send
    n bytes, then nothing), ("redirect", location), or a callable of the request count returning
    one of those."""

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.hits: dict[str, int] = {}
        self.stop = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                owner.hits[self.path] = owner.hits.get(self.path, 0) + 1
                answer = owner.routes.get(self.path, 404)
                if callable(answer):
                    answer = answer(owner.hits[self.path])
                owner.answer(self, answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, handler: BaseHTTPRequestHandler, answer) -> None:
        handler.close_connection = True
        if answer == "hang":
            self.stop.wait(30)
        elif answer == "drop":
            return
        elif isinstance(answer, int):
            handler.send_error(answer)
        elif answer[0] == "redirect":
            handler.send_response(302)
            handler.send_header("Location", answer[1])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        else:
            data, n = (answer, len(answer)) if isinstance(answer, bytes) else answer[1:]
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data[:n])
            handler.wfile.flush()
            if isinstance(answer, tuple) and answer[0] == "stall":
                self.stop.wait(30)

    def serve_folder(self, folder: Path, prefix: str = "") -> str:
        """Serve every file of ``folder`` under ``/<prefix>/`` -> that URL."""
        for path in folder.iterdir():
            if path.is_file():
                self.routes[f"{prefix}/{path.name}"] = path.read_bytes()
        return self.url + prefix

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
