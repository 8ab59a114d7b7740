"""Where downloaded weights live, the switches that govern downloads, and their checksums.

Folder: ``$VJEPA2_CACHE``, else ``$XDG_CACHE_HOME/vjepa2``, else ``~/.cache/vjepa2``; each file
at its path under the release's base URL (``vitl.pt``, ``evals/ssv2-vitl-16x2x3.pt``), so a
mirror, the cache and the release share one layout. Switches, read at each call:

- ``VJEPA2_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``): no network; only the cache and a mirror folder;
- ``VJEPA2_MIRROR``: a folder or an http(s) base URL holding the same file names, used instead of
  the release's server (air-gapped sites).

Beside each file, ``<file>.sha256`` holds its SHA-256 (``sha256sum -c`` reads it), recorded when
the file first arrives and checked on every load: a file that changed on disk is never loaded.
A digest pinned in the table wins over the recorded one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tqdm import tqdm

from vjepa2.atomic import atomic_path
from vjepa2.errors import UserError
from vjepa2.weights.http import part_file, validator_file
from vjepa2.weights.table import Weights

TRUE = {"1", "true", "yes", "on"}
CHUNK = 8 << 20
BAR_FROM = 1 << 30  # hashing shows a progress bar from this size on (bytes)


class ChecksumError(UserError):
    """A cached file whose size or SHA-256 is not the one recorded or pinned for it."""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE


def offline_switch() -> str | None:
    """The environment variable that turns downloads off, or None when they are on."""
    return next((name for name in ("VJEPA2_OFFLINE", "HF_HUB_OFFLINE") if _flag(name)), None)


def mirror() -> str | None:
    """``VJEPA2_MIRROR``: a folder or an http(s) base URL (no trailing slash), or None."""
    value = os.environ.get("VJEPA2_MIRROR", "").strip()
    return value.rstrip("/") if value else None


def cache_dir() -> Path:
    if os.environ.get("VJEPA2_CACHE"):
        return Path(os.environ["VJEPA2_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "vjepa2"


def cached_file(entry: Weights) -> Path:
    """Where ``entry``'s file is (or will be) in the cache."""
    return cache_dir() / entry.file


def sidecar(file: Path) -> Path:
    return file.with_name(file.name + ".sha256")


def sha256_of(file: Path) -> str:
    """The hex SHA-256 of ``file``, read in 8 MiB chunks (a bar for files over 1 GiB)."""
    digest = hashlib.sha256()
    size = file.stat().st_size
    bar = tqdm(
        total=size,
        unit="B",
        unit_scale=True,
        desc=f"sha256 {file.name}",
        disable=size < BAR_FROM,
        leave=False,
    )
    with open(file, "rb") as fh, bar:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def recorded(file: Path) -> str | None:
    """The digest in ``file``'s sidecar, or None when it has none (or an unreadable one)."""
    side = sidecar(file)
    if not side.is_file():
        return None
    words = side.read_text().split()
    return words[0].lower() if words and len(words[0]) == 64 else None


def record(file: Path, digest: str) -> None:
    try:
        with atomic_path(sidecar(file)) as tmp:
            tmp.write_text(f"{digest}  {file.name}\n")
    except OSError:  # a read-only shared cache: the pinned digest, if any, still applies
        pass


def check(file: Path, entry: Weights, digest: str | None = None) -> str:
    """Check ``file`` against the size and digest pinned for ``entry`` or recorded beside it
    (recording one at first sight); returns its digest. ``digest``: already computed."""
    size = file.stat().st_size
    if entry.size is not None and size != entry.size:
        raise ChecksumError(
            f"{file}: {size:,} bytes, but {entry.name} is {entry.size:,}; the file is truncated or "
            f"another one: fetch it again with `vjepa2 weights download {entry.name} --force`"
        )
    expected, source = entry.sha256, "pinned in the weights table"
    if expected is None:
        expected, source = recorded(file), f"recorded in {sidecar(file).name} when it arrived"
    digest = digest or sha256_of(file)
    if expected is not None and digest != expected:
        raise ChecksumError(
            f"{file}: SHA-256 {digest[:16]}... differs from {expected[:16]}... {source}; the file "
            f"changed on disk or is corrupt and is not loaded: fetch it again with "
            f"`vjepa2 weights download {entry.name} --force`"
        )
    if recorded(file) != digest:
        record(file, digest)
    return digest


def forget(file: Path) -> None:
    """Remove a cached file, its sidecar and any partial download of it."""
    part = part_file(file)
    for path in (file, sidecar(file), part, validator_file(part)):
        path.unlink(missing_ok=True)
