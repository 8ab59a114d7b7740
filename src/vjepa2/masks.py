"""Multi-block 3D masks: which tokens the context encoder sees and which ones the predictor must fill.

A generator draws one block size (t, h, w) per batch, then ``num_blocks`` block positions per
sample; the target region is the union of the blocks and the context is everything else. V-JEPA 2
uses two generators on every batch: short-range (8 small blocks) and long-range (2 large blocks),
both spanning the whole clip in time (temporal scale 1.0). On the 8 x 16 x 16 grid of 16 frames at
256 px they hide ~61% and ~81% of the tokens (the often quoted 73% / 91% would hold if blocks could
be placed anywhere; they must fit inside the frame, so border tokens are covered less often).

Everything is a pure function of (seed, step): a resumed run sees the same masks as one that was
never interrupted, and no state has to be shared with data-loader workers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import default_collate

from vjepa2.config import opt
from vjepa2.errors import UserError

Range = float | Sequence[float]


def _as_range(value: Range, name: str) -> tuple[float, float]:
    """A scalar ``x`` means the range [x, x]; a pair is (min, max)."""
    if isinstance(value, (int, float)):
        value = (value, value)
    low, high = (float(v) for v in value)
    if not 0 < low <= high:
        raise UserError(f"{name}: expected 0 < min <= max, got {value!r}")
    return low, high


def step_generator(seed: int, step: int) -> torch.Generator:
    """A torch.Generator seeded from (seed, step) so that nearby seeds and steps are unrelated."""
    (state,) = np.random.SeedSequence([seed, step]).generate_state(1, dtype=np.uint64)
    gen = torch.Generator()
    gen.manual_seed(int(state) & ((1 << 63) - 1))
    return gen


class MaskGenerator:
    """Multi-block 3D mask generator on a token grid.

    Args:
        grid: token grid (t, h, w), e.g. (8, 16, 16) for 16 frames x 256 px with tubelet 2, patch 16.
        spatial_scale: fraction of one frame's h*w covered by a block (scalar or (min, max)).
        num_blocks: blocks per sample; the target region is their union.
        aspect_ratio: (min, max) of the block's height / width.
        temporal_scale: fraction of the t steps covered by a block (scalar or (min, max)).
        seed: base seed; masks depend only on (seed, step).
    """

    def __init__(
        self,
        grid: Sequence[int],
        spatial_scale: Range = 0.15,
        num_blocks: int = 8,
        aspect_ratio: Range = (0.75, 1.5),
        temporal_scale: Range = 1.0,
        seed: int = 0,
    ):
        self.grid = tuple(int(g) for g in grid)
        if len(self.grid) != 3 or min(self.grid) < 1:
            raise ValueError(f"grid must be (t, h, w) with positive sizes, got {grid!r}")
        if num_blocks < 1:
            raise UserError(f"num_blocks must be >= 1, got {num_blocks}")
        self.spatial_scale = _as_range(spatial_scale, "spatial_scale")
        self.aspect_ratio = _as_range(aspect_ratio, "aspect_ratio")
        self.temporal_scale = _as_range(temporal_scale, "temporal_scale")
        self.num_blocks = int(num_blocks)
        self.seed = int(seed)

    @property
    def num_tokens(self) -> int:
        return math.prod(self.grid)

    def __repr__(self) -> str:
        return (
            f"MaskGenerator(grid={self.grid}, spatial_scale={self.spatial_scale}, "
            f"num_blocks={self.num_blocks}, aspect_ratio={self.aspect_ratio}, "
            f"temporal_scale={self.temporal_scale}, seed={self.seed})"
        )

    def block_size(self, gen: torch.Generator) -> tuple[int, int, int]:
        """One block size (t, h, w) in tokens, drawn as in the reference: the area is a fraction of
        the frame (floored), split by the aspect ratio (rounded), clipped to the grid."""
        t_max, h_max, w_max = self.grid
        u_time, u_area, u_aspect = torch.rand(3, generator=gen).tolist()
        lo, hi = self.temporal_scale
        t = max(1, int(t_max * (lo + u_time * (hi - lo))))
        lo, hi = self.spatial_scale
        area = int(h_max * w_max * (lo + u_area * (hi - lo)))
        lo, hi = self.aspect_ratio
        aspect = lo + u_aspect * (hi - lo)
        h = min(h_max, int(round(math.sqrt(area * aspect))))
        w = min(w_max, int(round(math.sqrt(area / aspect))))
        return min(t, t_max), max(h, 1), max(w, 1)

    def target_mask(self, batch_size: int, size: tuple[int, int, int], gen: torch.Generator) -> torch.Tensor:
        """Union of ``num_blocks`` randomly placed blocks of ``size`` per sample -> bool (B, N)."""
        axes = []
        for length, extent in zip(self.grid, size):
            # One start per (sample, block) on this axis; a token is inside if start <= i < start + extent.
            start = torch.randint(0, length - extent + 1, (batch_size, self.num_blocks, 1), generator=gen)
            pos = torch.arange(length)
            axes.append((pos >= start) & (pos < start + extent))  # (B, blocks, length)
        in_t, in_h, in_w = axes
        inside = in_t[..., :, None, None] & in_h[..., None, :, None] & in_w[..., None, None, :]
        return inside.any(dim=1).flatten(1)  # (B, blocks, t, h, w) -> (B, N)

    def sample_target_masks(self, batch_size: int, step: int) -> torch.Tensor:
        """Target masks bool (B, N) for the batch at ``step``; no sample has an empty context."""
        gen = step_generator(self.seed, step)
        size = self.block_size(gen)
        target = self.target_mask(batch_size, size, gen)
        for _ in range(1000):
            full = target.all(dim=1)  # samples whose blocks cover every token: draw their positions again
            if not full.any():
                return target
            target[full] = self.target_mask(int(full.sum()), size, gen)
        raise UserError(f"{self}: blocks of size {size} keep covering the whole grid; the context is empty")

    def __call__(self, batch_size: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks for the batch at ``step`` -> (context_idx (B, Kc), target_idx (B, Kt)), long, ascending.

        Each sample's context is the complement of its target region; both lists are truncated
        (keeping the smallest indices) to the shortest one in the batch so that they stack.
        """
        target = self.sample_target_masks(batch_size, step)
        return keep_indices(~target), keep_indices(target)


