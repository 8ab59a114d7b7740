"""Atomic file writes: a file is either its old content or its new one, never half written.

Every file the package writes goes through ``atomic_path`` or a helper built on it
(``atomic_open``, ``atomic_write_text``, ``atomic_write_json``; ``checkpoints.files`` adds torch
and safetensors files), so a killed process leaves no torn file behind for a rerun to trust.
The exceptions are files that only ever grow (append-only logs and ledgers, a resumable
download's ``.part``) and lock files; ``tests/test_atomic_writes.py`` lists each with its reason.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename durable (best effort: some file systems cannot open folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path, keep_suffix: bool = False):
    """Yield a temporary path beside ``path``; once the block has written it, it is flushed to
    disk and renamed over ``path``. On an error the temporary file is removed, ``path`` untouched.

    ``keep_suffix``: the temporary name ends with ``path``'s suffix, for writers that choose the
    format from it (matplotlib, PyAV, Pillow)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tail = path.suffix if keep_suffix else ""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{tail}")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except Exception as err:
        # Writers that hit a full disk say it in their own words ("unexpected pos", "requested
        # and written"): seen from here, while the partial file still fills it, it is ENOSPC.
        if not (isinstance(err, OSError) and err.errno is not None) and disk_full(path.parent):
            raise OSError(errno.ENOSPC, f"no space left on {path.parent}", str(path)) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def disk_full(folder: Path, margin: int = 1 << 20) -> bool:
    """Whether the file system of ``folder`` has less than ``margin`` bytes left."""
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb", **kw):
    """``open`` a temporary file beside ``path`` for writing (``mode`` "w" or "wb", ``kw`` as
    ``open`` takes them); it replaces ``path`` once the block ends without an error."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole file: mode 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, **kw) as fh:
        yield fh


def atomic_copy(src: Path, dst: Path) -> None:
    """Give ``dst`` the content of ``src`` atomically: a hard link when possible, else a copy."""
    with atomic_path(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """``path.write_text(text)``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: Path, data, indent: int | None = 1, sort_keys: bool = False) -> None:
    """``data`` as JSON (``json.dumps`` with ``indent`` and ``sort_keys``) in ``path``, atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys))


def atomic_savefig(fig, path: Path, **kw) -> None:
    """``fig.savefig(path, **kw)`` (a matplotlib figure; the format from the suffix), atomically."""
    with atomic_path(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, **kw)
