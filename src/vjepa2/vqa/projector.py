"""Projectors: frozen encoder tokens (B, N, D_enc) -> visual tokens in the language model's
embedding space (B, K, D_lm).

- ``mlp``: a 2-layer GELU MLP applied to every token (K = N: every encoder token reaches the LM);
- ``pooler``: the attentive probe's pooler (``models.probe.AttentivePooler``: self-attention blocks,
  then N learned queries cross-attending to the tokens), then the same MLP (K = num_queries: a
  fixed, short visual prefix whatever the clip length, so long clips stay cheap for the LM).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vjepa2.errors import UserError
from vjepa2.models.probe import AttentivePooler, ProbeConfig

KINDS = ("mlp", "pooler")


@dataclass
class ProjectorConfig:
    kind: str = "mlp"
    in_dim: int = 192  # encoder width
    out_dim: int = 128  # language-model embedding width
    hidden: int = 0  # MLP hidden width (0: out_dim)
    num_tokens: int = 128  # encoder tokens per clip (the MLP keeps them all)
    num_queries: int = 16  # pooler only: learned queries = visual tokens
    pooler_depth: int = 1  # pooler only: depth - 1 self-attention blocks, then the cross-attention
    pooler_heads: int = 0  # pooler only (0: one head per 64 channels)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(f"projector must be one of {KINDS}, got {self.kind!r}")

    @property
    def num_visual_tokens(self) -> int:
        """K: visual tokens per clip, the number of placeholders in a prompt."""
        return self.num_queries if self.kind == "pooler" else self.num_tokens


class TokenMLP(nn.Module):
    """Linear -> GELU -> Linear on every token: (..., in_dim) -> (..., out_dim)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Projector(nn.Module):
    """tokens (B, N, in_dim) -> visual tokens (B, K, out_dim) (see the module docstring)."""

    def __init__(self, cfg: ProjectorConfig):
        super().__init__()
        self.cfg = cfg
        self.pooler = None
        if cfg.kind == "pooler":
            heads = cfg.pooler_heads or max(1, cfg.in_dim // 64)
            if cfg.in_dim % heads:
                raise UserError(f"projector heads {heads} do not divide the encoder width {cfg.in_dim}")
            probe = ProbeConfig(
                dim=cfg.in_dim, heads=heads, depth=cfg.pooler_depth, num_queries=cfg.num_queries
            )
            self.pooler = AttentivePooler(probe)
        self.mlp = TokenMLP(cfg.in_dim, cfg.hidden or cfg.out_dim, cfg.out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.pooler is None and tokens.shape[1] != self.cfg.num_tokens:
            raise UserError(
                f"the projector was built for {self.cfg.num_tokens} encoder tokens per clip, got "
                f"{tokens.shape[1]}: use the frames and crop it was trained with"
            )
        if self.pooler is not None:
            tokens = self.pooler(tokens)  # (B, num_queries, in_dim)
        return self.mlp(tokens)