class FutureMaskGenerator(MaskGenerator):
    """Past-to-future masks: the targets are the last time steps of the clip (every token of
    them), the context is the steps before. ``future`` is the (min, max) fraction of the time
    steps to predict, drawn once per batch; at least one step stays context and one is target.
    Not a V-JEPA 2 generator: an option for a predictor that must foresee (intuitive physics
    scores exactly this prediction)."""

    def __init__(self, grid: Sequence[int], future: Range = 0.5, seed: int = 0):
        super().__init__(grid, seed=seed)
        self.future = _as_range(future, "future")
        if self.future[1] >= 1:
            raise UserError(f"future: the fraction of predicted time steps must be below 1, got {future!r}")

    def __repr__(self) -> str:
        return f"FutureMaskGenerator(grid={self.grid}, future={self.future}, seed={self.seed})"

    def sample_target_masks(self, batch_size: int, step: int) -> torch.Tensor:
        t, h, w = self.grid
        if t < 2:
            raise UserError(f"{self}: past-to-future masks need at least 2 time steps, the grid has {t}")
        (u,) = torch.rand(1, generator=step_generator(self.seed, step)).tolist()
        lo, hi = self.future
        steps = min(t - 1, max(1, round(t * (lo + u * (hi - lo)))))
        target = torch.zeros(t, h * w, dtype=torch.bool)
        target[t - steps :] = True
        return target.flatten().expand(batch_size, -1).clone()


def keep_indices(keep: torch.Tensor) -> torch.Tensor:
    """Ascending indices of the True entries of ``keep`` (B, N), truncated to the row minimum -> (B, K)."""
    count = int(keep.sum(dim=1).min())
    # A stable sort of "not kept" puts the kept positions first, in their original (ascending) order.
    order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)
    return order[:, :count].contiguous()


@dataclass
class MaskSpec:
    """One generator's settings, as in the reference configs' ``mask`` list."""

    spatial_scale: list[float] = opt([0.15, 0.15], help="block area as a fraction of a frame (min, max)")
    num_blocks: int = opt(8, help="blocks per sample; the target is their union")
    aspect_ratio: list[float] = opt([0.75, 1.5], help="block height / width (min, max)")
    temporal_scale: list[float] = opt([1.0, 1.0], help="block duration as a fraction of the clip (min, max)")
    future: list[float] = opt(
        [0.0, 0.0],
        help="if > 0: a past-to-future generator instead of blocks, predicting this fraction of the "
        "clip's last time steps (min, max); not in V-JEPA 2, an option for intuitive physics",
    )


def vjepa2_masks() -> list[MaskSpec]:
    """Short-range (8 blocks of 15%) and long-range (2 blocks of 70%): every V-JEPA 2 config."""
    return [MaskSpec(), MaskSpec(spatial_scale=[0.7, 0.7], num_blocks=2)]


