"""The clip path: decoded frames -> model clips, and a file -> model clips.

Every reader of clips for an encoder goes through here (the training data sets, the shard
reader, the probes' clips, ``vjepa2 extract``), so a clip is made one way whatever the source:

- ``transform_clips``: uint8 clips (num_clips, T, H, W, 3) -> float32 (num_clips, T, C, crop, crop)
  with the training augmentation (``train_transform``, one draw per clip) or the eval transform;
- ``load_clips``: read a file's clips (``vjepa2.data.video.read_clip`` or a reader of the same
  signature) and transform them; a still image is transformed once and repeated in time.

The world model's frames (``models.world_model.frames_to_clips``: each frame squashed to a square,
optionally blurred, as its own 2-frame clip) and the multi-view test crops of the probes
(``evals.features.spatial_views``) are other geometries, not other ways to the same clip.
"""

from __future__ import annotations

import numpy as np
import torch

from vjepa2.data.transforms import eval_transform, train_transform
from vjepa2.data.video import is_image


def transform_clips(
    frames,
    crop: int,
    train: bool = False,
    rng: np.random.Generator | None = None,
    scale: tuple[float, float] = (0.3, 1.0),
    ratio: tuple[float, float] = (0.75, 1.35),
    flip_prob: float = 0.5,
) -> torch.Tensor:
    """uint8 clips (num_clips, T, H, W, C) -> float32 (num_clips, T, C, crop, crop).

    ``train``: each clip its own random resized crop and flip from ``rng`` (``train_transform``
    with ``scale``, ``ratio``, ``flip_prob``); else the eval transform, the same for every clip.
    """
    if train:
        return torch.stack([train_transform(f, crop, scale, ratio, flip_prob, rng=rng) for f in frames])
    # One call over every frame of every clip: the transform is per frame, so this equals clip by
    # clip, in a fraction of the calls.
    num_clips, num_frames = frames.shape[:2]
    flat = eval_transform(frames.reshape(-1, *frames.shape[2:]), crop)
    return flat.view(num_clips, num_frames, *flat.shape[1:])


def load_clips(spec, read, path, rng: np.random.Generator | None) -> torch.Tensor:
    """Clips of ``path`` (a file or an ``EncodedVideo``) read with ``read`` (``read_clip``'s
    signature) as ``spec`` says (its num_frames, fps, frame_step, num_clips, sampling, crop,
    train), transformed: (T, C, crop, crop) float32, or (num_clips, T, C, crop, crop)."""
    frames = read(
        path, spec.num_frames, spec.fps, spec.frame_step, spec.num_clips, rng, spec.sampling
    )  # (num_clips, T, H, W, 3) uint8
    still = is_image(path)
    if still:  # transform one frame, then repeat it: the same result for a fraction of the work
        frames = frames[:, :1]
    clips = transform_clips(frames, spec.crop, spec.train, rng)
    clips = clips.expand(-1, spec.num_frames, -1, -1, -1) if still else clips
    return clips[0] if spec.num_clips == 1 else clips
