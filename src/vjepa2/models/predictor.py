"""The mask-token predictor used in pretraining.

Context tokens (encoder outputs) are projected to the predictor width; every target position gets
the same learned mask token; the joint sequence is sorted by position, run through the blocks
with RoPE on the true positions, normed, unsorted, and the target part projected back to the
encoder width.

The V-JEPA 2.1 predictor (``version == "2.1"``) reads the 4-level encoder output through a
2-layer MLP (g/G) or the plain output through one Linear (the distilled B/L), adds a learned image
or video embedding, and also projects the context tokens (``proj_context``): the dense loss
trains those too. Its outputs are 4 levels (g/G) or the ViT-G teacher's width (B/L).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vjepa2.models.blocks import Block, init_weights, rescale_blocks, run_blocks
from vjepa2.models.encoder import check_version
from vjepa2.models.rope import RoPE3D, token_coords


@dataclass
class PredictorConfig:
    enc_dim: int = 1024
    dim: int = 384
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    num_mask_tokens: int = 10
    eps: float = 1e-6
    rope_interleaved: bool = False
    checkpointing: bool = False
    # V-JEPA 2.1 options; the 2.0 values are the defaults
    version: str = "2.0"
    embed_hidden: int = 0  # > 0: the input embedding is Linear -> GELU -> Linear with this hidden width
    out_dim: int = 0  # width of the predictions; 0: enc_dim
    context_proj: bool = False  # also predict the context tokens
    modality_embed: bool = False

    def __post_init__(self):
        v21 = {k: getattr(self, k) for k in ("embed_hidden", "out_dim", "context_proj", "modality_embed")}
        check_version(self.version, self.context_proj, v21, "predictor")

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def pred_dim(self) -> int:
        return self.out_dim or self.enc_dim


def gather_tokens(tokens: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """tokens (B, N, D) at idx (B, K) -> (B, K, D)."""
    return tokens.gather(1, idx.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


class MaskPredictor(nn.Module):
    def __init__(self, cfg: PredictorConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.embed_hidden:
            hidden = cfg.embed_hidden
            self.embed = nn.Sequential(nn.Linear(cfg.enc_dim, hidden), nn.GELU(), nn.Linear(hidden, cfg.dim))
        else:
            self.embed = nn.Linear(cfg.enc_dim, cfg.dim)
        # (num_mask_tokens, 1, 1, dim), zero-initialised as in the released models; one is picked
        # per mask generator.
        self.mask_tokens = nn.Parameter(torch.zeros(cfg.num_mask_tokens, 1, 1, cfg.dim))
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, int(cfg.dim * cfg.mlp_ratio), cfg.eps) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.eps)
        self.proj = nn.Linear(cfg.dim, cfg.pred_dim)
        if cfg.context_proj:
            self.proj_context = nn.Linear(cfg.dim, cfg.pred_dim)
        self.rope = RoPE3D(cfg.head_dim, interleaved=cfg.rope_interleaved)
        init_weights(self)
        rescale_blocks(self.blocks)
        if cfg.modality_embed:
            self.image_embed = nn.Parameter(torch.empty(1, 1, cfg.dim).normal_(std=1e-6))
            self.video_embed = nn.Parameter(torch.empty(1, 1, cfg.dim).normal_(std=1e-6))

    def forward(
        self,
        context_tokens: torch.Tensor,
        context_idx: torch.Tensor,
        target_idx: torch.Tensor,
        grid: tuple[int, int, int],
        mask_index: int = 1,
        modality: str = "video",
        return_context: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Predict target tokens.

        context_tokens: (B, Kc, enc_dim) encoder outputs at ``context_idx`` (B, Kc).
        target_idx: (B, Kt) positions to predict; grid: (t, h, w) token grid of the full clip.
        mask_index: which mask token to use (taken modulo the number of mask tokens).
        modality: "video" or "image" (2.1: which learned embedding is added).
        Returns (B, Kt, pred_dim); with ``return_context`` (2.1) also the context predictions
        (B, Kc, pred_dim).
        """
        if modality not in ("video", "image"):
            raise ValueError(f"modality must be 'video' or 'image', got {modality!r}")
        if return_context and not self.cfg.context_proj:
            raise ValueError("return_context=True needs a predictor with a context projection (V-JEPA 2.1)")
        B, Kc, _ = context_tokens.shape
        Kt = target_idx.shape[1]
        context = self.embed(context_tokens)
        mask_token = self.mask_tokens[mask_index % self.cfg.num_mask_tokens]
        targets = mask_token.to(context.dtype).expand(B, Kt, -1)  # (1, 1, dim) -> (B, Kt, dim)
        x = torch.cat([context, targets], dim=1)  # (B, Kc + Kt, dim)
        idx = torch.cat([context_idx, target_idx], dim=1)
        # Sorting by position makes the sequence independent of how context and targets were split.
        order = idx.argsort(dim=1)
        x = gather_tokens(x, order)
        if self.cfg.modality_embed:
            x = x + (self.image_embed if modality == "image" else self.video_embed).to(x.dtype)
        rope = self.rope.tables(token_coords(idx.gather(1, order), grid))  # (B, K, head_dim) each
        x, _ = run_blocks(self.blocks, x, rope, None, self._checkpoint)
        x = self.norm(x)
        x = gather_tokens(x, order.argsort(dim=1))  # back to [context, targets] order
        if return_context:
            return self.proj(x[:, Kc:]), self.proj_context(x[:, :Kc])
        return self.proj(x[:, Kc:])

    @property
    def _checkpoint(self) -> bool:
        return self.cfg.checkpointing and self.training
