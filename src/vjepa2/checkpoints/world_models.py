"""World-model folders, as ``vjepa2 train-ac`` writes them and the planner reads them.

    model.safetensors + config.json    encoder and AC predictor, our format (``ours``)
    world_model.json                   ``WorldModelSpec``: crop, blur, state handling, statistics
    latent_stats.safetensors           ``LatentStats`` (only for standardized latents)

Every file is written atomically, so a run killed while exporting leaves the previous export.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vjepa2.checkpoints.files import atomic_save_file, read_json, read_safetensors, write_json
from vjepa2.checkpoints.loading import load
from vjepa2.checkpoints.ours import save_model
from vjepa2.data.trajectories import NormStats
from vjepa2.errors import MissingPathError, UserError
from vjepa2.models.ac_predictor import ACPredictor
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.model import VJEPA2
from vjepa2.models.world_model import LatentStats, WorldModel, WorldModelSpec

SPEC_FILE = "world_model.json"
LATENT_STATS_FILE = "latent_stats.safetensors"


def save_world_model(
    directory: str | Path,
    encoder: VideoEncoder,
    predictor: ACPredictor,
    spec: WorldModelSpec,
    latent_stats: LatentStats | None = None,
) -> None:
    """Write the folder ``load_world_model`` reads (the weights, the spec, the latent statistics)."""
    directory = Path(directory)
    save_model(VJEPA2(encoder, ac_predictor=predictor), directory)
    write_spec(spec, directory)
    if latent_stats is not None:
        stats = {"mean": latent_stats.mean, "std": latent_stats.std}
        atomic_save_file(stats, directory / LATENT_STATS_FILE)


def load_world_model(directory: str | Path, device="cpu") -> WorldModel:
    """The ``WorldModel`` of a folder written by ``save_world_model`` (everything in eval mode)."""
    directory = Path(directory)
    model = load(directory, device=device)
    if model.ac_predictor is None:
        raise UserError(f"{directory}: the model has no action-conditioned predictor")
    spec = read_spec(directory)
    latent_stats = read_latent_stats(directory) if spec.standardize else None
    return WorldModel(model.encoder, model.ac_predictor, spec, device, latent_stats)


def write_spec(spec: WorldModelSpec, directory: Path) -> None:
    data = dataclasses.asdict(spec)
    data["stats"] = spec.stats.to_dict() if spec.stats is not None else None
    write_json(data, directory / SPEC_FILE)


def read_spec(directory: Path) -> WorldModelSpec:
    file = directory / SPEC_FILE
    if not file.is_file():
        raise MissingPathError(f"{file}: missing; a world model folder is written by `vjepa2 train-ac`")
    data = read_json(file)
    stats = data.pop("stats", None)
    try:
        spec = WorldModelSpec(**data)
    except TypeError as err:
        raise UserError(f"{file}: unexpected fields ({err})") from None
    spec.stats = NormStats.from_dict(stats, str(file)) if stats else None
    return spec


def read_latent_stats(directory: Path) -> LatentStats:
    file = directory / LATENT_STATS_FILE
    if not file.is_file():
        raise MissingPathError(f"{file}: missing, but {SPEC_FILE} asks for standardized latents")
    tensors = read_safetensors(file)
    if set(tensors) != {"mean", "std"}:
        raise UserError(f"{file}: expected the tensors 'mean' and 'std', found {sorted(tensors)}")
    return LatentStats(tensors["mean"], tensors["std"])
