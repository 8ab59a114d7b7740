"""``vjepa2 shards make``: folders and CSV indexes of videos and images -> WebDataset tar shards.

Each input is probed with PyAV (an image with Pillow) first; one that cannot be read is reported
in the manifest's ``failed`` list and left out. Readable ones are packed as they are (the encoded
bytes, no re-encoding) with a JSON sidecar: label, source, path, duration (s), fps, frames, width,
height. A shard is closed once it reaches the target size, written under a temporary name and
renamed, then recorded in ``packed.jsonl`` (one line per packed input) and the manifest (with its
size and sha256): a run killed at any moment loses at most the shard it was writing, and a rerun
packs only the inputs not yet in ``packed.jsonl`` (unreadable ones are probed again) into new
shards.
"""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from vjepa2.atomic import atomic_path
from vjepa2.config import opt
from vjepa2.data.datasets import read_index
from vjepa2.data.shards.manifest import MANIFEST, Manifest, ShardInfo, SourceInfo, file_sha256, read_manifest
from vjepa2.data.video import VideoReadError, probe_video
from vjepa2.errors import UserError
from vjepa2.safe_names import safe_relative

log = logging.getLogger(__name__)

LEDGER = "packed.jsonl"
LOG = "shards.log"


@dataclass
class MakeShardsConfig:
    sources: list[str] = opt([], help="folders or CSV indexes ('path label' lines) to pack", positional=True)
    out: str = opt("runs/shards", help="output folder: shard-000000.tar, ..., manifest.json, packed.jsonl")
    shard_size_mb: float = opt(
        256.0, help="target shard size in MB (a larger single file gets its own)", above=0
    )
    weights: list[float] = opt(
        [], help="mixture weight of each source, saved in the manifest (none given: 1 each)", min=0
    )
    workers: int = opt(1, help="processes probing the inputs", min=1)


def source_name(source: str, taken: set[str]) -> str:
    """A key-safe name for a source (WebDataset keys may hold no dots), unique among ``taken``."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(source.rstrip("/")).stem) or "source"
    name, n = base, 1
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def probe(path: Path) -> dict | str:
    """The sidecar fields of a readable file, or the error text of an unreadable one."""
    try:
        info = probe_video(path)
    except (VideoReadError, OSError) as err:
        return str(err)
    return {
        "duration": info.duration,
        "fps": info.fps,
        "frames": info.num_frames,
        "width": info.width,
        "height": info.height,
    }


class ShardFolder:
    """The output folder: its manifest, its ledger of packed inputs, and the shard being filled."""

    def __init__(self, out: Path, target_bytes: int):
        self.out, self.target = out, target_bytes
        out.mkdir(parents=True, exist_ok=True)
        self.manifest = read_manifest(str(out)) if (out / MANIFEST).is_file() else Manifest()
        self.packed: set[tuple[str, str]] = set()
        if (out / LEDGER).is_file():
            for line in (out / LEDGER).read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.packed.add((row["source"], row["path"]))
        self.samples: list[tuple[str, str, bytes, dict]] = []  # (key, suffix, data, sidecar)
        self.pending: list[dict] = []  # ledger rows of the open shard
        self.size, self.source = 0, -1

    def source_index(self, path: str, weight: float | None) -> int:
        """The manifest's entry for source ``path`` (added if new)."""
        for i, s in enumerate(self.manifest.sources):
            if s.path == path:
                s.weight = s.weight if weight is None else weight
                return i
        name = source_name(path, {s.name for s in self.manifest.sources})
        self.manifest.sources.append(SourceInfo(name, path, 1.0 if weight is None else weight))
        return len(self.manifest.sources) - 1

    def add(self, source: int, path: Path, label: int, sidecar: dict) -> None:
        """Add one probed input of ``source`` (the open shard is closed first if it is full)."""
        data = path.read_bytes()
        if self.samples and (source != self.source or self.size + len(data) > self.target):
            self.close_shard()
        info = self.manifest.sources[source]
        # The key becomes a file name where the shard is unpacked: a source name read from an
        # existing manifest is checked like any name from elsewhere.
        key = str(safe_relative(f"{info.name}-{info.count:08d}", what="shard key"))
        info.count += 1
        root = Path(info.path) if Path(info.path).is_dir() else Path(info.path).parent
        where = path.relative_to(root) if path.is_relative_to(root) else path
        meta = {"label": label, "source": info.name, "path": str(where), **sidecar}
        self.samples.append((key, path.suffix.lower().lstrip("."), data, meta))
        self.pending.append({"source": info.path, "path": str(path), "key": key})
        self.size, self.source = self.size + len(data), source

    def close_shard(self) -> None:
        """Write the open shard (temporary name, then renamed), then the ledger and the manifest."""
        import webdataset as wds

        if not self.samples:
            return
        name = f"shard-{len(self.manifest.shards):06d}.tar"
        with atomic_path(self.out / name) as tmp, open(tmp, "wb") as fh:
            writer = wds.TarWriter(fh, encoder=False, mtime=0)  # mtime 0: the same inputs, the same bytes
            try:
                for key, suffix, data, meta in self.samples:
                    writer.write({"__key__": key, suffix: data, "json": json.dumps(meta).encode()})
                writer.close()
            except BaseException:
                # A failed write (a full disk) leaves the tar stream open on a file about to close:
                # marked closed, it does not try to finish itself when collected.
                writer.tarstream.closed = True
                if hasattr(writer.tarstream.fileobj, "closed"):
                    writer.tarstream.fileobj.closed = True
                raise
        path = self.out / name
        self.manifest.shards.append(
            ShardInfo(name, self.source, len(self.samples), path.stat().st_size, file_sha256(path))
        )
        self.record(name)
        log.info("wrote %s: %d samples, %.1f MB", name, len(self.samples), self.size / 2**20)
        self.samples, self.pending, self.size = [], [], 0
        self.write_manifest()

    def record(self, shard: str) -> None:
        """Mark the inputs of ``shard`` packed: lines appended to the ledger, never rewritten."""
        with open(self.out / LEDGER, "a") as fh:
            fh.writelines(json.dumps({**row, "shard": shard}) + "\n" for row in self.pending)

    def write_manifest(self) -> None:
        with atomic_path(self.out / MANIFEST) as tmp:
            tmp.write_text(self.manifest.to_json())


