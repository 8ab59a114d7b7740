"""Training checkpoints: atomic saves, safe loads and the random state needed for exact resume.

A save never leaves a half-written ``latest.pt``: the file is written next to its destination,
flushed to disk and renamed over it in one step (``os.replace`` is atomic on POSIX and Windows).
A crash while writing loses at most the new checkpoint, never the previous one. Loads go through
``torch.load(weights_only=True)``, so a checkpoint holds only tensors and plain Python values; the
random states are converted to that form by ``rng_state``.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

LATEST = "latest.pt"


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, truncated or not a checkpoint."""


def step_name(step: int) -> str:
    return f"step_{step:06d}.pt"


def _fsync_dir(folder: Path) -> None:
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


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


def _atomic_copy(src: Path, dst: Path) -> None:
    """Give ``dst`` the content of ``src`` atomically: a hard link when possible, else a copy."""
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def save_checkpoint(state: dict, folder: str | Path, step: int, save_every: int = 0) -> Path:
    """Write ``state`` to ``folder/latest.pt``; also keep ``step_XXXXXX.pt`` when ``step`` is a
    multiple of ``save_every`` (> 0). Returns the path of latest.pt."""
    folder = Path(folder)
    latest = atomic_save(state, folder / LATEST)
    if save_every > 0 and step % save_every == 0:
        # latest.pt is replaced (not rewritten) by later saves, so a hard link to it stays intact.
        _atomic_copy(latest, folder / step_name(step))
    return latest


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict with ``weights_only=True``; raises CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, pickle errors, EOFError, ... on a bad file
        raise CheckpointError(
            f"{path}: cannot read the checkpoint ({type(err).__name__}: {err}); "
            "the file is truncated, corrupt or holds objects other than tensors and plain values"
        ) from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, found {type(state).__name__}")
    return state


def find_latest(folder: str | Path) -> Path | None:
    """``folder/latest.pt`` if it exists, else None."""
    path = Path(folder) / LATEST
    return path if path.is_file() else None


def rng_state() -> dict:
    """The state of every random generator a training run draws from, as tensors and plain values."""
    version, mt_state, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "state": torch.tensor(mt_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the generators saved by ``rng_state`` (CUDA only if saved and available)."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    np_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
            "has_gauss": np_state["has_gauss"],
            "gauss": np_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
