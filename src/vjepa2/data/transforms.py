"""Turning decoded frames into model input: the eval transform and the training augmentation.

Input frames are uint8 (T, H, W, 3) (numpy or torch); output clips are float32 (T, C, crop, crop),
scaled to [0, 1] and normalised with the ImageNet mean and std. Every spatial operation is one
call over all frames of a clip, so a clip is cropped, resized and flipped identically in time.

- ``eval_transform`` is the V-JEPA 2 evaluation preprocessing, the same as the ``transformers``
  video processor: resize the short side to int(crop * 256 / 224) (bilinear, antialiased, in uint8
  levels as torchvision resizes uint8 images), center crop, normalise.
- ``train_transform`` is the pretraining augmentation of the reference recipe: one random resized
  crop per clip (area scale [0.3, 1], log-uniform aspect ratio [0.75, 1.35], bilinear without
  antialiasing as the reference), horizontal flip with probability 0.5, normalise.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_clip(frames, device: str | torch.device | None = None) -> torch.Tensor:
    """Frames (T, H, W, C) numpy or tensor, values 0..255 -> tensor (T, C, H, W), dtype kept."""
    if not torch.is_tensor(frames):
        frames = np.asarray(frames)
        # Read-only views (a repeated image) are copied: torch wants writable memory.
        frames = torch.from_numpy(
            np.array(frames) if not frames.flags.writeable else np.ascontiguousarray(frames)
        )
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"expected frames (T, H, W, C) with C = 1 or 3, got {tuple(frames.shape)}")
    if frames.shape[-1] == 1:  # grey frames become RGB so the normalisation applies
        frames = frames.expand(*frames.shape[:-1], 3)
    return frames.to(device).permute(0, 3, 1, 2)


def normalize(clip: torch.Tensor) -> torch.Tensor:
    """(T, C, H, W) in [0, 255] -> float32: /255, minus ImageNet mean, over ImageNet std."""
    clip = clip.float()
    mean = torch.tensor(IMAGENET_MEAN, device=clip.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=clip.device).view(1, 3, 1, 1)
    return (clip / 255.0 - mean) / std


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) with the short side at ``size`` and the long side scaled, truncated."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def resize(clip: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    """Bilinear resize of (T, C, H, W) to ``size`` (height, width) in one call, as float."""
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip.float()
    return F.interpolate(clip.float(), size=size, mode="bilinear", align_corners=False, antialias=antialias)


def resize_uint8(clip: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize to uint8 levels, as torchvision resizes uint8 images.

    On the CPU, torch resizes uint8 directly (the kernel torchvision and ``transformers`` use), so
    the result is identical to theirs; elsewhere we resize in float and round, which can differ by
    one level on some pixels.
    """
    if clip.dtype == torch.uint8 and clip.device.type == "cpu":
        clip = clip.contiguous(memory_format=torch.channels_last)
        return F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=True).float()
    return resize(clip, size, antialias=True).round_().clamp_(0, 255)


def center_crop(clip: torch.Tensor, crop: int) -> torch.Tensor:
    """The central (crop, crop) window of (T, C, H, W); needs H, W >= crop."""
    height, width = clip.shape[-2:]
    if height < crop or width < crop:
        raise ValueError(f"cannot center-crop {crop}x{crop} from {height}x{width}")
    top, left = int((height - crop) / 2), int((width - crop) / 2)
    return clip[..., top : top + crop, left : left + crop]


def eval_transform(frames, crop: int = 256, device: str | torch.device | None = None) -> torch.Tensor:
    """V-JEPA 2 eval preprocessing: uint8 (T, H, W, C) -> float32 (T, C, crop, crop).

    Short side resized to int(crop * 256 / 224) (292 for 256, 438 for 384), center crop, ImageNet
    normalisation. On the CPU this equals ``transformers``' VJEPA2VideoProcessor to float rounding.
    """
    clip = to_clip(frames, device)
    size = short_side_size(*clip.shape[-2:], int(crop * 256 / 224))
    return normalize(center_crop(resize_uint8(clip, size), crop))


def sample_crop_box(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    rng: np.random.Generator,
    attempts: int = 10,
) -> tuple[int, int, int, int]:
    """A random crop (top, left, h, w) covering ``scale`` of the area with aspect w/h in ``ratio``.

    The aspect ratio is log-uniform. After ``attempts`` boxes that do not fit, the largest
    central box whose aspect ratio is within ``ratio`` is used.
    """
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        area = rng.uniform(*scale) * height * width
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(area * aspect)))
        h = int(round(math.sqrt(area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif aspect > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def train_transform(
    frames,
    crop: int = 256,
    scale: tuple[float, float] = (0.3, 1.0),
    ratio: tuple[float, float] = (0.75, 1.35),
    flip_prob: float = 0.5,
    rng: np.random.Generator | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Pretraining augmentation: uint8 (T, H, W, C) -> float32 (T, C, crop, crop).

    One random resized crop and one flip decision for the whole clip, drawn from ``rng`` (a seeded
    ``np.random.Generator``; a fresh unseeded one if None).
    """
    rng = rng if rng is not None else np.random.default_rng()
    clip = to_clip(frames, device)
    top, left, h, w = sample_crop_box(*clip.shape[-2:], scale, ratio, rng)
    clip = resize(clip[..., top : top + h, left : left + w], (crop, crop), antialias=False)
    if rng.random() < flip_prob:
        clip = clip.flip(-1)
    return normalize(clip)


def repeat_image(image: np.ndarray, num_frames: int) -> np.ndarray:
    """An image (H, W, C) as a still clip (num_frames, H, W, C) (a read-only view, no copy)."""
    return np.broadcast_to(image, (num_frames, *image.shape))
