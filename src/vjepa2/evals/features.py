"""Frozen-encoder features for the evaluations: encoders, clips, chosen layers and a disk cache.

- ``load_encoder("random:tiny")`` builds a seeded, randomly initialised model of a preset (the
  baseline every probe table needs); any other source is a checkpoint (``checkpoints.loading``).
- ``ClipDataset`` gives every sample as views (M, S, T, C, H, W): S segments (windows spread over
  the video whose tokens are concatenated into one sequence, as the reference's multi-segment
  probes) times M = clips x spatial views (scored separately, softmax averaged at test time).
- ``FeatureExtractor`` encodes views to tokens (B, M, S * N', D'): the last layer, or several
  layers concatenated along tokens (the reference's Diving48 probe: N' = L * N, D' = D) or along
  features (N' = N, D' = L * D). ``read_layers(..., levels=True)`` names the 4 levels of a V-JEPA
  2.1 encoder, each read through its own level norm (along features: its 4-level output). The attentive probe has no position embedding, so the order of
  the concatenated tokens does not matter.
- ``FeatureCache`` keeps each clip's tokens in a safetensors file keyed by the clip's path, in a
  folder named after everything that changes the tokens (weights, version, layers or levels,
  frames, crop, ...). It is only valid for deterministic clips (no augmentation); then the
  encoder runs once per clip.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vjepa2.atomic import atomic_path
from vjepa2.checkpoints.loading import load_encoder  # noqa: F401 - the evals' way to an encoder
from vjepa2.data.clips import transform_clips
from vjepa2.data.datasets import IndexedVideos, read_index
from vjepa2.data.transforms import eval_transform, normalize, resize_uint8, short_side_size, to_clip
from vjepa2.data.video import read_clip
from vjepa2.errors import UserError
from vjepa2.models.held import hold
from vjepa2.models.model import VJEPA2
from vjepa2.models.precision import autocast, resolve_dtype
from vjepa2.safe_names import inside

log = logging.getLogger(__name__)


def weights_fingerprint(model: VJEPA2) -> str:
    """A short hash of a few encoder tensors: tells apart weights saved under the same path.
    The norm is the one of the plain output (2.0: the final norm; 2.1: the last level's)."""
    enc = model.encoder
    norm = enc.level_norm(len(enc.blocks) - 1)
    h = hashlib.sha1()
    for tensor in (enc.patch_embed.proj.weight, norm.weight, enc.blocks[-1].mlp.fc2.weight):
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def check_layers(model: VJEPA2, layers: list[int], source: str = "the encoder") -> list[int]:
    """``layers`` when each names a block of ``model`` (negative: counted from the end), else a
    UserError naming the model's depth: the encoder would wrap an index past its depth around."""
    depth = len(model.encoder.blocks)
    wrong = [i for i in layers if not -depth <= i < depth]
    if wrong:
        raise UserError(
            f"layers {wrong}: {source} has {depth} blocks, so a layer is from {-depth} to {depth - 1}"
        )
    return list(layers)


def read_layers(model: VJEPA2, layers: list[int], levels: bool = False) -> list[int]:
    """The encoder blocks a probe reads: ``layers`` (checked against the depth), or with ``levels``
    the levels of a V-JEPA 2.1 encoder (``encode(out_layers=...)`` then passes each through its
    own level norm)."""
    if not levels:
        return check_layers(model, layers)
    if layers:
        raise UserError(f"give layers or levels, not both (got layers {list(layers)} and levels)")
    if not model.encoder.cfg.level_layers:
        raise UserError(f"levels need a V-JEPA 2.1 encoder; this one is V-JEPA {model.version}")
    return list(model.encoder.cfg.level_layers)


# -- clips ----------------------------------------------------------------------------------------
def spatial_views(frames: np.ndarray, crop: int, num_views: int) -> torch.Tensor:
    """uint8 frames (T, H, W, 3) -> normalized views (V, T, C, crop, crop).

    One view is the standard eval transform (short side to crop * 256 / 224, centre crop). Several
    views follow the reference's multi-view test: short side resized to ``crop``, then crops
    evenly spaced along the long side from one end to the other.
    """
    if num_views == 1:
        return eval_transform(frames, crop)[None]
    clip = to_clip(frames)
    clip = resize_uint8(clip, short_side_size(*clip.shape[-2:], crop))  # (T, C, H', W')
    height, width = clip.shape[-2:]
    step = (max(height, width) - crop) // (num_views - 1)
    views = []
    for i in range(num_views):
        if height > width:
            views.append(clip[..., i * step : i * step + crop, :crop])
        else:
            views.append(clip[..., :crop, i * step : i * step + crop])
    return normalize(torch.stack(views))


def single_frame(views: torch.Tensor) -> torch.Tensor:
    """Replace every clip of views (..., T, C, H, W) by its middle frame repeated T times."""
    T = views.shape[-4]
    middle = views.narrow(-4, T // 2, 1)
    return middle.expand_as(views).contiguous()


class ClipDataset(IndexedVideos):
    """Clips for probes: ``dataset[i]`` -> dict(clip (M, S, T, C, crop, crop), label, index, path).

    ``source``: a CSV index / folder (see ``vjepa2.data.datasets.read_index``) or a list of
    (path, label). Each sample reads ``num_clips * num_segments`` windows: random within equal
    parts of the video when ``train`` (with the probe's random resized crop), else evenly spread.
    Clip k takes windows k, k + num_clips, ... as its segments, so each clip covers the video.
    M = num_clips * num_views. Unreadable files give None (drop them with ``collate_items``).
    """

    def __init__(
        self,
        source,
        num_frames: int = 16,
        fps: float | None = 4,
        frame_step: int | None = None,
        crop: int = 256,
        num_segments: int = 1,
        num_clips: int = 1,
        num_views: int = 1,
        train: bool = False,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (0.75, 4 / 3),
        flip_prob: float = 0.0,
        seed: int = 0,
    ):
        if isinstance(source, (list, tuple)):
            self.samples = [(Path(p), int(label)) for p, label in source]
        else:
            self.samples = read_index(source)
        if train and (num_clips > 1 or num_views > 1):
            raise ValueError("training clips have one clip and one view (num_clips = num_views = 1)")
        self.num_frames, self.crop, self.train, self.seed = num_frames, crop, train, seed
        self.fps, self.frame_step = (None, frame_step) if frame_step else (fps, None)
        self.num_segments, self.num_clips, self.num_views = num_segments, num_clips, num_views
        self.scale, self.ratio, self.flip_prob = tuple(scale), tuple(ratio), flip_prob

    def __getitem__(self, index: int) -> dict | None:
        return self.read_sample(index, lambda path: self.load(path, index))

    def load(self, path: Path, index: int) -> torch.Tensor:
        K, S, V = self.num_clips, self.num_segments, self.num_views
        rng = np.random.default_rng([self.seed, index, self.epoch]) if self.train else None
        frames = read_clip(path, self.num_frames, self.fps, self.frame_step, K * S, rng)  # (K*S, T, H, W, 3)
        frames = frames.reshape(S, K, *frames.shape[1:]).swapaxes(0, 1)  # (K, S, T, H, W, 3)
        if self.train:  # one clip, its S segments each with its own crop and flip
            segments = transform_clips(
                frames[0], self.crop, True, rng, self.scale, self.ratio, self.flip_prob
            )
            return segments[None]  # (1, S, T, C, crop, crop)
        views = torch.stack([torch.stack([spatial_views(f, self.crop, V) for f in clip]) for clip in frames])
        # views: (K, S, V, T, C, crop, crop) -> (K * V, S, T, C, crop, crop)
        return views.transpose(1, 2).flatten(0, 1)


# -- tokens ---------------------------------------------------------------------------------------
class FeatureCache:
    """Tokens of deterministic clips on disk: ``folder/<spec hash>/<path hash>.safetensors``."""

    def __init__(self, folder: str | Path, spec: dict):
        text = json.dumps(spec, sort_keys=True)
        self.folder = Path(folder) / hashlib.sha1(text.encode()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / "spec.json") as tmp:
            tmp.write_text(json.dumps(spec, indent=1, sort_keys=True))

    def file(self, path: str) -> Path:
        # Size and modification time are part of the key: a video rewritten in place (new clips
        # made into the same folder) must not be served the old video's tokens.
        try:
            stat = Path(path).stat()
            key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
        except OSError:
            key = str(path)
        # A hash names the file, never the clip's path; inside() still refuses a planted link.
        return inside(self.folder, f"{hashlib.sha1(key.encode()).hexdigest()[:24]}.safetensors")

    def get(self, path: str) -> torch.Tensor | None:
        file = self.file(path)
        if not file.is_file():
            return None
        try:
            return load_file(file)["tokens"]
        except Exception as err:  # noqa: BLE001 - a damaged entry is recomputed, not fatal
            log.warning("%s: unreadable cache entry for %s (%s); recomputing", file, path, err)
            return None

    def put(self, path: str, tokens: torch.Tensor) -> None:
        with atomic_path(self.file(path)) as tmp:
            save_file({"tokens": tokens.contiguous().cpu()}, tmp, metadata={"path": str(path)})


class FeatureExtractor:
    """Frozen encoder -> probe input tokens, with optional disk cache.

    layers: block indices to read (empty: the final output); concat: "tokens" or "features".
    dtype: the encoder's weights are held in it (``models/held.py``): "bf16" (CPU or GPU, under
    autocast for the heads), "fp32", "int8" (quantized Linear layers, CPU; the heads a probe trains
    on it stay fp32), "auto": bf16 where the device does it natively (``models/precision.py``).
    hold_weights: False keeps the fp32 weights (bf16 then runs under autocast), for a caller that
    saves the encoder afterwards.
    """

    def __init__(
        self,
        model: VJEPA2,
        layers: list[int] | None = None,
        concat: str = "tokens",
        single_frame: bool = False,
        dtype: str = "auto",
        cache: FeatureCache | None = None,
        hold_weights: bool = True,
    ):
        if concat not in ("tokens", "features"):
            raise UserError(f"layer concatenation must be 'tokens' or 'features', got {concat!r}")
        self.model, self.layers, self.concat = model, list(layers or []), concat
        self.dtype = resolve_dtype(dtype, model.device, inference=True)
        self.single_frame, self.cache = single_frame, cache
        if hold_weights:  # bf16 / int8 weights held, no fp32 copy (else autocast over fp32 weights)
            model.encoder = hold(model.encoder, self.dtype)
        self.encoder_calls = 0

    @property
    def dim(self) -> int:
        """Width D' of the tokens the probe sees."""
        L = max(1, len(self.layers)) if self.concat == "features" else 1
        return self.model.encoder.dim * L

    def autocast(self):
        return autocast(self.model.device, self.dtype)

    @torch.no_grad()
    def encode(self, views: torch.Tensor) -> torch.Tensor:
        """views (B, M, S, T, C, H, W) -> tokens (B, M, S * N', D') float32."""
        B, M, S = views.shape[:3]
        if self.single_frame:
            views = single_frame(views)
        clips = views.flatten(0, 2).to(self.model.device)  # (B * M * S, T, C, H, W)
        self.encoder_calls += 1
        with self.autocast():
            out = self.model.encode(clips, out_layers=self.layers or None)
        outs = out if isinstance(out, list) else [out]  # L x (B*M*S, N, D)
        tokens = torch.cat(outs, dim=1 if self.concat == "tokens" else -1).float()
        return tokens.view(B, M, S * tokens.shape[1], tokens.shape[2])

    def __call__(self, items: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """Items of a ``ClipDataset`` (dicts with "clip", or "tokens" when cached) -> (tokens
        (B, M, N, D') on the model's device, labels (B,) long). Encoded clips go to the cache."""
        todo = [i for i, item in enumerate(items) if "tokens" not in item]
        tokens: list[torch.Tensor | None] = [item.get("tokens") for item in items]
        if todo:
            fresh = self.encode(torch.stack([items[i]["clip"] for i in todo]))
            for i, t in zip(todo, fresh):
                tokens[i] = t
                if self.cache is not None:
                    self.cache.put(items[i]["path"], t)
        labels = torch.tensor([item["label"] for item in items], dtype=torch.long)
        device = self.model.device
        return torch.stack([t.to(device) for t in tokens]), labels.to(device)


class CachedClips(torch.utils.data.Dataset):
    """A ClipDataset that serves cached tokens instead of decoding the video when it can."""

    def __init__(self, clips: ClipDataset, cache: FeatureCache | None):
        self.clips, self.cache = clips, cache

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict | None:
        if self.cache is not None:
            path, label = self.clips.samples[index]
            tokens = self.cache.get(str(path))
            if tokens is not None:
                return {"tokens": tokens, "label": label, "index": index, "path": str(path)}
        return self.clips[index]


def collate_items(batch: list[dict | None]) -> list[dict]:
    """Keep items as a list (cached and fresh ones mix); drop unreadable ones (None)."""
    return [item for item in batch if item is not None]


def make_loader(dataset, batch_size: int, shuffle: bool, workers: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=collate_items,
        generator=generator,
        persistent_workers=False,
    )
