"""The V-JEPA 2 video encoder: a ViT over tubelets with 3D RoPE and no CLS token.

A clip (B, T, C, H, W) is cut into tubelets of ``tubelet x patch x patch`` pixels by a Conv3d;
tokens are ordered time, row, column; position comes only from RoPE on the actual token grid,
so any T, H, W works. Masked (context-only) encoding keeps each token's original position.

V-JEPA 2.1 is the same network with four options (``EncoderConfig.version == "2.1"``): the
textbook (interleaved) RoPE table with rows and columns rescaled onto the 16 x 16 pretraining
grid; a second tokenizer for single images (a 1-frame Conv3d; a 2-frame clip stays a video);
learned image / video embeddings added to every token; and, instead of one final norm, a norm
per "level" (four blocks spread over the depth), whose outputs concatenated make the 4-level
output (B, N, 4D). The default output is the last level.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vjepa2.models.blocks import Block, init_weights, rescale_blocks, run_blocks
from vjepa2.models.inputs import check_layers
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
    # V-JEPA 2.1 options (see the module docstring); the 2.0 values are the defaults
    version: str = "2.0"
    rope_rescale: int = 0  # > 0: rows and columns rescaled onto a grid of this many patches
    image_tokenizer: bool = False
    modality_embed: bool = False
    level_layers: tuple[int, ...] = ()  # blocks whose normed outputs make the multi-level output

    def __post_init__(self):
        self.level_layers = tuple(self.level_layers)  # a list when read from JSON or YAML
        v21 = {
            k: getattr(self, k) for k in ("rope_rescale", "image_tokenizer", "modality_embed", "level_layers")
        }
        check_version(self.version, bool(self.level_layers), v21, "encoder")
        if self.level_layers and self.level_layers[-1] != self.depth - 1:
            raise ValueError(
                f"the last level must be the last block ({self.depth - 1}), got {self.level_layers}"
            )

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
        self.patch_embed = tokenizer(cfg, cfg.tubelet)
        if cfg.image_tokenizer:
            self.image_patch_embed = tokenizer(cfg, 1)
        if cfg.modality_embed:
            self.image_embed = nn.Parameter(torch.zeros(1, 1, cfg.dim))
            self.video_embed = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.mlp_hidden, cfg.eps) for _ in range(cfg.depth)
        )
        if cfg.level_layers:
            self.level_norms = nn.ModuleList(nn.LayerNorm(cfg.dim, eps=cfg.eps) for _ in cfg.level_layers)
        else:
            self.norm = nn.LayerNorm(cfg.dim, eps=cfg.eps)
        self.rope = RoPE3D(cfg.head_dim, interleaved=cfg.rope_interleaved)
        init_weights(self)
        rescale_blocks(self.blocks)
        if cfg.modality_embed:
            nn.init.normal_(self.image_embed, std=1e-6)
            nn.init.normal_(self.video_embed, std=1e-6)

    @property
    def dim(self) -> int:
        return self.cfg.dim

    def grid(self, shape: torch.Size | tuple[int, ...]) -> tuple[int, int, int]:
        """Token grid (t, h, w) of a clip batch of ``shape`` (B, T, C, H, W)."""
        *_, T, _, H, W = shape
        t = max(T, self.cfg.tubelet) // self.cfg.tubelet
        return t, H // self.cfg.patch, W // self.cfg.patch

    def is_image(self, clips: torch.Tensor) -> bool:
        """Whether ``clips`` go through the image tokenizer (2.1, one frame)."""
        return self.cfg.image_tokenizer and (clips.ndim == 4 or clips.shape[1] == 1)

    def embed(self, clips: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Tubelet embedding: clips (B, T, C, H, W) -> tokens (B, N, dim) and grid (t, h, w)."""
        if clips.ndim == 4:  # a batch of images (B, C, H, W)
            clips = clips.unsqueeze(1)
        if clips.ndim != 5:
            raise ValueError(f"expected clips of shape (B, T, C, H, W), got {tuple(clips.shape)}")
        image = self.is_image(clips)
        proj = self.image_patch_embed.proj if image else self.patch_embed.proj
        T, tub = clips.shape[1], proj.kernel_size[0]
        if T < tub:  # single images are repeated in time (2.0 has no image tokenizer)
            clips = clips.repeat_interleave(tub // T + (tub % T > 0), dim=1)[:, :tub]
        elif T % tub:  # pad to a whole tubelet by repeating the last frame
            clips = torch.cat([clips, clips[:, -1:].expand(-1, tub - T % tub, -1, -1, -1)], dim=1)
        x, grid = tubelet_embed(clips.to(proj.weight.dtype), proj)
        if self.cfg.modality_embed:
            x = x + (self.image_embed if image else self.video_embed).to(x.dtype)
        return x, grid

    def positions(self, idx: torch.Tensor | None, grid: tuple[int, int, int], device) -> torch.Tensor:
        """RoPE coordinates (..., N, 3) of token indices ``idx`` (all tokens when None)."""
        coords = grid_coords(grid, device) if idx is None else token_coords(idx, grid)
        side = self.cfg.rope_rescale
        if side:
            _, h, w = grid
            if h < 2 or w < 2:
                raise ValueError(f"V-JEPA 2.1 positions need at least 2 x 2 patches, got a {h} x {w} grid")
            # multiply first, then divide, in float32: the reference's order, bit for bit
            rows = coords[..., 1] * (side - 1) / (h - 1)
            cols = coords[..., 2] * (side - 1) / (w - 1)
            coords = torch.stack((coords[..., 0], rows, cols), dim=-1)
        return coords

    def forward(
        self,
        clips: torch.Tensor,
        context_idx: torch.Tensor | None = None,
        out_layers: list[int] | None = None,
        levels: bool = False,
    ) -> torch.Tensor | list[torch.Tensor]:
        """Encode clips (B, T, C, H, W) -> tokens (B, N, dim).

        context_idx: optional (B, K) long indices of the tokens to keep (masked encoding);
            they keep their positions in the full clip. Output is then (B, K, dim).
        out_layers: block indices (negative allowed); returns the list of their outputs, each
            through the final LayerNorm (2.1: through its level's norm; levels only), instead
            of the last output.
        levels: (2.1) the multi-level output, each level through its own norm, concatenated
            along channels in layer order -> (B, N, len(level_layers) * dim).
        """
        if levels and not self.cfg.level_layers:
            raise ValueError(
                f"levels=True needs a multi-level (V-JEPA 2.1) encoder; this one is {self.cfg.version}"
            )
        x, grid = self.embed(clips)
        if context_idx is not None:
            x = x.gather(1, context_idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        # (N, 3) shared by the batch, or (B, K, 3) for a masked clip
        rope = self.rope.tables(self.positions(context_idx, grid, x.device))
        # cast once to the blocks' dtype (bf16 held or under autocast), not once per layer
        rope = (rope[0].to(x.dtype), rope[1].to(x.dtype))
        layers = self._layers(out_layers, levels)
        x, outs = run_blocks(self.blocks, x, rope, None, self.cfg.checkpointing and self.training, layers)
        by_layer = dict(zip(sorted(set(layers or ())), outs))
        if levels:
            return torch.cat([self.level_norm(i)(by_layer[i]) for i in self.cfg.level_layers], dim=-1)
        if out_layers is not None:
            return [self.level_norm(i % len(self.blocks))(by_layer[i % len(self.blocks)]) for i in out_layers]
        return self.level_norm(len(self.blocks) - 1)(x)

    def _layers(self, out_layers: list[int] | None, levels: bool) -> list[int] | None:
        """The blocks whose outputs a forward pass must keep."""
        check_layers(out_layers or (), len(self.blocks))
        layers = [i % len(self.blocks) for i in out_layers or ()]
        if self.cfg.level_layers:
            wrong = [i for i in layers if i not in self.cfg.level_layers]
            if wrong:
                raise ValueError(
                    f"out_layers {wrong} are not levels of this V-JEPA 2.1 encoder: "
                    f"only the blocks {list(self.cfg.level_layers)} have a norm"
                )
        if levels:
            layers += list(self.cfg.level_layers)
        return layers if (out_layers is not None or levels) else None

    def level_norm(self, layer: int) -> nn.LayerNorm:
        """The norm applied to the output of block ``layer`` (2.0: the final norm for every block)."""
        if not self.cfg.level_layers:
            return self.norm
        return self.level_norms[self.cfg.level_layers.index(layer)]


def check_version(version: str, is_v21: bool, options: dict, what: str) -> None:
    """A config's version label must say what its options build."""
    if version not in ("2.0", "2.1"):
        raise ValueError(f"unknown V-JEPA version {version!r} of a {what}; expected '2.0' or '2.1'")
    used = {k: v for k, v in options.items() if v}
    if version == "2.0" and used:
        raise ValueError(f"a V-JEPA 2.0 {what} has no 2.1 options, but this config sets {used}")
    if version == "2.1" and not is_v21:
        raise ValueError(f"this V-JEPA 2.1 {what} config lacks the 2.1 options (got {options})")


def tokenizer(cfg: EncoderConfig, tubelet: int) -> nn.Module:
    """The Conv3d cutting clips into ``tubelet x patch x patch`` tubelets, as ``.proj``."""
    kernel = (tubelet, cfg.patch, cfg.patch)
    module = nn.Module()
    module.proj = nn.Conv3d(cfg.in_chans, cfg.dim, kernel_size=kernel, stride=kernel)
    return module


def tubelet_embed(clips: torch.Tensor, proj: nn.Conv3d) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """``proj`` (a Conv3d whose stride is its kernel) applied to clips (B, T, C, H, W) as the one
    matrix product it is: tokens (B, N, dim) in (t, h, w) order and the grid (t, h, w).

    The tubelets do not overlap, so each token is the Conv3d's weight (dim, C * kt * kh * kw)
    times its tubelet's pixels. One GEMM takes the precision's fast kernel everywhere (the CPU
    has no bf16 Conv3d kernel without AVX-512: the slow fallback took 74% of a bf16 ViT-L block)
    and needs no layout change afterwards. Frames and pixels past the last whole tubelet are
    dropped, as the convolution drops them."""
    kt, kh, kw = proj.kernel_size
    B, T, C, H, W = clips.shape
    t, h, w = T // kt, H // kh, W // kw
    x = clips[:, : t * kt, :, : h * kh, : w * kw].reshape(B, t, kt, C, h, kh, w, kw)
    x = x.permute(0, 1, 4, 6, 3, 2, 5, 7).reshape(B, t * h * w, C * kt * kh * kw)  # (B, N, C*kt*kh*kw)
    return F.linear(x, proj.weight.flatten(1), proj.bias), (t, h, w)


def layer_norm_features(tokens: torch.Tensor) -> torch.Tensor:
    """Parameter-free LayerNorm over the feature dim (the pretraining and AC targets)."""
    return F.layer_norm(tokens, (tokens.shape[-1],))
