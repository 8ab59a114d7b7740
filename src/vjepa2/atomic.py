"""Atomic file writes: a file is either its old content or its new one, never half written.

Every layer writes through ``atomic_path`` (checkpoints, shards, results, markers), so a killed
process leaves no torn file behind for a rerun to trust.
"""

from __future__ import annotations

import contextlib
import errno
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
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; once the block has written it, it is flushed to
    disk and renamed over ``path``. On an error the temporary file is removed, ``path`` untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
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
