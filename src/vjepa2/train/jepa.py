"""The JEPA objective: the student (context encoder + predictor), its L1 loss against the EMA
target encoder's layer-normed features, the EMA update, and AdamW parameter groups.
(The V-JEPA 2.1 objective, built on these, is in ``train.jepa21``.)"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from vjepa2.models.encoder import VideoEncoder, layer_norm_features
from vjepa2.models.predictor import MaskPredictor, gather_tokens


class Student(nn.Module):
    """The trained part: context encoder + predictor, one module so that DDP/FSDP wrap it once."""

    def __init__(self, encoder: VideoEncoder, predictor: MaskPredictor, mask_index: int = 0):
        super().__init__()
        self.encoder, self.predictor, self.mask_index = encoder, predictor, mask_index

    def forward(
        self, clips: torch.Tensor, context_idx: list, target_idx: list, modality: str = "video"
    ) -> list:
        """clips (B, T, C, H, W); one (B, K) index pair per mask generator -> [(B, Kt, enc_dim)]."""
        grid = self.encoder.grid(clips.shape)
        return [self.predict(clips, ctx, tgt, grid, modality) for ctx, tgt in zip(context_idx, target_idx)]

    def predict(self, clips, context_idx, target_idx, grid, modality: str) -> torch.Tensor:
        """One mask generator: encode the context tokens (B, Kc), predict the targets (B, Kt)."""
        tokens = self.encoder(clips, context_idx=context_idx)  # (B, Kc, enc_dim)
        return self.predictor(tokens, context_idx, target_idx, grid, self.mask_index, modality)


class View(NamedTuple):
    """One batch a step trains on, with its masks (a NamedTuple: DDP moves its tensors)."""

    clips: torch.Tensor  # (B, T, C, H, W); T == 1 for images (2.1)
    context_idx: list[torch.Tensor]  # one (B, Kc) per mask generator
    target_idx: list[torch.Tensor]  # one (B, Kt) per mask generator
    modality: str = "video"  # or "image"


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on matrices only, none on biases and 1-D parameters (norms)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if name.endswith("bias") or param.ndim <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
    target_params = list(target.parameters())
    online_params = [p.detach() for p in online.parameters()]
    torch._foreach_mul_(target_params, momentum)
    torch._foreach_add_(target_params, online_params, alpha=1.0 - momentum)


def jepa_loss(
    student: nn.Module, target_encoder: nn.Module, clips: torch.Tensor, context_idx: list, target_idx: list
) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 between predictions and layer-normed EMA features at the targets, averaged over the mask
    generators -> (loss, target features (B, N, D) for diagnostics)."""
    with torch.no_grad():
        features = layer_norm_features(target_encoder(clips))  # (B, N, D), full clip
    preds = student(clips, context_idx, target_idx)
    losses = [
        (p.float() - gather_tokens(features, t).float()).abs().mean() for p, t in zip(preds, target_idx)
    ]
    return torch.stack(losses).mean(), features


class JepaObjective:
    """The V-JEPA 2 recipe as a pretraining objective: ``jepa_loss`` on the video view.

    Objectives are called as ``objective(student, target_encoder, views, step)`` -> (loss,
    {name: 0-dim tensor to log}, target features (B, N, D) for diagnostics); ``scalars(step)``
    gives the schedule values to log (none here)."""

    def __call__(self, student, target_encoder, views: list[View], step: int):
        (view,) = views  # 2.0 trains on videos only
        loss, features = jepa_loss(student, target_encoder, view.clips, view.context_idx, view.target_idx)
        return loss, {}, features

    def scalars(self, step: int) -> dict[str, float]:
        return {}
