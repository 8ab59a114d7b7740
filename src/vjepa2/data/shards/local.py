"""Shards as a local index, for what reads samples by index (probes, anticipation, physics-eval).

Training streams shards; an evaluation reads its set many times, in any order, several clips a
video: it is fetched once into a cache folder (one file per member, named by its key, and
``index.csv`` of ``path label`` lines), and ``read_index`` reads that. The cache is keyed by the
manifest's URL and contents, so a changed manifest is fetched again.

A copy is trusted only as far as it is checked. Each shard is downloaded whole (timeouts and
retries of its manifest's ``Network``), its size and sha256 compared with the manifest's (where
recorded) and its members counted; only then are its members unpacked, each name through
``safe_names.inside``, and the shard recorded in ``copy.json`` with the size of every file. A
reused copy is checked against that record and the manifest (file sizes: cheap); a shard that does
not match is fetched again. Members refused (an unsafe name, no video) are skipped and listed in
the folder's ``errors.json``; a shard that does not arrive whole stops with an error naming it,
and the incomplete copy is never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
from pathlib import Path

from vjepa2.atomic import atomic_path
from vjepa2.data.shards.manifest import Manifest, ShardInfo, manifest_url, read_manifest
from vjepa2.data.shards.remote import Network, RemoteError, open_url, retried
from vjepa2.errors import UserError
from vjepa2.safe_names import UnsafeNameError, inside

log = logging.getLogger(__name__)

CACHE = Path.home() / ".cache" / "vjepa2" / "shards"
RECORD = "copy.json"  # per shard: url, bytes, sha256, members, files [name, size, label], refused
ERRORS = "errors.json"


class ShardNotWhole(Exception):
    """A shard that did not arrive as the manifest describes it (the reason in words)."""


def local_copy(source: str, cache: str | Path | None = None, network: Network | None = None) -> Path:
    """The ``index.csv`` of a checked local copy of shard source ``source`` (fetched on first
    use; shards missing or not matching fetched again). Raises ``UserError`` naming the shards
    that did not arrive whole."""
    manifest = read_manifest(source, network)
    digest = hashlib.sha1((manifest_url(source) + manifest.to_json()).encode()).hexdigest()[:16]
    folder = Path(cache or CACHE) / digest
    folder.mkdir(parents=True, exist_ok=True)
    record = _read_json(folder / RECORD)
    kept = {
        str(i): record[str(i)]
        for i, info in enumerate(manifest.shards)
        if _intact(folder, manifest, i, info, record.get(str(i)))
    }
    todo = [i for i in range(len(manifest.shards)) if str(i) not in kept]
    taken = {name for entry in kept.values() for name, _, _ in entry["files"]}
    lost = []
    for i in todo:
        try:
            kept[str(i)] = _fetch(manifest, i, folder, taken)
            taken.update(name for name, _, _ in kept[str(i)]["files"])
        except ShardNotWhole as err:
            lost.append({"path": manifest.url(i), "error": str(err), "members": manifest.shards[i].count})
            log.warning("%s: %s", manifest.url(i), err)
        _write_json(folder / RECORD, kept)
    refused = [row for i in sorted(kept, key=int) for row in kept[i]["refused"]]
    _write_json(folder / ERRORS, lost + refused)
    if lost:
        members = sum(row["members"] for row in lost)
        raise UserError(
            f"{source}: {len(lost)} of {len(manifest.shards)} shards ({members} samples) did not arrive "
            f"whole, e.g. {lost[0]['path']}: {lost[0]['error']}; listed in {folder / ERRORS}. The local "
            "copy is not used; run again to fetch what is missing"
        )
    if refused:
        print(f"{source}: {len(refused)} shard member(s) refused and left out, listed in {folder / ERRORS}")
    index = folder / "index.csv"
    # './' keeps a name that starts with '#' from reading as a comment.
    lines = "".join(
        f"./{name} {label}\n" for i in sorted(kept, key=int) for name, _, label in kept[i]["files"]
    )
    if not index.is_file() or index.read_text() != lines:
        with atomic_path(index) as tmp:
            tmp.write_text(lines)
    if todo:
        print(f"fetched {len(todo)} shard(s) of {source} into {folder}")
    return index


def _intact(folder: Path, manifest: Manifest, i: int, info: ShardInfo, entry: dict | None) -> bool:
    """Whether shard ``i`` was copied as the manifest describes it and its files are still there."""
    try:
        if entry["url"] != manifest.url(i) or entry["members"] != info.count:
            return False
        if (info.bytes and entry["bytes"] != info.bytes) or (info.sha256 and entry["sha256"] != info.sha256):
            return False
        return all(inside(folder, name).stat().st_size == size for name, size, _ in entry["files"])
    except (TypeError, KeyError, ValueError, OSError):  # no entry, a damaged one, a file gone
        return False


def _fetch(manifest: Manifest, i: int, folder: Path, taken: set[str]) -> dict:
    """Download shard ``i`` into ``folder``, check it, unpack its members -> its record entry."""
    from vjepa2.data.shards.reader import Lost, error_text, shard_members

    info, url = manifest.shards[i], manifest.url(i)
    tmp = folder / f".shard-{i:06d}-{os.getpid()}.download"
    try:
        try:
            size, sha256 = retried(manifest.network, lambda: _download(url, tmp, manifest.network, info))
        except RemoteError as err:
            raise ShardNotWhole(err.reason) from None
        if info.bytes and size != info.bytes:
            raise ShardNotWhole(f"{size} bytes arrived, the manifest lists {info.bytes}")
        if info.sha256 and sha256 != info.sha256:
            raise ShardNotWhole(f"its sha256 {sha256[:12]}... is not the manifest's {info.sha256[:12]}...")
        files, refused, members, mine = [], [], 0, set()
        try:
            with open(tmp, "rb") as fh:
                for item in shard_members(fh, url, i, size):
                    members += 1
                    reason = (
                        item.reason if isinstance(item, Lost) else _unpack(folder, item, taken, mine, files)
                    )
                    if reason is not None:
                        refused.append({"path": item.name if isinstance(item, Lost) else f"{url}#{item.key}",
                                        "error": reason})  # fmt: skip
        except (tarfile.TarError, EOFError, ValueError) as err:  # a tar that breaks off: not whole
            raise ShardNotWhole(f"unreadable after {members} members ({error_text(err)})") from None
        if members != info.count:
            raise ShardNotWhole(f"{members} members arrived, the manifest lists {info.count}")
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "url": url,
        "bytes": size,
        "sha256": sha256,
        "members": members,
        "files": files,
        "refused": refused,
    }


def _unpack(folder: Path, sample, taken: set[str], mine: set[str], files: list) -> str | None:
    """Write one member's video into the copy -> None, or why it was refused (``taken``: the
    names of the other shards, ``mine``: of this one so far)."""
    name = f"{sample.key}{Path(sample.video.name).suffix}"
    if name in taken or name in mine:
        return "name refused: another member of the set has it"
    try:
        path = inside(folder, name, what="shard member")
    except UnsafeNameError as err:
        return f"name refused: {err.reason}"
    with atomic_path(path) as tmp:
        tmp.write_bytes(sample.video.data)
    mine.add(name)
    files.append([name, len(sample.video.data), int(sample.meta.get("label", 0))])
    return None


def _download(url: str, tmp: Path, network: Network, info: ShardInfo) -> tuple[int, str]:
    """One attempt to copy ``url`` to ``tmp`` -> (bytes, sha256)."""
    digest, size = hashlib.sha256(), 0
    with open_url(url, network, limit=info.bytes or None) as stream, open(tmp, "wb") as out:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))
