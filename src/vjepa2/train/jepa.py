"""The JEPA objective: the student (context encoder + predictor), its L1 loss against the EMA
target encoder's layer-normed features, the EMA update, and AdamW parameter groups."""

from __future__ import annotations

import torch
from torch import nn

from vjepa2.models.encoder import VideoEncoder, layer_norm_features
from vjepa2.models.predictor import MaskPredictor, gather_tokens


class Student(nn.Module):
    """The trained part: context encoder + predictor, one module so that DDP/FSDP wrap it once."""

    def __init__(self, encoder: VideoEncoder, predictor: MaskPredictor, mask_index: int = 0):
        super().__init__()
        self.encoder, self.predictor, self.mask_index = encoder, predictor, mask_index

    def forward(self, clips: torch.Tensor, context_idx: list, target_idx: list) -> list[torch.Tensor]:
        """clips (B, T, C, H, W); one (B, K) index pair per mask generator -> [(B, Kt, enc_dim)]."""
        grid = self.encoder.grid(clips.shape)
        preds = []
        for ctx, tgt in zip(context_idx, target_idx):
            tokens = self.encoder(clips, context_idx=ctx)  # (B, Kc, enc_dim)
            preds.append(self.predictor(tokens, ctx, tgt, grid, mask_index=self.mask_index))
        return preds


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
