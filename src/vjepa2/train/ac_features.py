"""The frozen encoder side of V-JEPA 2-AC training: encoder choice, cached features, latents.

Every frame is encoded once (as a 2-frame clip, layer-normed: ``models.world_model``) and the
features are cached in a safetensors file whose header holds a key (encoder, preprocessing, data);
a run with the same key reads them back instead of encoding again. With standardized latents the
statistics come from the training trajectories only.

A V-JEPA 2.1 encoder works as the frozen encoder too (the released V-JEPA 2-AC is built on 2.0).
Its frames are encoded the 2.0 way, as duplicated 2-frame clips through the video tokenizer (with
the video embedding), not as images through its image tokenizer: the world model's frames come
from videos, one recipe serves both versions, and training and planning share ``encode_frames``.
The predictor reads the plain output (the last level, D wide), not the 4 levels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from vjepa2.checkpoints.files import atomic_save_file
from vjepa2.checkpoints.loading import RANDOM_PREFIX, load_encoder
from vjepa2.data.trajectories import Trajectory
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.world_model import LatentStats, WorldModelSpec, encode_frames
from vjepa2.runtime import distributed as dist
from vjepa2.train.log import progress


def build_encoder(source: str, overrides: dict, seed: int) -> tuple[VideoEncoder, str]:
    """The frozen encoder, ``random:<preset>`` (seeded) or loaded from a checkpoint, and a
    description of it (part of the feature cache key)."""
    model = load_encoder(source, seed=seed, predictor=False, **overrides)
    if source.startswith(RANDOM_PREFIX):
        description = f"{source} seed={seed} {sorted(overrides.items())}"
    else:
        stat = Path(source).stat()
        description = f"{Path(source).resolve()} {stat.st_size} {stat.st_mtime_ns}"
    return model.encoder, description


def frame_size(trajectories: list[Trajectory]) -> int:
    sizes = {t.frames.shape[1:3] for t in trajectories}
    if len(sizes) != 1:
        raise ValueError(f"trajectories have different frame sizes {sorted(sizes)}; set a crop")
    return max(sizes.pop())


def cached_features(
    trajectories: list[Trajectory], encoder: VideoEncoder, spec: WorldModelSpec, path: Path, key: str, device
) -> torch.Tensor:
    """Latents (sum T_i, K, D) of every frame, read from ``path`` when its key matches, else
    encoded (with a progress bar) and written there as float16."""
    if path.is_file():
        with open(path, "rb") as fh:  # the key sits in the safetensors header
            header_len = int.from_bytes(fh.read(8), "little")
            meta = json.loads(fh.read(header_len)).get("__metadata__", {})
        if meta.get("key") == key:
            return load_file(path)["features"].float()
    chunks = []
    bar = progress(len(trajectories), desc="encode frames", enabled=dist.is_main())
    for traj in trajectories:
        chunks.append(encode_frames(encoder, traj.frames, spec.crop, spec.blur, device=device).half().cpu())
        bar.update(1)
    bar.close()
    features = torch.cat(chunks)
    if dist.is_main():
        atomic_save_file({"features": features}, path, {"key": key})
    return features.float()


def latent_source(
    trajectories: list[Trajectory],
    encoder: VideoEncoder,
    spec: WorldModelSpec,
    cache: Path | None,
    key: str,
    train_frames: np.ndarray,
    device,
):
    """(latents_of, latent stats or None): latents_of maps (B, T) frame indices to latents
    (B, T, K, D), from features cached in ``cache`` (None: encoded on the fly), standardized if
    the spec says so (statistics of the training frames ``train_frames``, global indices)."""
    if cache is not None:
        path = cache
        if dist.is_main():
            features = cached_features(trajectories, encoder, spec, path, key, device)
        dist.barrier()
        if not dist.is_main():
            features = cached_features(trajectories, encoder, spec, path, key, device)
        if not spec.standardize:
            return (lambda idx: features[idx]), None
        stats = LatentStats.compute(features[torch.from_numpy(train_frames)])
        features = stats.apply(features)
        return (lambda idx: features[idx]), stats
    frames = np.concatenate([t.frames for t in trajectories])

    def encode(idx: np.ndarray) -> torch.Tensor:
        return encode_frames(encoder, frames[idx], spec.crop, spec.blur, device=device).cpu()

    stats = None
    if spec.standardize:  # statistics of (up to) 2048 training frames
        picks = np.random.default_rng(0).permutation(train_frames)[:2048]
        stats = LatentStats.compute(encode(np.sort(picks)))

    def latents_of(idx: torch.Tensor) -> torch.Tensor:
        latents = encode(idx.flatten().numpy())
        latents = stats.apply(latents) if stats is not None else latents
        return latents.view(*idx.shape, *latents.shape[1:])

    return latents_of, stats
