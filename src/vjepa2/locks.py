"""One writer per output folder: an advisory lock file that names the run holding it.

Two runs writing one folder interleave their logs and overwrite each other's checkpoints and
shards, and both say "done". Every command that writes a folder holds ``folder_lock`` while it
runs: the lock is ``fcntl.flock`` on ``<folder>/.vjepa2.lock``, which the kernel releases when the
process dies however it dies, so a lock left by a killed run is never in the way; the file's text
(pid, host, command, start time) only says who holds it, or who held it last and died (a clean
exit removes the file).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import sys
from pathlib import Path

from vjepa2.errors import UserError

LOCK_FILE = ".vjepa2.lock"

# The lock files this process holds: taking one again (the CLI around a command, the training
# scaffold inside it) nests instead of locking the process out of its own folder.
_held: set[Path] = set()


class FolderInUseError(UserError):
    """Another live run holds the output folder."""


def lock_path(target: str | Path) -> Path:
    """The lock file of an output folder; an output file (``--out a.npz``) locks ``.a.npz.lock``
    beside it, so that two one-file outputs in one folder do not block each other."""
    target = Path(target)
    if target.suffix and not target.is_dir():
        return target.with_name(f".{target.name}.lock")
    return target / LOCK_FILE


def _holder(fh) -> dict:
    fh.seek(0)
    try:
        return json.loads(fh.read() or "{}")
    except ValueError:
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    return (f"{holder.get('command', 'a vjepa2 command')} (pid {holder.get('pid')} on "
            f"{holder.get('host')}, since {holder.get('since')})")  # fmt: skip


def _acquire(path: Path, target) -> object:
    """Open and flock ``path``; retried when the file was replaced while we waited (its holder
    removes it on release), so that two runs never hold two different files of one name."""
    for _ in range(100):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a+")
        except OSError as err:
            raise UserError(f"cannot write in {path.parent}: {err.strerror}") from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _describe(_holder(fh))
            fh.close()
            raise FolderInUseError(
                f"{target} is in use by {other}; wait for it to finish or choose another output"
            ) from None
        try:
            if os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino:
                return fh
        except FileNotFoundError:
            pass
        fh.close()
    raise UserError(f"{path}: could not take the lock (the file keeps changing)")


@contextlib.contextmanager
def folder_lock(target: str | Path, command: str):
    """Hold the lock of output folder (or file) ``target`` for the block; creates the folder.
    Raises ``FolderInUseError`` at once, naming the folder and the run holding it, when another
    live process holds it. A lock whose holder died is taken over, and that is said on stderr."""
    path = lock_path(target).absolute()
    if path in _held:
        yield path
        return
    created = not path.parent.exists()
    fh = _acquire(path, target)
    stale = _holder(fh)
    if stale:  # a clean exit removes the file: one left with text means its holder was killed
        print(f"{command}: taking over the lock of {_describe(stale)}, which is no longer running",
              file=sys.stderr)  # fmt: skip
    since = datetime.datetime.now().isoformat(timespec="seconds")
    fh.seek(0)
    fh.truncate()
    fh.write(
        json.dumps({"command": command, "pid": os.getpid(), "host": socket.gethostname(), "since": since})
    )
    fh.flush()
    _held.add(path)
    try:
        yield path
    finally:
        _held.discard(path)
        path.unlink(missing_ok=True)  # still holding it: a waiting run sees the inode change (_acquire)
        fh.close()  # closing the last descriptor releases the flock
        if created and not any(path.parent.iterdir()):
            path.parent.rmdir()  # a run that failed before writing anything leaves no empty folder
