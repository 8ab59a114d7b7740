"""The mask-token predictor used in pretraining.

Context tokens (encoder outputs) are projected to the predictor width; every target position gets
the same learned mask token; the joint sequence is sorted by position, run through the blocks
with RoPE on the true positions, normed, unsorted, and the target part projected back to the
encoder width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vjepa2.models.blocks import Block, init_weights, rescale_blocks, run_blocks
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

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads


def gather_tokens(tokens: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """tokens (B, N, D) at idx (B, K) -> (B, K, D)."""
    return tokens.gather(1, idx.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


class MaskPredictor(nn.Module):
    def __init__(self, cfg: PredictorConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.enc_dim, cfg.dim)
        # (num_mask_tokens, 1, 1, dim), zero-initialised as in the released models; one is picked
        # per mask generator.
        self.mask_tokens = nn.Parameter(torch.zeros(cfg.num_mask_tokens, 1, 1, cfg.dim))
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, int(cfg.dim * cfg.mlp_ratio), cfg.eps) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.eps)
        self.proj = nn.Linear(cfg.dim, cfg.enc_dim)
        self.rope = RoPE3D(cfg.head_dim, interleaved=cfg.rope_interleaved)
        init_weights(self)
        rescale_blocks(self.blocks)

    def forward(
        self,
        context_tokens: torch.Tensor,
        context_idx: torch.Tensor,
        target_idx: torch.Tensor,
        grid: tuple[int, int, int],
        mask_index: int = 1,
    ) -> torch.Tensor:
        """Predict target tokens.

        context_tokens: (B, Kc, enc_dim) encoder outputs at ``context_idx`` (B, Kc).
        target_idx: (B, Kt) positions to predict; grid: (t, h, w) token grid of the full clip.
        mask_index: which mask token to use (taken modulo the number of mask tokens).
        Returns (B, Kt, enc_dim).
        """
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
        rope = self.rope.tables(token_coords(idx.gather(1, order), grid))  # (B, K, head_dim) each
        x, _ = run_blocks(self.blocks, x, rope, None, self._checkpoint)
        x = self.norm(x)
        x = gather_tokens(x, order.argsort(dim=1))  # back to [context, targets] order
        return self.proj(x[:, Kc:])

    @property
    def _checkpoint(self) -> bool:
        return self.cfg.checkpointing and self.training
