"""The user-facing model object: an encoder plus, when the checkpoint has one, a predictor."""

from __future__ import annotations

import torch
from torch import nn

from vjepa2.models.ac_predictor import ACPredictor
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.predictor import MaskPredictor, gather_tokens


class VJEPA2(nn.Module):
    """Encoder (+ mask-token predictor, or action-conditioned predictor).

    ``encode`` takes normalized clips (B, T, C, H, W) (see ``vjepa2.preprocess``) and returns
    tokens (B, N, D) ordered time, row, column. ``predict`` runs the mask-token predictor.
    """

    def __init__(
        self,
        encoder: VideoEncoder,
        predictor: MaskPredictor | None = None,
        ac_predictor: ACPredictor | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor
        self.ac_predictor = ac_predictor
        self._grid: tuple[int, int, int] | None = None

    @property
    def device(self) -> torch.device:
        return self.encoder.patch_embed.proj.weight.device

    def encode(
        self,
        clips: torch.Tensor,
        out_layers: list[int] | None = None,
        context_idx: torch.Tensor | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        """clips (B, T, C, H, W) (or images (B, C, H, W)) -> tokens (B, N, D).

        out_layers: return the normed outputs of these blocks instead (a list of (B, N, D)).
        context_idx: (B, K) to encode only those tokens (masked encoding) -> (B, K, D).
        The token grid is remembered for ``predict``.
        """
        clips = clips.to(self.device)
        self._grid = self.encoder.grid(clips.shape)
        return self.encoder(clips, context_idx=context_idx, out_layers=out_layers)

    def predict(
        self,
        tokens: torch.Tensor,
        context_idx: torch.Tensor | list[torch.Tensor],
        target_idx: torch.Tensor | list[torch.Tensor],
        mask_index: int = 1,
        grid: tuple[int, int, int] | None = None,
    ) -> torch.Tensor:
        """Predict the tokens at ``target_idx`` from those at ``context_idx``.

        tokens: (B, N, D), the full-clip output of ``encode``; the context is gathered here.
        context_idx, target_idx: (B, K) long, or lists of them (several mask sets, stacked along
            the batch as ``transformers`` does: the output is then (len * B, K_target, D)).
        grid: (t, h, w) of the clip; default: the grid of the last ``encode`` call, or the cube
            root layout implied by N for square inputs.
        Returns (B, K_target, D).
        """
        if self.predictor is None:
            raise RuntimeError("this checkpoint has no mask-token predictor")
        grid = grid or self._grid
        if grid is None:
            raise ValueError("pass grid=(t, h, w): predict() was called before any encode()")
        if isinstance(context_idx, (list, tuple)):
            context_idx = torch.cat(list(context_idx), dim=0)
            target_idx = torch.cat(list(target_idx), dim=0)
            tokens = tokens.repeat(context_idx.shape[0] // tokens.shape[0], 1, 1)
        context_idx, target_idx = context_idx.to(tokens.device), target_idx.to(tokens.device)
        context = gather_tokens(tokens, context_idx)
        return self.predictor(context, context_idx, target_idx, grid, mask_index=mask_index)

    def save(self, path) -> None:
        """Write our own format: ``path/model.safetensors`` + ``path/config.json``."""
        # The formats live in vjepa2.checkpoints, above the architectures: imported on use.
        from vjepa2.checkpoints.ours import save_model

        save_model(self, path)
