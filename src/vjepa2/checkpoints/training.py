"""Training checkpoints: one schema for every training command, exact resume, and old schemas.

``latest.pt`` (and ``step_XXXXXX.pt`` every ``run.save_every`` steps) is one dict, written
atomically and read with ``weights_only=True`` (``files``)::

    schema        2
    command       "pretrain", "train-ac", ...
    step          optimizer steps taken
    rng           every random generator's state (``rng_state``), for exact resume
    <module>      a state dict per module, our key names: "encoder", "predictor", "target_encoder"
    optimizer     the optimizer's state, keyed by parameter name (``distributed.full_state``)
    config        {module: its config} for the modules that have one (what ``vjepa2.load`` reads)
    run_config    the command's whole config
    metrics       the last logged values, e.g. {"loss": ...}
    data          where the data streams were (optional): e.g. the batches each rank took from
                  its shard stream, for an exact resume of streamed data

Before schema 2 each command had its own names: pretraining wrote ``opt`` and
``pretrain_config`` (and ``loss``), world-model training ``optimizer`` (a plain, index-keyed
``Optimizer.state_dict``) and ``train_config``. ``read_training_state`` renames them.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from vjepa2.atomic import atomic_copy
from vjepa2.checkpoints import keymaps as km
from vjepa2.checkpoints.files import CheckpointError, atomic_save, read_torch
from vjepa2.checkpoints.reference import read_reference
from vjepa2.checkpoints.shapes import Modules, build_encoder, build_predictor
from vjepa2.models.ac_predictor import ACPredictorConfig
from vjepa2.models.encoder import EncoderConfig
from vjepa2.models.predictor import PredictorConfig

LATEST = "latest.pt"
SCHEMA = 2
OLD_NAMES = {"opt": "optimizer", "pretrain_config": "run_config", "train_config": "run_config"}


def step_name(step: int) -> str:
    return f"step_{step:06d}.pt"


def save_checkpoint(state: dict, folder: str | Path, step: int, save_every: int = 0) -> Path:
    """Write ``state`` to ``folder/latest.pt``; also keep ``step_XXXXXX.pt`` when ``step`` is a
    multiple of ``save_every`` (> 0). Returns the path of latest.pt."""
    folder = Path(folder)
    latest = atomic_save(state, folder / LATEST)
    if save_every > 0 and step % save_every == 0:
        # latest.pt is replaced (not rewritten) by later saves, so a hard link to it stays intact.
        atomic_copy(latest, folder / step_name(step))
    return latest


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint dict, as written; raises CheckpointError naming the file."""
    state = read_torch(path, map_location)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, found {type(state).__name__}")
    return state


def find_latest(folder: str | Path) -> Path | None:
    """``folder/latest.pt`` if it exists, else None."""
    path = Path(folder) / LATEST
    return path if path.is_file() else None


def is_training_checkpoint(keys) -> bool:
    """Whether a checkpoint's keys (a dict or a set) are those of a training checkpoint."""
    return "config" in keys and ("encoder" in keys or "target_encoder" in keys)


def training_state(
    command: str,
    step: int,
    modules: dict,
    optimizer,
    configs: dict,
    run_config: dict,
    metrics: dict,
    data: dict | None = None,
) -> dict:
    """The checkpoint dict of the module docstring; ``modules`` maps names to state dicts."""
    state = {"schema": SCHEMA, "command": command, "step": step, "rng": rng_state(), **modules}
    state.update(optimizer=optimizer, config=configs, run_config=run_config, metrics=metrics)
    if data is not None:
        state["data"] = data
    return state


def upgrade(state: dict) -> dict:
    """A checkpoint of any schema under today's names (a new dict)."""
    state = {OLD_NAMES.get(key, key): value for key, value in state.items()}
    if "loss" in state:
        state["metrics"] = {"loss": state.pop("loss")}
    state.setdefault("schema", SCHEMA)
    return state


def read_training_state(path: str | Path) -> dict:
    """A training checkpoint of any schema, upgraded; a reference pretraining checkpoint gives its
    weights alone (``encoder``, ``predictor``, ``target_encoder``: no step, optimizer or RNG)."""
    state = load_checkpoint(path)
    if "schema" in state or "config" in state:  # reference checkpoints have neither
        return upgrade(state)
    online = read_reference(path, "encoder", state)
    target = read_reference(path, "target_encoder", state)
    weights = {"encoder": online.encoder, "predictor": online.predictor, "target_encoder": target.encoder}
    return {name: module.state_dict() for name, module in weights.items() if module is not None}


def read_training_modules(
    path: str | Path, encoder_key: str = "target_encoder", ckpt: dict | None = None
) -> Modules:
    """The encoder ``encoder_key`` (else ``encoder``) and the predictor of a training checkpoint."""
    ckpt = load_checkpoint(path) if ckpt is None else ckpt
    config = ckpt["config"]
    key = encoder_key if encoder_key in ckpt else "encoder"
    encoder = build_encoder(
        km.strip_prefixes(ckpt[key]), f"{path} [{key}]", EncoderConfig(**config["encoder"])
    )
    predictor = None
    if ckpt.get("predictor") is not None and config.get("predictor"):
        state = km.strip_prefixes(ckpt["predictor"])
        cls = ACPredictorConfig if "action_encoder.weight" in state else PredictorConfig
        predictor = build_predictor(state, f"{path} [predictor]", cls(**config["predictor"]))
    return Modules(encoder, predictor)


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
