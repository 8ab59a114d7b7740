"""The action-conditioned predictor of V-JEPA 2-AC.

Per time step k the sequence holds [action_k, state_k, (extrinsics_k,) frame_k tokens]. Attention
is block-causal: every token of step k sees all tokens of steps <= k, so the prediction for
frame k+1 (read at the frame tokens of step k) depends only on the past and on action k.
Frame tokens get 3D RoPE; action and state tokens get the temporal rotation only (they sit at
row 0, column 0, where the spatial rotation is the identity).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vjepa2.models.blocks import Block, init_weights, rescale_blocks, run_blocks
from vjepa2.models.rope import RoPE3D


@dataclass
class ACPredictorConfig:
    enc_dim: int = 1408
    dim: int = 1024
    depth: int = 24
    heads: int = 16
    mlp_ratio: float = 4.0
    action_dim: int = 7
    state_dim: int = 7
    use_extrinsics: bool = False
    extrinsics_dim: int = 6
    # Tokens per side at the training crop. When set, row/column positions of other grids are
    # scaled onto it (as the reference does); None uses the actual grid.
    grid_size: int | None = None
    eps: float = 1e-6
    rope_interleaved: bool = False
    checkpointing: bool = False

    @property
    def cond_tokens(self) -> int:
        return 3 if self.use_extrinsics else 2


class KVCache:
    """Keys and values of every block for the ``steps`` a rollout has run: ``layers[block]`` is
    (k, v), each (B, heads, steps * tokens_per_step, head_dim); None before the first step."""

    def __init__(self):
        self.steps = 0
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] | None = None


def block_causal_mask(steps: int, tokens_per_step: int, device=None) -> torch.Tensor:
    """Boolean (N, N) attention mask, True = may attend: token of step i sees steps <= i."""
    step = torch.arange(steps, device=device).repeat_interleave(tokens_per_step)
    return step[:, None] >= step[None, :]


class ACPredictor(nn.Module):
    def __init__(self, cfg: ACPredictorConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.enc_dim, cfg.dim)
        self.action_encoder = nn.Linear(cfg.action_dim, cfg.dim)
        self.state_encoder = nn.Linear(cfg.state_dim, cfg.dim)
        # The reference always builds this layer (unused unless extrinsics are on).
        self.extrinsics_encoder = nn.Linear(cfg.extrinsics_dim, cfg.dim)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, int(cfg.dim * cfg.mlp_ratio), cfg.eps) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.eps)
        self.proj = nn.Linear(cfg.dim, cfg.enc_dim)
        self.rope = RoPE3D(cfg.dim // cfg.heads, interleaved=cfg.rope_interleaved)
        init_weights(self)
        rescale_blocks(self.blocks)

    def step_coords(self, steps: int, h: int, w: int, device=None) -> torch.Tensor:
        """Coordinates (steps * (cond + h*w), 3) of the interleaved sequence."""
        t = torch.arange(steps, device=device, dtype=torch.float32)
        g = self.cfg.grid_size
        rows = torch.arange(h, device=device, dtype=torch.float32) * (g / h if g else 1.0)
        cols = torch.arange(w, device=device, dtype=torch.float32) * (g / w if g else 1.0)
        frame = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(h * w, 2)
        cond = torch.zeros(self.cfg.cond_tokens, 2, device=device)
        spatial = torch.cat([cond, frame], dim=0)  # (cond + h*w, 2)
        per_step = spatial.shape[0]
        coords = torch.cat(
            [t.repeat_interleave(per_step)[:, None], spatial.repeat(steps, 1)], dim=1
        )  # (steps * per_step, 3)
        return coords

    def forward(
        self,
        frame_tokens: torch.Tensor,
        actions: torch.Tensor,
        states: torch.Tensor,
        extrinsics: torch.Tensor | None = None,
        grid_hw: tuple[int, int] | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Predict the next frame's tokens at every step.

        frame_tokens: (B, T * h * w, enc_dim) layer-normed encoder tokens of T frames.
        actions: (B, T, action_dim); states: (B, T, state_dim); extrinsics: (B, T, 6) if used.
        grid_hw: tokens per frame as (h, w); default: a square of ``grid_size``.
        cache: a ``KVCache`` of the steps seen so far (rollouts): the inputs are then the next
        step only (T = 1), placed after the cached ones, whose keys and values it reuses; the
        cache grows by this step. The same result as the whole history, a fraction of the work.
        Returns (B, T * h * w, enc_dim): at step k, the prediction of frame k + 1.
        """
        B, N, _ = frame_tokens.shape
        if grid_hw is None and self.cfg.grid_size is None:
            raise ValueError("pass grid_hw=(h, w): the config sets no grid_size")
        h, w = grid_hw or (self.cfg.grid_size, self.cfg.grid_size)
        T = N // (h * w)
        if cache is not None and T != 1:
            raise ValueError(f"with a KV cache the predictor takes one step at a time, got {T}")
        if T * h * w != N or actions.shape[1] != T or states.shape[1] != T:
            raise ValueError(
                f"frame tokens {tuple(frame_tokens.shape)} do not split into {h}x{w} tokens per frame "
                f"for actions {tuple(actions.shape)} and states {tuple(states.shape)}"
            )
        x = self.embed(frame_tokens).view(B, T, h * w, -1)
        cond = [self.action_encoder(actions), self.state_encoder(states)]
        if self.cfg.use_extrinsics:
            cond.append(self.extrinsics_encoder(extrinsics))
        cond = torch.stack(cond, dim=2).to(x.dtype)  # (B, T, cond, dim)
        x = torch.cat([cond, x], dim=2).flatten(1, 2)  # (B, T * (cond + h*w), dim)
        per_step = self.cfg.cond_tokens + h * w
        if cache is not None:
            t = cache.steps  # the new step's time index
            rope = self.rope.tables(self.step_coords(t + 1, h, w, x.device)[t * per_step :])
            layers = []
            for blk, past in zip(self.blocks, cache.layers or [None] * len(self.blocks)):
                x, kv = blk.forward_cached(x, rope, past)
                layers.append(kv)
            cache.steps, cache.layers = t + 1, layers
            return self.proj(self.norm(x[:, self.cfg.cond_tokens :]))
        rope = self.rope.tables(self.step_coords(T, h, w, x.device))
        mask = block_causal_mask(T, per_step, x.device)
        x, _ = run_blocks(self.blocks, x, rope, mask, self.cfg.checkpointing and self.training)
        x = x.view(B, T, per_step, -1)[:, :, self.cfg.cond_tokens :].flatten(1, 2)
        return self.proj(self.norm(x))
