"""The user-facing model object: an encoder plus, when the checkpoint has one, a predictor."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from vjepa2.models.ac_predictor import ACPredictor
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.inputs import check_clips, check_indices, check_tokens
from vjepa2.models.predictor import MaskPredictor, gather_tokens


class VJEPA2(nn.Module):
    """Encoder (+ mask-token predictor, or action-conditioned predictor).

    ``encode`` takes normalized clips (B, T, C, H, W) (see ``vjepa2.preprocess``) and returns
    tokens (B, N, D) ordered time, row, column. ``predict`` runs the mask-token predictor.
    ``version`` says which release the architecture follows: "2.0" or "2.1".
    """

    # What ``save`` calls: the file formats live in vjepa2.checkpoints, above the architectures,
    # which sets it when it loads (``checkpoints.ours.save_model``); models import nothing above.
    writer: ClassVar[Callable[[VJEPA2, object], None] | None] = None

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
        self._modality = "video"

    @property
    def version(self) -> str:
        return self.encoder.cfg.version

    @property
    def device(self) -> torch.device:
        return self.encoder.patch_embed.proj.weight.device

    def encode(
        self,
        clips: torch.Tensor,
        out_layers: list[int] | None = None,
        context_idx: torch.Tensor | None = None,
        levels: bool = False,
    ) -> torch.Tensor | list[torch.Tensor]:
        """clips (B, T, C, H, W) (or images (B, C, H, W)) -> tokens (B, N, D).

        out_layers: return the normed outputs of these blocks instead (a list of (B, N, D)).
        context_idx: (B, K) to encode only those tokens (masked encoding) -> (B, K, D).
        levels: (2.1) the 4-level output (B, N, 4D), each level normed by its own norm; the
            last D channels are the default output.
        2.1 encodes a single frame (T = 1, or (B, C, H, W)) with its image tokenizer. The token
        grid and the modality are remembered for ``predict``.
        """
        check_clips(clips, self.encoder.cfg.patch)
        if context_idx is not None:
            check_indices(
                context_idx, clips.shape[0], math.prod(self.encoder.grid(clips.shape)), "context_idx"
            )
        clips = clips.to(self.device)
        self._grid = self.encoder.grid(clips.shape)
        self._modality = "image" if self.encoder.is_image(clips) else "video"
        return self.encoder(clips, context_idx=context_idx, out_layers=out_layers, levels=levels)

    def predict(
        self,
        tokens: torch.Tensor,
        context_idx: torch.Tensor | list[torch.Tensor],
        target_idx: torch.Tensor | list[torch.Tensor],
        mask_index: int = 1,
        grid: tuple[int, int, int] | None = None,
        return_context: bool = False,
        modality: str | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Predict the tokens at ``target_idx`` from those at ``context_idx``.

        tokens: the encoder output the predictor reads (2.0 and the distilled 2.1 B/L: the
            default output; 2.1 g/G: the 4-level output, ``encode(..., levels=True)``), either of
            the full clip (B, N, D_in), gathered here at ``context_idx``, or of the context alone
            (B, K_context, D_in), as masked encoding (``encode(clips, context_idx=...)``) gives.
        context_idx, target_idx: (B, K) long, or lists of them (several mask sets, stacked along
            the batch as ``transformers`` does: the output is then (len * B, K_target, P)).
        grid: (t, h, w) of the clip; default: the grid of the last ``encode`` call.
        return_context: (2.1) also return the predictions at the context tokens (B, K_context, P).
        modality: (2.1) "video" or "image"; default: that of the last ``encode`` call.
        Returns (B, K_target, P): P is D for 2.0, 4D for 2.1 g/G, the teacher's 1664 for 2.1 B/L.
        """
        if self.predictor is None:
            raise RuntimeError("this checkpoint has no mask-token predictor")
        grid = grid or self._grid
        if grid is None:
            raise ValueError("pass grid=(t, h, w): predict() was called before any encode()")
        check_tokens(tokens, self.predictor.cfg.enc_dim)
        if isinstance(context_idx, (list, tuple)):
            context_idx = torch.cat(list(context_idx), dim=0)
            target_idx = torch.cat(list(target_idx), dim=0)
            tokens = tokens.repeat(context_idx.shape[0] // tokens.shape[0], 1, 1)
        n = grid[0] * grid[1] * grid[2]
        for name, idx in (("context_idx", context_idx), ("target_idx", target_idx)):
            check_indices(idx, tokens.shape[0], n, name)
        if tokens.shape[-1] != self.predictor.cfg.enc_dim:
            levels = (
                " (the 4-level output: encode(..., levels=True))" if self.predictor.cfg.embed_hidden else ""
            )
            raise ValueError(
                f"this predictor reads tokens {self.predictor.cfg.enc_dim} wide{levels}, got {tokens.shape[-1]}"
            )
        context_idx, target_idx = context_idx.to(tokens.device), target_idx.to(tokens.device)
        if tokens.shape[1] == n:
            context = gather_tokens(tokens, context_idx)
        elif tokens.shape[1] == context_idx.shape[1]:
            context = tokens
        else:
            raise ValueError(
                f"tokens hold {tokens.shape[1]} positions: expected the full clip ({n}, grid {grid}) "
                f"or the context alone ({context_idx.shape[1]})"
            )
        return self.predictor(
            context,
            context_idx,
            target_idx,
            grid,
            mask_index=mask_index,
            modality=modality or self._modality,
            return_context=return_context,
        )

    def save(self, path) -> None:
        """Write our own format: ``path/model.safetensors`` + ``path/config.json``."""
        if VJEPA2.writer is None:
            raise RuntimeError(
                "VJEPA2.save writes through vjepa2.checkpoints: import vjepa2.checkpoints first"
            )
        VJEPA2.writer(self, path)
