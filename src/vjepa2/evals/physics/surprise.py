"""Surprise: how badly the frozen predictor foresees what a video really does next.

A window of ``window`` frames slides over the video by ``stride`` frames. Within each window the
encoder encodes the first ``context`` frames alone (masked encoding: the context tokens are the
tubelets of those frames), the frozen mask-token predictor predicts the tokens of the frames
after them, and the surprise of the window is the mean L1 distance between that prediction and
the layer-normed tokens the encoder gives for the whole window (as the pretraining targets).
A video's curve is the surprise of each window, placed at the first predicted frame.

This is the protocol of the companion intuitive-physics work (sliding windows, past-to-future
masks, L1 on layer-normed targets); its defaults there are 16-frame windows with several context
lengths. The built-in world's clips are 16 frames at 4 fps, so the defaults here are 8-frame
windows, 4 context frames, stride 2.

The pixel baseline's surprise is the mean absolute change between consecutive frames of the
predicted part of the window (in 0-1 pixel units): a task that pixels alone solve is then seen
as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vjepa2.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform
from vjepa2.errors import UserError
from vjepa2.models.encoder import layer_norm_features
from vjepa2.models.model import VJEPA2
from vjepa2.models.precision import autocast


@dataclass
class Windows:
    """Sliding windows over a video: ``window`` frames every ``stride``, the first ``context``
    of them seen; ``frame_step`` subsamples the video first."""

    window: int = 8
    context: int = 4
    stride: int = 2
    frame_step: int = 1

    def check(self, tubelet: int) -> None:
        if not 0 < self.context < self.window:
            raise UserError(
                f"context ({self.context}) must be between 0 and the window ({self.window}) frames"
            )
        if self.context % tubelet or self.window % tubelet:
            raise UserError(
                f"window ({self.window}) and context ({self.context}) must be multiples of {tubelet}"
            )
        if self.stride < 1 or self.frame_step < 1:
            raise UserError(f"stride ({self.stride}) and frame_step ({self.frame_step}) must be at least 1")

    def starts(self, num_frames: int) -> list[int]:
        """First frame of every window of a video of ``num_frames`` (already subsampled)."""
        return list(range(0, num_frames - self.window + 1, self.stride))

    def times(self, num_windows: int) -> np.ndarray:
        """Frame (of the original video) of the first predicted frame of each of the first
        ``num_windows`` windows."""
        return (np.arange(num_windows) * self.stride + self.context) * self.frame_step


def window_clips(frames: np.ndarray, windows: Windows, crop: int) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> every window as a clip, (W, window, 3, crop, crop) normalized."""
    frames = frames[:: windows.frame_step]
    starts = windows.starts(len(frames))
    if not starts:
        raise UserError(f"a video of {len(frames)} frames is shorter than the window ({windows.window})")
    clip = eval_transform(frames, crop)  # (T, 3, crop, crop)
    return torch.stack([clip[s : s + windows.window] for s in starts])


def split_tokens(
    model: VJEPA2, clips: torch.Tensor, context: int
) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """Context (past) and target (future) token indices of clips (B, T, C, H, W): (B, Kc), (B, Kt)."""
    grid = model.encoder.grid(clips.shape)
    per_step = grid[1] * grid[2]
    past = context // model.encoder.cfg.tubelet * per_step
    n = grid[0] * per_step
    B = clips.shape[0]
    idx = torch.arange(n, device=clips.device)
    return idx[:past].expand(B, -1), idx[past:].expand(B, -1), grid


@torch.no_grad()
def model_surprise(
    model: VJEPA2, clips: torch.Tensor, context: int, dtype: str = "fp32", mask_index: int = 0
):
    """Surprise of each window clip (B, T, C, H, W) -> (B,) float32."""
    if model.predictor is None:
        raise UserError(
            "surprise needs a checkpoint with a mask-token predictor (the encoder alone cannot predict)"
        )
    clips = clips.to(model.device)
    context_idx, target_idx, grid = split_tokens(model, clips, context)
    levels = model.predictor.cfg.embed_hidden > 0  # V-JEPA 2.1 g/G read and predict 4 levels
    with autocast(model.device, dtype):
        targets = model.encoder(clips, levels=levels).float()  # (B, N, D or 4D)
        past = model.encoder(clips, context_idx=context_idx, levels=levels)
        pred = model.predictor(past, context_idx, target_idx, grid, mask_index=mask_index)
    if pred.shape[-1] != targets.shape[-1]:
        raise UserError(
            f"the predictor predicts {pred.shape[-1]} features but the encoder gives {targets.shape[-1]} "
            "(a distilled V-JEPA 2.1 predictor predicts its teacher's features): surprise needs both alike"
        )
    targets = level_norm(targets, levels, model.encoder.cfg.dim)
    future = targets[:, target_idx[0]]
    return (pred.float() - future).abs().mean(dim=(1, 2))


def level_norm(tokens: torch.Tensor, levels: bool, dim: int) -> torch.Tensor:
    """The pretraining targets: layer-normed tokens; with levels, each D-wide level on its own."""
    if not levels:
        return layer_norm_features(tokens)
    return torch.cat([layer_norm_features(level) for level in tokens.split(dim, dim=-1)], dim=-1)


def pixel_surprise(clips: torch.Tensor, context: int) -> torch.Tensor:
    """The no-model baseline: mean |frame t - frame t-1| over the predicted frames of each window
    clip (B, T, C, H, W) (from the last context frame on) -> (B,)."""
    future = clips[:, context - 1 :].float()
    return (future[:, 1:] - future[:, :-1]).abs().mean(dim=(1, 2, 3, 4))


def surprise_curves(
    videos: list[np.ndarray],
    windows: Windows,
    crop: int,
    model: VJEPA2 | None = None,
    batch_size: int = 32,
    dtype: str = "fp32",
    mask_index: int = 0,
) -> list[np.ndarray]:
    """The surprise curve (one value per window) of each video, uint8 (T, H, W, 3) each; windows
    of several videos go through the model together, ``batch_size`` at a time. ``model=None``
    gives the pixel baseline."""
    if not videos:
        return []
    clips = [window_clips(v, windows, crop) for v in videos]
    flat = torch.cat(clips)
    values = []
    for start in range(0, len(flat), batch_size):
        batch = flat[start : start + batch_size]
        if model is None:
            values.append(pixel_surprise(unnormalized(batch), windows.context))
        else:
            values.append(model_surprise(model, batch, windows.context, dtype, mask_index).cpu())
    curves = torch.cat(values).numpy()
    bounds = np.cumsum([0] + [len(c) for c in clips])
    return [curves[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def unnormalized(clips: torch.Tensor) -> torch.Tensor:
    """Normalized clips back to 0-1 pixel values (the pixel baseline compares pixels)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1)
    return clips * std + mean
