"""The attentive probe: a few self-attention blocks over frozen tokens, then learned queries
cross-attend to them (norm on keys/values only, no output projection), then a linear head.

The reference builds every probe norm with PyTorch's default eps (1e-5): keep it to reproduce
reference probe checkpoints. Self-attention blocks use plain attention (no RoPE).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vjepa2.models.blocks import MLP, Block, attention, init_weights, rescale_blocks


@dataclass
class ProbeConfig:
    dim: int = 1024
    heads: int = 16
    depth: int = 4  # self-attention blocks = depth - 1, then one cross-attention block
    mlp_ratio: float = 4.0
    num_queries: int = 1
    num_classes: int = 1000
    eps: float = 1e-5


class CrossAttention(nn.Module):
    """Queries attend to tokens; fused kv projection, no output projection (as the reference)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)

    def forward(self, queries: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        B, Q, D = queries.shape
        N = tokens.shape[1]
        q = self.q(queries).view(B, Q, self.heads, -1).transpose(1, 2)  # (B, heads, Q, hd)
        kv = self.kv(tokens).view(B, N, 2, self.heads, -1).permute(2, 0, 3, 1, 4)  # (2, B, heads, N, hd)
        out = attention(q, kv[0], kv[1])
        return out.transpose(1, 2).reshape(B, Q, D)


class CrossAttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_hidden: int, eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.xattn = CrossAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, mlp_hidden)

    def forward(self, queries: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        queries = queries + self.xattn(queries, self.norm1(tokens))
        return queries + self.mlp(self.norm2(queries))


class AttentivePooler(nn.Module):
    """tokens (B, N, dim) -> pooled queries (B, num_queries, dim)."""

    def __init__(self, cfg: ProbeConfig):
        super().__init__()
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.query_tokens = nn.Parameter(torch.zeros(1, cfg.num_queries, cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, hidden, cfg.eps) for _ in range(cfg.depth - 1))
        self.cross_attention_block = CrossAttentionBlock(cfg.dim, cfg.heads, hidden, cfg.eps)
        init_weights(self)
        nn.init.trunc_normal_(self.query_tokens, std=0.02)
        rescale_blocks(self.blocks)
        with torch.no_grad():
            self.cross_attention_block.mlp.fc2.weight.div_((2.0 * max(1, len(self.blocks))) ** 0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            tokens = blk(tokens)
        queries = self.query_tokens.expand(tokens.shape[0], -1, -1)
        return self.cross_attention_block(queries, tokens)


class AttentiveClassifier(nn.Module):
    """Attentive probe with one linear head per query: tokens (B, N, dim) -> logits.

    Returns (B, num_classes) for one query, (B, num_queries, num_classes) otherwise.
    """

    def __init__(self, cfg: ProbeConfig):
        super().__init__()
        self.cfg = cfg
        self.pooler = AttentivePooler(cfg)
        self.linear = nn.Linear(cfg.dim, cfg.num_classes)
        nn.init.trunc_normal_(self.linear.weight, std=0.02)
        nn.init.zeros_(self.linear.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = self.linear(self.pooler(tokens))
        return logits.squeeze(1) if self.cfg.num_queries == 1 else logits
