"""``vjepa2 weights list | download | path | verify``: the released checkpoints from the shell.

``path`` never downloads: it prints where a file is, or where to put it on a machine without
network (``cp vitl.pt "$(vjepa2 weights path vitl)"``); ``download`` prints the same path once
the file is there and checked.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from vjepa2.config import opt
from vjepa2.errors import UserError
from vjepa2.weights import hf
from vjepa2.weights.cache import ChecksumError, cache_dir, cached_file, check, mirror, offline_switch
from vjepa2.weights.fetch import fetch, lookup, status
from vjepa2.weights.table import BASE_URL, KINDS, TABLE, Weights


@dataclass
class WeightsListConfig:
    kind: str = opt("", help=f"only the rows of this kind: {', '.join(KINDS)}")


@dataclass
class WeightsNamesConfig:
    names: list[str] = opt([], help="checkpoint names or hub ids (vjepa2 weights list)", positional=True)


@dataclass
class WeightsDownloadConfig(WeightsNamesConfig):
    force: bool = opt(False, help="fetch again even when the cache holds the file")


def _size(entry: Weights) -> str:
    return f"{entry.size / 1e9:.1f} GB" if entry.size else ""


def run_weights_list(cfg: WeightsListConfig) -> int:
    from rich.console import Console
    from rich.table import Table

    if cfg.kind and cfg.kind not in KINDS:
        raise UserError(f"--kind must be one of {', '.join(KINDS)}, got {cfg.kind!r}")
    source = mirror() or BASE_URL
    table = Table(
        title="Released V-JEPA 2 checkpoints",
        caption=f"files from {source}/ into {cache_dir()}; hub ids into {hf.hf_cache_dir()}. "
        "Every name loads: vjepa2.load(NAME), --checkpoint NAME, vjepa2 weights download NAME",
    )
    for column in ("name", "also", "kind", "what", "size", "cached"):
        table.add_column(column, overflow="fold")
    for entry in TABLE:
        if cfg.kind and entry.kind != cfg.kind:
            continue
        also = ", ".join(n for n in entry.names[1:] if not n.endswith(".pt"))
        table.add_row(entry.name, also, entry.kind, entry.what, _size(entry), "yes" if status(entry) else "")
    Console().print(table)
    return 0


def _names(cfg: WeightsNamesConfig) -> list[Weights]:
    if not cfg.names:
        raise UserError("give one or more names (vjepa2 weights list shows them)")
    return [lookup(name) for name in cfg.names]


def run_weights_download(cfg: WeightsDownloadConfig) -> int:
    for entry in _names(cfg):
        try:
            path = fetch(entry, force=cfg.force)
        except ChecksumError as err:  # asked to download: a damaged copy is replaced, not kept
            print(f"{err}; fetching it again", file=sys.stderr)
            path = fetch(entry, force=True)
        print(path)
    return 0


def run_weights_path(cfg: WeightsNamesConfig) -> int:
    for entry in _names(cfg):
        path = status(entry)
        if path is None:
            path = hf.repo_folder(entry.repo) if entry.kind == "hf" else cached_file(entry)
            print(f"{entry.name}: not downloaded yet (vjepa2 weights download {entry.name})", file=sys.stderr)
        print(path)
    return 0


def run_weights_verify(cfg: WeightsNamesConfig) -> int:
    """Check cached files against their pinned or recorded SHA-256 (all cached ones when no
    name is given); exit status 1 when one is missing or damaged."""
    entries = [lookup(name) for name in cfg.names] or [e for e in TABLE if status(e)]
    if not entries:
        print(f"nothing cached in {cache_dir()} or {hf.hf_cache_dir()}")
    failed = 0
    for entry in entries:
        ok, note = _verify(entry)
        failed += not ok
        print(f"{'ok ' if ok else 'BAD'} {entry.name}: {note}")
    if offline_switch() is None and failed:
        print(
            "fetch a damaged or missing file again with `vjepa2 weights download NAME --force`",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _verify(entry: Weights) -> tuple[bool, str]:
    path = status(entry)
    if path is None:
        return False, "not downloaded"
    if entry.kind == "hf":
        bad = hf.verify_snapshot(path)
        return not bad, f"{path}" + (f": damaged {', '.join(bad)}" if bad else "")
    try:
        digest = check(Path(path), entry)
    except ChecksumError as err:
        return False, str(err)
    return True, f"{path} sha256 {digest}"
