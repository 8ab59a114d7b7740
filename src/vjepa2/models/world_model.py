"""The V-JEPA 2-AC world model as planning and training use it: frozen encoder + AC predictor.

Frames are encoded one at a time, each as a 2-frame clip (the frame duplicated, one tubelet),
and the tokens are layer-normed (parameter-free), as in the reference. The predictor reads
normalized actions and states (statistics of the training data) and predicts the next frame's
tokens; predictions are layer-normed again before they are fed back, so a rollout stays in the
space of encoded frames. ``rollout`` runs every candidate action sequence of a CEM iteration in
one batched predictor call per horizon step. Its folders (weights, spec, latent statistics) are
read and written by ``vjepa2.checkpoints.world_models``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vjepa2.data.trajectories import NormStats
from vjepa2.data.transforms import normalize, resize_uint8, to_clip
from vjepa2.models.ac_predictor import ACPredictor, KVCache
from vjepa2.models.encoder import VideoEncoder, layer_norm_features
from vjepa2.models.inputs import check_shape


@dataclass
class WorldModelSpec:
    """What a trained world model needs besides its weights (its file: ``checkpoints.world_models``).

    crop: frames are resized to crop x crop pixels before encoding (no center crop: nothing at
    the border of a scene is lost). blur: std in pixels of a Gaussian blur applied after resizing
    (0: none); a random or small encoder sees a small sprite only inside its own patch, and the
    blur spreads it so that latent distances grow smoothly with distances in the scene.
    standardize: latents are shifted and scaled per token and feature by training statistics
    (``LatentStats``), and predictions are not layer-normed again; for scenes where most of the
    image never changes, this puts the predictor's loss and the energy on what does change.
    state_update: how planning guesses the next state inside a rollout: "hold" (repeat the last
    known state) or "add" (add action * action_scale to the first action_dim state entries, as
    the reference's pose update). use_states: False feeds zeros instead of states.
    """

    crop: int = 64
    blur: float = 0.0
    standardize: bool = False
    state_update: str = "hold"
    action_scale: float = 1.0
    use_states: bool = True
    stats: NormStats | None = None


@dataclass
class LatentStats:
    """Mean and std (K, D) of encoded frames per token and feature."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def compute(cls, latents: torch.Tensor, floor: float = 0.1) -> LatentStats:
        """From latents (N, K, D); stds are floored at ``floor`` x their median, so coordinates
        that hardly ever change are not blown up."""
        latents = latents.float()
        std = latents.std(0)
        return cls(latents.mean(0), std.clamp(min=floor * float(std.median())))

    def apply(self, latents: torch.Tensor) -> torch.Tensor:
        """(..., K, D) -> standardized (..., K, D)."""
        return (latents - self.mean.to(latents.device)) / self.std.to(latents.device)


def gaussian_blur(clip: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (T, C, H, W) float, std ``sigma`` pixels, edges replicated."""
    radius = max(1, int(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=clip.device, dtype=clip.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    C = clip.shape[1]
    x = F.pad(clip, (radius,) * 4, mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)  # along rows
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)  # along columns


def frames_to_clips(frames, crop: int, blur: float = 0.0, device=None) -> torch.Tensor:
    """uint8 frames (T, H, W, 3) -> normalized 2-frame clips (T, 2, 3, crop, crop)."""
    clip = to_clip(frames, device)  # (T, 3, H, W)
    if tuple(clip.shape[-2:]) != (crop, crop):
        clip = resize_uint8(clip, (crop, crop))
    clip = clip.float()
    if blur > 0:
        clip = gaussian_blur(clip, blur)
    clip = normalize(clip)
    return clip[:, None].expand(-1, 2, -1, -1, -1)  # each frame its own clip, duplicated in time


@torch.no_grad()
def encode_frames(
    encoder: VideoEncoder, frames, crop: int, blur: float = 0.0, batch_size: int = 64, device=None
) -> torch.Tensor:
    """Layer-normed tokens of every frame: uint8 (T, H, W, 3) -> float32 (T, tokens_per_frame, D)."""
    device = device or encoder.patch_embed.proj.weight.device
    out = []
    for start in range(0, len(frames), batch_size):
        clips = frames_to_clips(frames[start : start + batch_size], crop, blur, device)
        out.append(layer_norm_features(encoder(clips)).float())
    return torch.cat(out)


class WorldModel:
    """Frozen encoder + AC predictor + normalization statistics (everything in eval mode).

    encode(frames) -> (T, K, D) latents; step(...) -> the next latent; rollout(...) -> H latents of
    a batch of action sequences. Actions and states are given in environment units.
    """

    def __init__(
        self,
        encoder: VideoEncoder,
        predictor: ACPredictor,
        spec: WorldModelSpec,
        device="cpu",
        latent_stats: LatentStats | None = None,
    ):
        if spec.state_update not in ("hold", "add"):
            raise ValueError(f"unknown state_update {spec.state_update!r}; expected 'hold' or 'add'")
        if spec.standardize and latent_stats is None:
            raise ValueError("a world model with standardized latents needs their LatentStats")
        self.latent_stats = latent_stats if spec.standardize else None
        self.encoder = encoder.to(device).eval()
        self.predictor = predictor.to(device).eval()
        self.spec = spec
        self.device = torch.device(device)
        self.action_dim = predictor.cfg.action_dim
        self.state_dim = predictor.cfg.state_dim
        patch = encoder.cfg.patch
        self.grid_hw = (spec.crop // patch, spec.crop // patch)
        self.tokens_per_frame = self.grid_hw[0] * self.grid_hw[1]

    def encode(self, frames) -> torch.Tensor:
        """uint8 frames (T, H, W, 3) or one frame (H, W, 3) -> latents (T, K, D)."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        latents = encode_frames(self.encoder, frames, self.spec.crop, self.spec.blur, device=self.device)
        return self.latent_stats.apply(latents) if self.latent_stats is not None else latents

    def _inputs(self, actions: torch.Tensor, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        stats = self.spec.stats
        if stats is not None:
            actions, states = stats.normalize_actions(actions), stats.normalize_states(states)
        if not self.spec.use_states:
            states = torch.zeros_like(states)
        return actions, states

    def step(self, latents: torch.Tensor, actions: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Next latent after a history: latents (B, t, K, D), actions (B, t, A), states (B, t, S)
        -> prediction of frame t, (B, K, D), layer-normed unless latents are standardized."""
        check_shape(actions, (3,), self.action_dim, "actions", "(B, t, A)")
        check_shape(states, (3,), self.state_dim, "states", "(B, t, S)")
        actions, states = self._inputs(actions.float(), states.float())
        tokens = latents.flatten(1, 2)  # (B, t * K, D)
        pred = self.predictor(tokens, actions, states, grid_hw=self.grid_hw)[:, -self.tokens_per_frame :]
        return pred if self.spec.standardize else layer_norm_features(pred)

    def next_state(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The state guessed after ``action``: (B, S), (B, A) -> (B, S)."""
        if self.spec.state_update == "hold":
            return state
        n = min(self.action_dim, self.state_dim)
        return torch.cat([state[:, :n] + self.spec.action_scale * action[:, :n], state[:, n:]], dim=1)

    @torch.no_grad()
    def rollout(self, latent: torch.Tensor, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Imagine H steps for a batch of action sequences, one predictor call per step; each call
        runs the new step's tokens only (earlier steps' keys and values come from a ``KVCache``),
        the same latents as ``step`` on the whole history at (H + 1) / 2 times less work.

        latent: (K, D) or (B, K, D) current frame; state: (S,) or (B, S); actions: (B, H, A).
        Returns (B, H, K, D): the predicted latents after each action.
        """
        check_shape(actions, (3,), self.action_dim, "actions", "(B, H, A)")
        check_shape(state, (1, 2), self.state_dim, "state", "(S,) or (B, S)")
        B, H, _ = actions.shape
        actions = actions.to(self.device, torch.float32)
        frame = latent.to(self.device).expand(B, *latent.shape[-2:])  # (B, K, D)
        state = state.to(self.device, torch.float32).expand(B, self.state_dim)  # (B, S)
        cache, preds = KVCache(), []
        for h in range(H):  # step h's tokens are computed once, then reused through the cache
            action, normed_state = self._inputs(actions[:, h : h + 1], state[:, None])
            pred = self.predictor(frame, action, normed_state, grid_hw=self.grid_hw, cache=cache)
            frame = pred if self.spec.standardize else layer_norm_features(pred)
            preds.append(frame)
            state = self.next_state(state, actions[:, h])
        return torch.stack(preds, dim=1)
