"""A released checkpoint's name made into a local path: from the cache, a mirror or the network.

``local_weights`` is what every loader calls with a name that is no existing path: it looks the
name up in the table, fetches the file unless it is cached, checks the file's SHA-256 (on every
call, so a file changed on disk is never loaded) and returns its path. Direct files come, in
this order, from the cache, the mirror (``VJEPA2_MIRROR``: a folder, or an http(s) base URL) or
the release's server; ``transformers`` repositories come from the Hugging Face cache or hub.
Concurrent processes (the ranks of one torchrun) take turns through a lock file, so one
downloads while the others wait and then find the file in place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

from vjepa2.atomic import fsync_dir
from vjepa2.errors import MissingPathError, UserError
from vjepa2.weights import hf
from vjepa2.weights.cache import (
    ChecksumError,
    cached_file,
    check,
    forget,
    mirror,
    offline_switch,
    record,
    sha256_of,
)
from vjepa2.weights.http import DownloadError, download, part_file, validator_file
from vjepa2.weights.table import Weights, close_names, find

try:
    import fcntl
except ImportError:  # Windows: no lock; concurrent downloads of one file are then the user's care
    fcntl = None

KIND_WORDS = {
    "encoder": "a pretrained model",
    "ac": "an action-conditioned model",
    "probe": "an attentive probe",
    "hf": "a transformers repository",
}


def lookup(name: str, kinds: tuple[str, ...] | None = None, loader: str = "vjepa2.load") -> Weights:
    """The table row of ``name``; an error naming close names when there is none, or saying
    which loader reads it when its kind is not one of ``kinds``."""
    entry = find(name)
    if entry is None:
        close = close_names(name)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise MissingPathError(
            f"{name}: no such file or directory, and no released checkpoint has this name{hint}; "
            "`vjepa2 weights list` shows the names"
        )
    if kinds is not None and entry.kind not in kinds:
        other = "vjepa2.load_probe" if entry.kind == "probe" else "vjepa2.load"
        raise UserError(
            f"{name} is {KIND_WORDS[entry.kind]}, which {loader} does not read: use {other}({name!r})"
        )
    return entry


def resolve(source: str | Path, kinds: tuple[str, ...] | None = None, loader: str = "vjepa2.load") -> Path:
    """``source`` as a path when it exists or looks like one (it holds a ``/`` and names no hub
    repository: the caller then says it is missing); else the released checkpoint so named,
    fetched and checked. kinds: the table's kinds the caller reads (others: an error naming the
    loader that reads them)."""
    path = Path(source)
    text = str(source)
    if path.exists() or (find(text) is None and ("/" in text or os.sep in text)):
        return path
    return local_weights(text, kinds, loader)


def local_weights(name: str, kinds: tuple[str, ...] | None = None, loader: str = "vjepa2.load") -> Path:
    """The local path of the released checkpoint ``name`` (a file, or a ``transformers`` folder),
    fetched if needed and checked; see the module docstring."""
    return fetch(lookup(name, kinds, loader))


def fetch(entry: Weights, force: bool = False) -> Path:
    """``entry``'s local path. force: fetch again even if cached. A cached file that fails its
    check raises ``ChecksumError`` (``force`` replaces it)."""
    if entry.kind == "hf":
        return hf.snapshot(entry.repo, force=force)
    dest = cached_file(entry)
    with _locked(dest):
        if force:
            forget(dest)
        if dest.is_file():
            check(dest, entry)
        else:
            _obtain(entry, dest)
    return dest


def _obtain(entry: Weights, dest: Path) -> None:
    """Bring ``entry``'s file to ``dest`` from the mirror or the server, checked, then renamed in
    place (the ``.part`` file is the temporary file: it must outlive a failed try, which
    ``atomic_path`` would remove)."""
    part = part_file(dest)
    base = mirror()
    if base and not base.startswith(("http://", "https://")):
        _copy_from_folder(entry, Path(base.removeprefix("file://")).expanduser(), part)
    else:
        url = f"{base}/{entry.file}" if base else entry.url
        switch = offline_switch()
        if switch:
            raise MissingPathError(
                f"{entry.name}: {entry.file} is not in the cache and downloads are off ({switch}=1); "
                f"fetch {url} and put it at {dest} (or set VJEPA2_MIRROR to a folder holding it)"
            )
        print(f"downloading {entry.name} from {url} to {dest}", file=sys.stderr, flush=True)
        download(url, part, entry.size, label=entry.name)
    digest = sha256_of(part)
    if entry.sha256 is not None and digest != entry.sha256:
        part.unlink()
        raise ChecksumError(
            f"{entry.name}: the download's SHA-256 {digest[:16]}... is not the pinned {entry.sha256[:16]}...; "
            "it was removed (a wrong file on the mirror, or a changed release)"
        )
    if entry.size is not None and part.stat().st_size != entry.size:
        part.unlink()
        raise DownloadError(f"{entry.name}: received {part.stat().st_size:,} bytes, expected {entry.size:,}")
    os.replace(part, dest)
    validator_file(part).unlink(missing_ok=True)
    fsync_dir(dest.parent)
    record(dest, digest)


def _copy_from_folder(entry: Weights, folder: Path, part: Path) -> None:
    """A mirror folder's copy of ``entry`` into ``part``: a hard link when it can be, else a copy.
    The folder holds the release's layout (``evals/...``) or every file at its top."""
    if not folder.is_dir():
        raise MissingPathError(f"VJEPA2_MIRROR={folder}: no such folder (a folder or an http(s) URL)")
    candidates = [folder / entry.file, folder / Path(entry.file).name]
    source = next((c for c in candidates if c.is_file()), None)
    if source is None:
        raise MissingPathError(
            f"{entry.name}: {entry.file} is not in the mirror folder {folder} (looked for "
            f"{' and '.join(str(c) for c in dict.fromkeys(candidates))}); get it from {entry.url}"
        )
    part.parent.mkdir(parents=True, exist_ok=True)
    part.unlink(missing_ok=True)
    try:
        os.link(source, part)
    except OSError:  # another file system
        shutil.copyfile(source, part)


def status(entry: Weights) -> Path | None:
    """Where ``entry`` is cached, or None when it is not (no network, no checksum)."""
    if entry.kind == "hf":
        return hf.cached_snapshot(entry.repo)
    dest = cached_file(entry)
    return dest if dest.is_file() else None


@contextlib.contextmanager
def _locked(dest: Path):
    """Hold ``<dest>.lock`` (an advisory lock) while ``dest`` is fetched or checked."""
    if fcntl is None:
        yield
        return
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fh = open(dest.with_name(dest.name + ".lock"), "a")
    except OSError:  # a read-only shared cache: nothing will be written there anyway
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
