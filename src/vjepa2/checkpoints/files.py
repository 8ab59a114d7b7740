"""Reading and writing the files every layout is made of: safe loads that name the file, atomic saves.

Loads go through ``torch.load(weights_only=True)``: a ``.pt`` file may hold only tensors and plain
Python values, so reading one never runs code. A file that is missing, empty, truncated or holds
other objects is a ``CheckpointError`` naming it. Saves never leave a half-written file: each is
written next to its destination, flushed to disk and renamed over it in one step (``os.replace``
is atomic on POSIX and Windows), so a crash loses at most the new file, never the previous one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vjepa2.atomic import atomic_path
from vjepa2.errors import MissingPathError, UserError


class CheckpointError(UserError):
    """A weights or checkpoint file that is empty, truncated, corrupt or of another kind."""


# -- reading --------------------------------------------------------------------------------------
def read_torch(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` restricted to tensors and plain containers (no arbitrary unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty, not a PyTorch checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, pickle errors, EOFError, ... on a bad file
        text = str(err)
        found = re.search(r"Unsupported (?:global|class): (?:GLOBAL )?(\S+)", text)
        if found:  # torch's weights-only unpickler met a Python object
            raise CheckpointError(
                f"{path}: not a plain-tensor checkpoint: it holds Python objects ({found.group(1).rstrip('.')}) "
                "besides tensors and plain values, and those are not unpickled"
            ) from None
        detail = re.search(r"WeightsUnpickler error:\s*(\S.*)", text)  # below torch's advice
        first_line = text.strip().splitlines()[0] if text.strip() else "no details"
        reason = detail.group(1) if detail else f"{type(err).__name__}: {first_line}"
        raise CheckpointError(
            f"{path}: cannot read the checkpoint ({reason}); the file is truncated, corrupt or not a PyTorch checkpoint"
        ) from None


def read_safetensors(file: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a ``.safetensors`` file."""
    file = Path(file)
    if not file.is_file():
        raise MissingPathError(f"{file}: file not found")
    try:
        return load_file(file)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"{file}: cannot read the safetensors file ({err}); it is truncated or corrupt"
        ) from None


def read_safetensors_dir(directory: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors`` in ``directory``, or of every shard its index lists."""
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        state = {}
        for shard in sorted(set(read_json(index).get("weight_map", {}).values())):
            state.update(read_safetensors(directory / shard))
        return state
    if not (directory / "model.safetensors").is_file():
        raise MissingPathError(f"{directory}: no model.safetensors (or sharded index) in this directory")
    return read_safetensors(directory / "model.safetensors")


def read_json(file: str | Path) -> dict:
    """A JSON object from ``file``."""
    file = Path(file)
    if not file.is_file():
        raise MissingPathError(f"{file}: file not found")
    try:
        data = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: expected a JSON object, found {type(data).__name__}")
    return data


def sub_state(state: dict, prefix: str) -> dict:
    """Entries whose key starts with ``prefix``, the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


# -- writing --------------------------------------------------------------------------------------
def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
    return path


def atomic_copy(src: Path, dst: Path) -> None:
    """Give ``dst`` the content of ``src`` atomically: a hard link when possible, else a copy."""
    with atomic_path(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def atomic_save_file(tensors: dict, file: Path, metadata: dict | None = None) -> None:
    """A safetensors file of ``tensors`` (moved to the CPU), written atomically."""
    with atomic_path(file) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)


def write_json(data: dict, file: Path) -> None:
    with atomic_path(file) as tmp:
        tmp.write_text(json.dumps(data, indent=2))