def make_generators(specs: Sequence[MaskSpec], grid: Sequence[int], seed: int = 0) -> list[MaskGenerator]:
    """One generator per spec on ``grid``; generator i is seeded with ``seed + i``."""
    return [
        FutureMaskGenerator(grid, m.future, seed=seed + i)
        if max(m.future) > 0
        else MaskGenerator(
            grid, m.spatial_scale, m.num_blocks, m.aspect_ratio, m.temporal_scale, seed=seed + i
        )
        for i, m in enumerate(specs)
    ]


def vjepa2_mask_generators(grid: Sequence[int], seed: int = 0) -> list[MaskGenerator]:
    """The short- and long-range generators of V-JEPA 2 on ``grid``."""
    return make_generators(vjepa2_masks(), grid, seed)


def rank_masks(
    generators: Sequence[MaskGenerator], step: int, rank: int, world_size: int, per_rank: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """This rank's masks (``per_rank`` rows) of a global batch of ``per_rank * world_size`` samples:
    rows rank, rank + world_size, ... (the order of the data sampler). Drawing for the whole
    global batch makes a run independent of the number of processes and of gradient accumulation."""
    context_idx, target_idx = [], []
    for gen in generators:
        ctx, tgt = gen(per_rank * world_size, step)
        context_idx.append(ctx[rank::world_size])
        target_idx.append(tgt[rank::world_size])
    return context_idx, target_idx


class MaskCollator:
    """Collates samples into clips and draws the masks of every generator for the batch.

    Input: a list of sample dicts holding at least "clip" (T, C, H, W) (None entries, i.e. files
    that failed to decode, are dropped and counted), or a batch already collated by
    ``vjepa2.data.datasets.collate_skip_bad`` (a dict holding "clips" or "clip" (B, T, C, H, W)).
    Output: the batch dict with "clips" (B, T, C, H, W), "num_skipped", and "context_idx" /
    "target_idx": lists with one (B, K) long tensor per generator.
    """

    def __init__(self, generators: Sequence[MaskGenerator], patch: int | None = None, tubelet: int = 2):
        if not generators:
            raise ValueError("MaskCollator needs at least one MaskGenerator")
        self.generators = list(generators)
        self.patch, self.tubelet = patch, tubelet  # when given, clips are checked against the grids
        self.calls = 0  # step used when the caller gives none (single-process loading)

    def masks(self, batch_size: int, step: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-generator lists of context_idx and target_idx, each (B, K) long."""
        pairs = [gen(batch_size, step) for gen in self.generators]
        return [c for c, _ in pairs], [t for _, t in pairs]

    def __call__(self, samples, step: int | None = None) -> dict:
        batch = collate_clips(samples)
        if step is None:
            step, self.calls = self.calls, self.calls + 1
        clips = batch["clips"]
        if clips.ndim != 5:
            raise ValueError(f"expected clips (B, T, C, H, W), got shape {tuple(clips.shape)}")
        if self.patch is not None:
            frames, _, height, width = clips.shape[1:]
            grid = (max(frames // self.tubelet, 1), height // self.patch, width // self.patch)
            for gen in self.generators:
                if gen.grid != grid:
                    raise ValueError(
                        f"clips {tuple(clips.shape)} make the token grid {grid}, {gen} expects {gen.grid}"
                    )
        batch["context_idx"], batch["target_idx"] = self.masks(clips.shape[0], step)
        return batch


def collate_clips(samples) -> dict:
    """A list of sample dicts (None = bad file) or an already collated dict -> dict with "clips"."""
    if isinstance(samples, dict):
        batch = dict(samples)
        if "clips" not in batch:
            if "clip" not in batch:
                raise KeyError(f"a collated batch needs a 'clips' or 'clip' entry, got keys {sorted(batch)}")
            batch["clips"] = batch.pop("clip")
        if batch["clips"] is None:  # collate_skip_bad found no readable file
            raise ValueError(f"every sample of the batch failed to load ({batch.get('num_skipped')} skipped)")
        batch.setdefault("num_skipped", 0)
        return batch
    good = [s for s in samples if s is not None]
    if not good:
        raise ValueError(f"every sample of the batch failed to load ({len(samples)} skipped)")
    for s in good:
        if not isinstance(s, dict) or "clip" not in s:
            raise TypeError("samples must be dicts holding a 'clip' tensor (T, C, H, W)")
    batch = default_collate(good)
    batch["clips"] = batch.pop("clip")
    batch["num_skipped"] = len(samples) - len(good)
    return batch
