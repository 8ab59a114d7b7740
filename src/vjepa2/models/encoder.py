"""The V-JEPA 2 video encoder: a ViT over tubelets with 3D RoPE and no CLS token.

A clip (B, T, C, H, W) is cut into tubelets of ``tubelet x patch x patch`` pixels by a Conv3d;
tokens are ordered time, row, column; position comes only from RoPE on the actual token grid,
so any T, H, W works. Masked (context-only) encoding keeps each token's original position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vjepa2.models.blocks import Block, init_weights, rescale_blocks, run_blocks
from vjepa2.models.rope import RoPE3D, grid_coords, token_coords


@dataclass
class EncoderConfig:
    dim: int = 1024
    depth: int = 24
    heads: int = 16
    mlp_ratio: float = 4.0
    patch: int = 16
    tubelet: int = 2
    in_chans: int = 3
    crop: int = 256  # pretraining crop; informational, the encoder takes any size
    frames: int = 16  # pretraining frames per clip; informational
    eps: float = 1e-6
    rope_interleaved: bool = False
    checkpointing: bool = False

    @property
    def mlp_hidden(self) -> int:
        return int(self.dim * self.mlp_ratio)

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads


class VideoEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        kernel = (cfg.tubelet, cfg.patch, cfg.patch)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(cfg.in_chans, cfg.dim, kernel_size=kernel, stride=kernel)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.mlp_hidden, cfg.eps) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.eps)
        self.rope = RoPE3D(cfg.head_dim, interleaved=cfg.rope_interleaved)
        init_weights(self)
        rescale_blocks(self.blocks)

    @property
    def dim(self) -> int:
        return self.cfg.dim

    def grid(self, shape: torch.Size | tuple[int, ...]) -> tuple[int, int, int]:
        """Token grid (t, h, w) of a clip batch of ``shape`` (B, T, C, H, W)."""
        *_, T, _, H, W = shape
        t = max(T, self.cfg.tubelet) // self.cfg.tubelet
        return t, H // self.cfg.patch, W // self.cfg.patch

    def embed(self, clips: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Tubelet embedding: clips (B, T, C, H, W) -> tokens (B, N, dim) and grid (t, h, w)."""
        if clips.ndim == 4:  # a batch of images (B, C, H, W)
            clips = clips.unsqueeze(1)
        if clips.ndim != 5:
            raise ValueError(f"expected clips of shape (B, T, C, H, W), got {tuple(clips.shape)}")
        T = clips.shape[1]
        tub = self.cfg.tubelet
        if T < tub:  # single images are repeated in time
            clips = clips.repeat_interleave(tub // T + (tub % T > 0), dim=1)[:, :tub]
        elif T % tub:  # pad to a whole tubelet by repeating the last frame
            clips = torch.cat([clips, clips[:, -1:].expand(-1, tub - T % tub, -1, -1, -1)], dim=1)
        x = self.patch_embed.proj(clips.transpose(1, 2).to(self.patch_embed.proj.weight.dtype))
        grid = tuple(x.shape[2:])  # x: (B, dim, t, h, w)
        return x.flatten(2).transpose(1, 2), grid

    def forward(
        self,
        clips: torch.Tensor,
        context_idx: torch.Tensor | None = None,
        out_layers: list[int] | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        """Encode clips (B, T, C, H, W) -> tokens (B, N, dim).

        context_idx: optional (B, K) long indices of the tokens to keep (masked encoding);
            they keep their positions in the full clip. Output is then (B, K, dim).
        out_layers: block indices (negative allowed); returns the list of their outputs, each
            through the final LayerNorm, instead of the last output.
        """
        x, grid = self.embed(clips)
        if context_idx is None:
            coords = grid_coords(grid, x.device)  # (N, 3), shared by the batch
            rope = self.rope.tables(coords)
        else:
            x = x.gather(1, context_idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
            rope = self.rope.tables(token_coords(context_idx, grid))  # (B, K, head_dim) each
        layers = None
        if out_layers is not None:
            layers = [i % len(self.blocks) for i in out_layers]
        x, outs = run_blocks(self.blocks, x, rope, None, self.cfg.checkpointing and self.training, layers)
        if out_layers is not None:
            by_layer = dict(zip(sorted(set(layers)), outs))
            return [self.norm(by_layer[i]) for i in layers]
        return self.norm(x)


def layer_norm_features(tokens: torch.Tensor) -> torch.Tensor:
    """Parameter-free LayerNorm over the feature dim (the pretraining and AC targets)."""
    return F.layer_norm(tokens, (tokens.shape[-1],))
