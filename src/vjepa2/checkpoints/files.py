"""Reading and writing the files every layout is made of: safe loads that name the file, atomic saves.

Loads go through ``torch.load(weights_only=True)``: a ``.pt`` file may hold only tensors and plain
Python values, so reading one never runs code. A file that is missing, empty, truncated or holds
other objects is a ``CheckpointError`` naming it; a refusal of the weights-only unpickler is told
by its exception (``pickle.UnpicklingError``), not its wording, and says that nothing was run. Saves never leave a half-written file: each is
written next to its destination, flushed to disk and renamed over it in one step (``os.replace``
is atomic on POSIX and Windows), so a crash loses at most the new file, never the previous one.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vjepa2.atomic import atomic_path, atomic_write_json
from vjepa2.errors import MissingPathError, UserError


class CheckpointError(UserError):
    """A weights or checkpoint file that is empty, truncated, corrupt or of another kind."""


# -- reading --------------------------------------------------------------------------------------
def read_torch(path: str | Path, map_location: str | torch.device = "cpu", mapped: bool = False) -> Any:
    """``torch.load`` restricted to tensors and plain containers (no arbitrary unpickling).

    mapped: the tensors memory-mapped from the file instead of read (``_load_mapped``), for models
    loaded to be used; training state that is resumed and written over is read whole."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty, not a PyTorch checkpoint")
    try:
        if mapped:
            return _load_mapped(path, map_location)
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:  # the weights-only unpickler refused what the file holds
        raise CheckpointError(refusal_message(path, str(err))) from None
    except Exception as err:  # torch raises RuntimeError, EOFError, ... on a bad file
        raise CheckpointError(
            f"{path}: cannot read the checkpoint ({_first_line(err)}); the file is truncated, corrupt or "
            "not a PyTorch checkpoint"
        ) from None


def _load_mapped(path: Path, map_location) -> Any:
    """The file's tensors memory-mapped, not read: released checkpoints hold the online and EMA
    encoders, the predictor and optimizer state (gigabytes) where one encoder is wanted, and only
    the pages of the tensors used are ever read. Files in torch's old (pre-zip) format cannot be
    mapped and are read whole."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=True)
    except RuntimeError as err:
        if "mmap" not in str(err):
            raise
        return torch.load(path, map_location=map_location, weights_only=True)


def refusal_message(path: Path, text: str) -> str:
    """What to tell the user when torch's weights-only unpickler refused ``path`` (``text``: its
    error): whatever the wording, nothing in the file was run, and no advice to load it unsafely."""
    found = re.search(r"GLOBAL (\S+?)\.?(?:\s|$)", text) or re.search(
        r"Unsupported class:? (\S+?)\.?(?:\s|$)", text
    )
    if found:  # a Python object: calling it on load is how a pickle runs code
        return (
            f"{path}: not a plain-tensor checkpoint: it holds Python objects ({found.group(1)}) besides "
            "tensors and plain values, made by calling code on load; the file was refused and none of "
            "that code was run"
        )
    detail = next((line.strip() for line in text.splitlines() if _plain(line)), "no details")
    return (
        f"{path}: cannot read the checkpoint (refused by the safe loader: {detail}); nothing in the file "
        "was run: it holds more than tensors and plain values, or is corrupt or not a PyTorch checkpoint"
    )


def _plain(line: str) -> bool:
    """A line of torch's refusal that states the problem (not its advice, not its links)."""
    advice = ("weights_only", "trust", "safe_globals", "http", "Please file", "Weights only load failed")
    return bool(line.strip()) and not any(word in line for word in advice)


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


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


def atomic_save_file(tensors: dict, file: Path, metadata: dict | None = None) -> None:
    """A safetensors file of ``tensors`` (moved to the CPU), written atomically."""
    with atomic_path(file) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)


def write_json(data: dict, file: Path) -> None:
    atomic_write_json(file, data, indent=2)
