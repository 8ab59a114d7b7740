"""Frozen-encoder tokens of the videos a QA set asks about, each video encoded once.

The encoder never trains here, so training and evaluation read every video once (``video_tokens``),
through the probes' clip reader and feature cache (``evals.features``): an evaluation after a
training run, or a baseline on the same encoder, finds the tokens on disk. A clip is
``num_frames`` frames at ``fps`` spread over the video, the eval transform at ``crop``.

``PIXELS`` ("pixels") stands in for an encoder: the pixel-mean baseline (``PixelMeans``), whose
tokens are the mean colours of the encoder's tubelet x patch cells, what raw colour and motion give.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from tqdm import tqdm

from vjepa2.evals.features import (
    CachedClips,
    ClipDataset,
    FeatureCache,
    FeatureExtractor,
    make_loader,
    weights_fingerprint,
)
from vjepa2.models.model import VJEPA2


@dataclass
class FeatureSpec:
    """How a video becomes encoder tokens (stored with the model: ``ask`` must read it the same way)."""

    num_frames: int = 16
    fps: float = 4.0
    crop: int = 64
    layers: list[int] = field(default_factory=list)  # encoder blocks, joined along tokens (empty: output)

    def to_dict(self) -> dict:
        return asdict(self)


def clips(paths: list[Path], spec: FeatureSpec) -> ClipDataset:
    return ClipDataset(
        [(p, 0) for p in paths], num_frames=spec.num_frames, fps=spec.fps, crop=spec.crop, num_segments=1
    )


PIXELS = "pixels"
PIXEL_CROP = 64  # the pixel baseline's default input size (the tiny encoders' crop)


class PixelMeans(FeatureExtractor):
    """The pixel-mean baseline in an extractor's place: a clip's token for each tubelet x patch
    cell (2 frames x 16 x 16 pixels, the encoders' grid) is its mean normalized colour, so
    clips (T, C, H, W) -> tokens (T/2 * H/16 * W/16, C). No weights, nothing learned."""

    def __init__(self, cache: FeatureCache | None = None, tubelet: int = 2, patch: int = 16):
        self.model = SimpleNamespace(device=torch.device("cpu"))  # what FeatureExtractor reads
        self.layers, self.concat, self.single_frame, self.cache = [], "tokens", False, cache
        self.tubelet, self.patch, self.encoder_calls = tubelet, patch, 0

    @property
    def dim(self) -> int:
        return 3

    @torch.no_grad()
    def encode(self, views: torch.Tensor) -> torch.Tensor:
        """views (B, M, S, T, C, H, W) -> tokens (B, M, S * N, C) float32."""
        B, M, S = views.shape[:3]
        cells = F.avg_pool3d(
            views.flatten(0, 2).transpose(1, 2).float(), (self.tubelet, self.patch, self.patch)
        )
        tokens = cells.flatten(2).transpose(1, 2)  # (B*M*S, N, C), N in (t, h, w) order as the encoder's
        return tokens.reshape(B, M, S * tokens.shape[1], tokens.shape[2])


def extractor(
    encoder, spec: FeatureSpec, dtype: str, cache: FeatureCache | None, hold_weights: bool = True
) -> FeatureExtractor:
    if encoder == PIXELS:
        return PixelMeans(cache)
    return FeatureExtractor(
        encoder, spec.layers, "tokens", dtype=dtype, cache=cache, hold_weights=hold_weights
    )


def fingerprint(encoder) -> str:
    return PIXELS if encoder == PIXELS else weights_fingerprint(encoder)


def video_tokens(
    paths: list[Path],
    encoder: VJEPA2 | str,
    spec: FeatureSpec,
    dtype: str = "fp32",
    cache_dir: str | Path | None = None,
    batch_size: int = 16,
    workers: int = 1,
    report: Callable[[str], None] = print,
    hold_weights: bool = True,
) -> dict[str, torch.Tensor]:
    """{str(path): tokens (N, D) float32 on the CPU} for every readable video of ``paths``
    (duplicates read once); an unreadable video is reported and left out. hold_weights: the
    encoder's weights held in ``dtype`` (False: kept fp32, for a caller that saves them)."""
    unique = sorted({Path(p) for p in paths}, key=str)
    cache = None
    if cache_dir:
        cache = FeatureCache(cache_dir, {**spec.to_dict(), "weights": fingerprint(encoder), "dtype": dtype})
    extract = extractor(encoder, spec, dtype, cache, hold_weights)
    dataset = CachedClips(clips(unique, spec), cache)
    loader = make_loader(dataset, batch_size, shuffle=False, workers=workers)
    tokens: dict[str, torch.Tensor] = {}
    for items in tqdm(loader, desc="encoding videos", leave=False):
        if not items:
            continue
        batch, _ = extract(items)  # (B, 1, N, D): one clip, one view
        for item, t in zip(items, batch[:, 0].cpu()):
            tokens[str(item["path"])] = t
    for path in unique:
        if str(path) not in tokens:
            report(f"{path}: unreadable video, its questions are skipped")
    return tokens


def clip_tokens(path: str | Path, encoder: VJEPA2, spec: FeatureSpec, dtype: str = "fp32") -> torch.Tensor:
    """Tokens (1, N, D) of one video (``vjepa2 vqa ask``); an unreadable file is a VideoReadError."""
    clip = clips([Path(path)], spec).load(Path(path), 0)  # (M=1, S=1, T, C, H, W)
    return extractor(encoder, spec, dtype, None).encode(clip[None])[:, 0]
