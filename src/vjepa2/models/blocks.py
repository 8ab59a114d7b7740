"""Transformer pieces shared by the encoder, the predictors and the probe.

Pre-norm blocks (LayerNorm -> attention -> residual, LayerNorm -> MLP -> residual), a fused
qkv projection (the layout of the reference checkpoints), scaled-dot-product attention, GELU MLP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vjepa2.models.precision import fast_bf16
from vjepa2.models.rope import apply_rope

# (cos, sin) tables from RoPE3D.tables, each (N, head_dim) or (B, N, head_dim)
RopeTables = tuple[torch.Tensor, torch.Tensor]


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def headwise_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention one head at a time with plain matmuls: (B, heads, N, hd) -> same.

    On CPUs with native bf16 (AMX) the fused SDPA kernel runs at a fraction of the bf16 GEMM
    speed; two GEMMs per head are about twice as fast at V-JEPA sizes, while one head's (N, N)
    scores stay small (128 MB at 8192 tokens). Used for inference only.
    """
    scale = q.shape[-1] ** -0.5
    out = torch.empty_like(q)
    for h in range(q.shape[1]):
        scores = torch.matmul(q[:, h] * scale, k[:, h].transpose(-1, -2))  # (B, N, N)
        out[:, h] = torch.matmul(scores.softmax(dim=-1), v[:, h])
    return out


# Below this many attention scores (B * heads * N * M), bf16 CPU training uses plain matmuls.
MATH_ATTENTION_SCORES = 1 << 23


def math_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask=None) -> torch.Tensor:
    """softmax(q k^T / sqrt(hd) + mask) v with matmuls: (B, heads, N, hd), (B, heads, M, hd) -> (B,
    heads, N, hd). ``attn_mask`` as SDPA takes it: bool (True = attend) or additive float. The
    softmax runs in float32, as the fused kernels do."""
    scores = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-1, -2))  # (B, heads, N, M)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    return torch.matmul(scores.softmax(dim=-1, dtype=torch.float32).to(v.dtype), v)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask=None) -> torch.Tensor:
    """Scaled-dot-product attention with the fastest CPU kernel for the case, else SDPA.

    Where the CPU does bf16 natively (AMX, measured on a Xeon), the fused SDPA kernel is slow in
    bf16 (its backward above all: 3-4x slower than two bf16 GEMMs at 128 tokens), so bf16 takes
    matmuls there: per head for inference (memory stays one head's scores), whole for training
    while the saved scores are small. Everywhere else SDPA wins: on an AVX2-only EPYC, fp32 SDPA
    is 1.2-3x faster than the matmul paths from 54 to 8192 tokens (inference and training), and
    emulated bf16 matmuls are 10-35x slower than bf16 SDPA.
    """
    if q.dtype == torch.bfloat16 and q.device.type == "cpu" and fast_bf16("cpu"):
        if attn_mask is None and not torch.is_grad_enabled():
            return headwise_attention(q, k, v)
        if q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] <= MATH_ATTENTION_SCORES:
            return math_attention(q, k, v, attn_mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


class Attention(nn.Module):
    """Multi-head self-attention; RoPE on queries and keys when tables are given."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not a multiple of the number of heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, rope: RopeTables | None = None, attn_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.output(attention(*self.project(x, rope), attn_mask))

    def forward_cached(
        self, x: torch.Tensor, rope: RopeTables | None, past: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """New tokens x (B, N, D) attending to themselves and to the keys and values ``past`` (B,
        heads, M, hd) of earlier tokens; returns the output and the grown (keys, values)."""
        q, k, v = self.project(x, rope)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        return self.output(attention(q, k, v)), (k, v)

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """Heads (B, heads, N, head_dim) joined and projected: (B, N, D)."""
        B, _, N, _ = x.shape
        return self.proj(x.transpose(1, 2).reshape(B, N, self.heads * self.head_dim))

    def project(self, x: torch.Tensor, rope: RopeTables | None = None) -> tuple[torch.Tensor, ...]:
        """Queries, keys (RoPE-rotated when tables are given) and values, each (B, heads, N, hd)."""
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.heads, self.head_dim)
        if rope is not None:
            # Rotating before the head transpose keeps q and k in (B, N, heads, hd) memory order,
            # which the CPU SDPA kernel reads faster than (B, heads, N, hd).
            cos, sin = (t.unsqueeze(-2).unsqueeze(-2) for t in rope)  # (..., N, 1, 1, head_dim)
            qk = apply_rope(qkv[:, :, :2], cos, sin)  # (B, N, 2, heads, head_dim)
            q, k = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2)
        else:
            q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)
        return q, k, qkv[:, :, 2].transpose(1, 2)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, eps: float = 1e-6, qkv_bias: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, mlp_hidden)

    def forward(
        self, x: torch.Tensor, rope: RopeTables | None = None, attn_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = residual(x, self.attn(self.norm1(x), rope, attn_mask))
        return residual(x, self.mlp(self.norm2(x)))

    def forward_cached(
        self, x: torch.Tensor, rope: RopeTables | None, past: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """New tokens x (B, N, D) attending to themselves and to the keys and values ``past`` (B,
        heads, M, hd) of earlier tokens (a KV cache: exact where earlier tokens never see later
        ones, as in block-causal attention). Returns the output and the grown (keys, values)."""
        a, kv = self.attn.forward_cached(self.norm1(x), rope, past)
        x = residual(x, a)
        return residual(x, self.mlp(self.norm2(x))), kv


def residual(x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """x + branch. At inference the sum is written into ``branch``'s fresh buffer: a new (N, D)
    tensor per add costs page faults that made fp32 ViT-L inference ~4% slower."""
    if not torch.is_grad_enabled() and branch.dtype == x.dtype and branch.shape == x.shape:
        return branch.add_(x)
    return x + branch


def run_blocks(
    blocks: nn.ModuleList,
    x: torch.Tensor,
    rope: RopeTables | None = None,
    attn_mask: torch.Tensor | None = None,
    checkpointing: bool = False,
    out_layers: list[int] | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``x`` (B, N, D) through ``blocks``; also return the raw outputs of ``out_layers``."""
    outs = []
    for i, blk in enumerate(blocks):
        if checkpointing and torch.is_grad_enabled():
            x = torch.utils.checkpoint.checkpoint(blk, x, rope, attn_mask, use_reentrant=False)
        else:
            x = blk(x, rope, attn_mask)
        if out_layers is not None and i in out_layers:
            outs.append(x)
    return x, outs


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal init of linear/conv weights, zero biases, unit LayerNorms (as the reference)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def rescale_blocks(blocks: nn.ModuleList) -> None:
    """Divide attn.proj and mlp.fc2 weights by sqrt(2 * layer_id), layer_id 1-based (reference init)."""
    with torch.no_grad():
        for layer_id, blk in enumerate(blocks, start=1):
            blk.attn.proj.weight.div_((2.0 * layer_id) ** 0.5)
            blk.mlp.fc2.weight.div_((2.0 * layer_id) ** 0.5)
