"""What ``vjepa2 extract`` keeps so that it can run on many processes and be run again.

Under ``torchrun --nproc_per_node=N [--nnodes=M ...] -m vjepa2 extract ...`` rank r of W takes
videos r, r + W, ... of the input list (shard sources: every W-th shard, as the loader slots of
training) and writes its own part: per-video files (as a single process does) or, with
``one_file``, its own features file ``parts/<run>-rank<r>-of-<W>.<ext>``, plus its ledger
``parts/<run>-rank<r>-of-<W>.jsonl``: one line per video done (key, source, file, shape) or
failed (path, error). When every rank is done, rank 0 merges the ledgers into ``index.json``
(key -> file, source, shape; ``one_file``: the merged file too) and ``errors.json``.

In a features folder these are ``parts/``, ``index.json`` and ``errors.json``; beside a one file
they carry its name (``a.npz.parts/``, ``a.npz.index.json``, ``a.npz.errors.json``), so several
one-file outputs share a folder without overwriting each other's.

A rerun with the same settings skips every video a ledger lists as done (of any earlier run, of
any number of processes) whose features file is still there (of the size written); failed ones,
and done ones whose file vanished, are done again. Other settings (checkpoint, clips,
pooling, ...) start afresh: the old parts are removed.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vjepa2.atomic import atomic_open, atomic_path, atomic_write_json
from vjepa2.runtime import distributed as dist
from vjepa2.safe_names import inside

PARTS = "parts"
INDEX = "index.json"
ERRORS = "errors.json"
SETTINGS = "settings.json"
# What does not change a video's features.
IGNORED = ("inputs", "out", "batch_size", "device", "network")


class Parts:
    """The ``parts`` folder of one extraction: ``root`` is the features folder (or the folder of
    the one file); ``info`` this process's rank."""

    def __init__(self, cfg, info: dist.DistInfo):
        self.cfg, self.info = cfg, info
        out = Path(cfg.out)
        self.target = one_file(cfg) if cfg.one_file else out  # where the features go
        self.root = self.target.parent if cfg.one_file else out
        named = f"{self.target.name}." if cfg.one_file else ""  # the one file's name on its records
        self.folder = self.root / f"{named}{PARTS}"
        self.index, self.errors = self.root / f"{named}{INDEX}", self.root / f"{named}{ERRORS}"
        run = dist.all_gather_object(time.strftime("%Y%m%d-%H%M%S"))[0]  # rank 0's time names the run
        self.name = f"{run}-rank{info.rank:05d}-of-{info.world_size:05d}"
        self.ledger = self.folder / f"{self.name}.jsonl"

    def settings(self) -> dict:
        return {k: v for k, v in asdict(self.cfg).items() if k not in IGNORED}

    def prepare(self) -> dict[str, dict]:
        """Check the settings (rank 0 clears parts of other settings) -> the done videos by key."""
        if self.info.is_main:
            path = self.folder / SETTINGS
            if path.is_file() and json.loads(path.read_text()) != self.settings():
                print(f"extract: {self.folder} holds features of other settings: starting afresh")
                shutil.rmtree(self.folder)
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(self.settings(), indent=1))
        dist.barrier()
        return self.done()

    def done(self) -> dict[str, dict]:
        """The ledgers' done videos by key (the latest line of each) whose features are still there."""
        done = {row["key"]: row for row in self.rows() if "key" in row}
        return {key: row for key, row in done.items() if self.present(row)}

    def present(self, row: dict) -> bool:
        """Whether the features file of a done row exists (and has the size written, if recorded)."""
        folder = self.folder if self.cfg.one_file else Path(self.cfg.out)
        try:
            path = inside(folder, row["file"], what="ledger file")
            size = path.stat().st_size
        except (OSError, KeyError, ValueError):  # gone, or a ledger line not of ours
            return False
        return path.is_file() and row.get("bytes", size) == size

    def rows(self) -> list[dict]:
        """Every ledger line of every run so far."""
        out = []
        for ledger in sorted(self.folder.glob("*.jsonl")):
            out += [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]
        return out

    def record(self, rows: list[dict]) -> None:
        with open(self.ledger, "a") as fh:
            fh.writelines(json.dumps(row) + "\n" for row in rows)

    def part_file(self, suffix: str) -> Path:
        return self.folder / f"{self.name}{suffix}"

    def merge(self) -> tuple[Path, list[dict], int]:
        """Rank 0, once every rank is done: index.json (and the one file) -> (where the features
        are, the inputs that failed and were not done since, videos done)."""
        rows = self.rows()
        done = self.done()
        sources = {row["source"] for row in done.values()}
        errors = list(
            {row["path"]: row for row in rows if "error" in row and row["path"] not in sources}.values()
        )
        atomic_write_json(self.index, done)
        if self.cfg.one_file:
            merge_one_file(self.cfg, self.folder, done)
        return self.target, errors, len(done)


def one_file(cfg) -> Path:
    """The one output file: ``out`` with the suffix of ``format`` (.npz or .safetensors)."""
    return Path(cfg.out).with_suffix(".npz" if cfg.format == "npy" else ".safetensors")


def merge_one_file(cfg, folder: Path, done: dict[str, dict]) -> Path:
    """Every part's features into the one output file (safetensors keyed by video, or .npz)."""
    from safetensors.numpy import load_file, save

    features: dict[str, np.ndarray] = {}
    for name in sorted({row["file"] for row in done.values()}):
        path = inside(folder, name, what="ledger file")
        part = load_file(str(path)) if name.endswith(".safetensors") else dict(np.load(path))
        features.update({key: value for key, value in part.items() if key in done})
    target = one_file(cfg)
    with atomic_open(target) as fh:
        if cfg.format == "npy":
            np.savez(fh, **features)
        else:
            fh.write(save(features))
    return target