def run_make_shards(cfg: MakeShardsConfig) -> int:
    """Pack the sources; returns 1 if any input was left out (unreadable), else 0."""
    if not cfg.sources:
        raise UserError("give at least one folder or CSV index to pack")
    if cfg.weights and len(cfg.weights) != len(cfg.sources):
        raise UserError(f"--weights: {len(cfg.weights)} weights for {len(cfg.sources)} sources")
    if cfg.shard_size_mb <= 0:
        raise UserError(f"--shard-size-mb must be > 0, got {cfg.shard_size_mb}")
    out = Path(cfg.out)
    folder = ShardFolder(out, int(cfg.shard_size_mb * 2**20))
    handler = logging.FileHandler(out / LOG)
    logging.getLogger("vjepa2").addHandler(handler)
    try:
        failed = pack(folder, cfg)
    finally:
        logging.getLogger("vjepa2").removeHandler(handler)
        handler.close()
    m = folder.manifest
    print(f"{sum(s.count for s in m.sources)} samples in {len(m.shards)} shards in {out}; "
          f"{len(failed)} input(s) left out" + (f", listed in {out / MANIFEST}" if failed else ""))  # fmt: skip
    for row in failed:
        print(f"  {row['error']}")
    return 1 if failed else 0


def pack(folder: ShardFolder, cfg: MakeShardsConfig) -> list[dict]:
    """Probe and pack every input not yet packed -> the inputs left out, as manifest rows."""
    weights = cfg.weights or [None] * len(cfg.sources)
    indices = [folder.source_index(str(Path(s).resolve()), w) for s, w in zip(cfg.sources, weights)]
    todo = []  # (source index, path, label) of the inputs not yet packed
    for source, index in zip(cfg.sources, indices):
        root = folder.manifest.sources[index].path
        for path, label in read_index(source):
            if (root, str(path.resolve())) not in folder.packed:
                todo.append((index, path.resolve(), label))
    redone = set(indices)
    failed = [row for row in folder.manifest.failed if row["source"] not in redone]  # sources not given
    counts = [0] * len(folder.manifest.sources)
    with ProcessPoolExecutor(cfg.workers) if cfg.workers > 1 else _Inline() as pool:
        results = pool.map(probe, [p for _, p, _ in todo], chunksize=16)
        for (index, path, label), result in tqdm(
            zip(todo, results), total=len(todo), desc="pack", unit="file"
        ):
            if isinstance(result, str):
                log.warning("left out %s", result)
                failed.append({"path": str(path), "source": index, "error": result})
                counts[index] += 1
                continue
            folder.add(index, path, label, result)
    folder.close_shard()
    for index in redone:
        folder.manifest.sources[index].failed = counts[index]
    folder.manifest.failed = failed
    folder.write_manifest()
    return [row for row in failed if row["source"] in redone]


class _Inline:
    """``ProcessPoolExecutor``'s ``map`` in this process (one worker: no pool to start)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items, chunksize=1):
        return map(fn, items)
