"""3D rotary position embedding (RoPE) as V-JEPA 2 uses it.

Each head dim is split into three segments of width ``d = 2 * ((head_dim // 3) // 2)`` for time,
row and column, taken from the start of the head dim; leftover channels are not rotated.
Within a segment, channel pairs (2i, 2i+1) rotate as (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin).

The released weights were trained with a quirk: the cos/sin tables tile the d/2 frequencies
twice (channel j uses frequency j mod d/2) instead of interleaving them (channel j uses j // 2).
``interleaved=False`` (the default) keeps the quirk, which loading released weights needs;
``interleaved=True`` is the textbook layout, for new models.

The tables are computed once per forward pass from the token coordinates and shared by every
layer, instead of once per layer as in the reference code.
"""

from __future__ import annotations

import torch
from torch import nn


def segment_width(head_dim: int) -> int:
    """Width of each of the three rotated segments (time, row, column)."""
    return 2 * ((head_dim // 3) // 2)


def token_coords(idx: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Integer grid coordinates of flat token indices.

    idx: (...,) long indices into the full clip, ordered time, row, column.
    grid: (t, h, w) token grid of the full clip.
    Returns (..., 3) float32 coordinates (time, row, column).
    """
    _, h, w = grid
    tokens_per_frame = h * w
    t = idx // tokens_per_frame
    row = (idx % tokens_per_frame) // w
    col = idx % w
    return torch.stack((t, row, col), dim=-1).float()


def grid_coords(grid: tuple[int, int, int], device=None) -> torch.Tensor:
    """Coordinates (N, 3) of every token of a (t, h, w) grid, in token order."""
    n = grid[0] * grid[1] * grid[2]
    return token_coords(torch.arange(n, device=device), grid)


def rope_frequencies(
    head_dim: int, interleaved: bool = False, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel frequency (head_dim,) float32 and the axis (head_dim,) long (0 time, 1 row, 2
    column) each channel rotates with; leftover channels keep frequency 0 (cos 1, sin 0)."""
    d = segment_width(head_dim)
    # Same arithmetic as the reference (float32 arange / (d/2), then 1/theta**x) so the angles
    # match bit for bit.
    omega = torch.arange(d // 2, dtype=torch.float32)
    omega /= d / 2.0
    omega = 1.0 / theta**omega  # (d/2,)
    per_channel = omega.repeat_interleave(2) if interleaved else omega.repeat(2)  # (d,)
    freqs = torch.zeros(head_dim)
    axis = torch.zeros(head_dim, dtype=torch.long)
    for a in range(3):
        freqs[a * d : (a + 1) * d] = per_channel
        axis[a * d : (a + 1) * d] = a
    return freqs, axis


class RoPE3D(nn.Module):
    """Builds cos/sin tables for 3D RoPE and applies them to queries and keys."""

    def __init__(self, head_dim: int, interleaved: bool = False, theta: float = 10000.0):
        super().__init__()
        self.head_dim = head_dim
        self.interleaved = interleaved
        self.theta = theta
        freqs, axis = rope_frequencies(head_dim, interleaved, theta)
        self.register_buffer("freqs", freqs, persistent=False)
        self.register_buffer("axis", axis, persistent=False)

    def rebuild_buffers(self) -> None:
        """Compute the tables again (on the CPU): a module built on the meta device (to load
        weights without a random init) has no values in them, and no checkpoint holds them."""
        self.freqs, self.axis = rope_frequencies(self.head_dim, self.interleaved, self.theta)

    def tables(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tables for tokens at ``coords`` (..., N, 3) -> cos and signed sin, each (..., N,
        head_dim) float32. The rotation's sign is folded into sin (-sin on even channels, +sin on
        odd ones), made once a forward, so that each layer's rotation is a pair swap and two
        multiplies (``apply_rope``)."""
        angles = coords.float().index_select(-1, self.axis) * self.freqs
        sin = angles.sin()
        sin.unflatten(-1, (-1, 2))[..., 0].neg_()
        return angles.cos(), sin


def swap_pairs(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1, x2, x3, ...) -> (x1, x0, x3, x2, ...) on the last dim: a new tensor."""
    return x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (..., head_dim) with the tables of ``RoPE3D.tables`` (broadcasting against it):
    (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin). One new tensor (the swapped pairs), then two
    passes in place over it."""
    return swap_pairs(x).mul_(signed_sin.to(x.dtype)).addcmul_(x, cos.to(x.dtype))
