"""``dtype: auto`` for a model: the fastest held precision whose error on this model stays in bound.

The rule, per machine and per model (the decision is cached in the precision cache file beside the
bf16 timing, keyed by the machine, torch and a fingerprint of the model):

1. The base precision: bf16 where bf16 matrix work is native (``precision.fast_bf16``: CUDA with
   bf16, AMX / AVX512-BF16 CPUs) and the bf16-held encoder's tokens keep a cosine of at least
   ``BOUNDS["bf16"]`` to fp32 on the benchmark clip; fp32 otherwise.
2. int8 (CPU only, where the caller allows it and ``VJEPA2_AUTO_INT8`` is not ``0``): chosen over the base only where one of the model's
   own blocks, timed at the token count of a 16-frame clip at the model's crop, runs at least
   ``MIN_SPEEDUP`` times faster in int8 than in the base precision, AND the int8 encoder's tokens
   keep a cosine of at least ``BOUNDS["int8"]`` (issue 35's bound) on the benchmark clip.

Token cosine: the minimum over tokens of the cosine between the held model's output and the fp32
model's output on ``benchmark_clip``, a fixed procedural clip (moving gratings and a drifting
blob, plus seeded noise) at the model's crop (at most 128 px), 4 frames.
"""

from __future__ import annotations

import copy
import hashlib
import os
import sys
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vjepa2.models.held import hold
from vjepa2.models.precision import cached, fast_bf16, interleaved, machine_key

# minimum token cosine to fp32 on the benchmark clip for a precision to be chosen by auto
BOUNDS = {"bf16": 0.99, "int8": 0.999}
MIN_SPEEDUP = 1.1  # int8 must beat the base by this much: a tie is noise, and int8 costs accuracy
AUTO_INT8_ENV = "VJEPA2_AUTO_INT8"  # "0": auto never picks int8 (exact fp32 / bf16 results)
BENCH_FRAMES, BENCH_MAX_SIZE, TIMING_FRAMES = 4, 128, 16


@dataclass
class Choice:
    dtype: str
    reason: str


def benchmark_clip(frames: int, size: int) -> torch.Tensor:
    """The fixed clip auto's error bound is checked on: (1, frames, 3, size, size) float32, values
    roughly in the normalised-image range (-2, 2). Procedural, so the same on every machine."""
    t = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1)
    y = torch.linspace(0, 1, size).view(1, size, 1)
    x = torch.linspace(0, 1, size).view(1, 1, size)
    grating = torch.sin(2 * torch.pi * (6 * x + 3 * y - 0.1 * t))
    blob = torch.exp(-((x - 0.3 - 0.05 * t) ** 2 + (y - 0.5) ** 2) / 0.02)
    channels = torch.stack((grating, blob * 2 - 1, grating * blob), dim=1)  # (frames, 3, size, size)
    noise = torch.randn(channels.shape, generator=torch.Generator().manual_seed(0))
    return (channels + 0.3 * noise).unsqueeze(0)


def token_cosine(held: nn.Module, reference: torch.Tensor, clip: torch.Tensor) -> float:
    """Minimum over tokens of cos(held(clip), reference) (reference: the fp32 output)."""
    with torch.no_grad():
        out = held(clip.to(next(held.parameters()).device)).float()
    return F.cosine_similarity(out, reference, dim=-1).min().item()


def fingerprint(encoder: nn.Module) -> str:
    """A short hash of the encoder's config and a few of its weights (which model this is)."""
    digest = hashlib.sha256(repr(getattr(encoder, "cfg", type(encoder))).encode())
    params = [p for p in encoder.parameters() if p.ndim == 2]
    for p in (params[0], params[-1]) if params else ():
        digest.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def int8_speedup(encoder: nn.Module, base: str) -> float:
    """Seconds of one of ``encoder``'s blocks held in ``base`` over the same block in int8, at the
    token count of a 16-frame clip at the encoder's crop (> 1: int8 faster)."""
    cfg = encoder.cfg
    n = (TIMING_FRAMES // cfg.tubelet) * (cfg.crop // cfg.patch) ** 2
    tokens = torch.randn(1, n, cfg.dim, generator=torch.Generator().manual_seed(0))
    base_block = hold(copy.deepcopy(encoder.blocks[0]), base)
    int8_block = hold(copy.deepcopy(encoder.blocks[0]), "int8")
    base_tokens = tokens.to(torch.bfloat16) if base == "bf16" else tokens
    runs = {base: lambda: base_block(base_tokens), "int8": lambda: int8_block(tokens)}
    with torch.no_grad():
        seconds = interleaved(runs, 6, tokens.device)
    return seconds[base] / seconds["int8"]


def decide(encoder: nn.Module, device: torch.device, allow_int8: bool) -> Choice:
    """The measurement behind ``choose`` (no cache): see the module docstring."""
    size = min(encoder.cfg.crop, BENCH_MAX_SIZE)
    clip = benchmark_clip(BENCH_FRAMES, size)
    with torch.no_grad():
        reference = encoder(clip.to(device)).float()
    base, why = "fp32", "no native bf16 matrix units"
    if fast_bf16(device.type):
        cos = token_cosine(hold(copy.deepcopy(encoder), "bf16"), reference, clip)
        base, why = ("bf16", "native bf16") if cos >= BOUNDS["bf16"] else ("fp32", f"bf16 token cosine {cos:.4f} < {BOUNDS['bf16']}")  # fmt: skip
    if not allow_int8 or device.type != "cpu":
        return Choice(base, why)
    speedup = int8_speedup(encoder, base)
    if speedup < MIN_SPEEDUP:
        return Choice(base, f"{why}; int8 only {speedup:.2f}x {base} here")
    cos = token_cosine(hold(copy.deepcopy(encoder), "int8"), reference, clip)
    if cos < BOUNDS["int8"]:
        return Choice(
            base, f"{why}; int8 {speedup:.2f}x faster but token cosine {cos:.4f} < {BOUNDS['int8']}"
        )
    return Choice(
        "int8", f"int8 {speedup:.2f}x faster than {base}, token cosine {cos:.4f} >= {BOUNDS['int8']}"
    )


def choose(encoder: nn.Module, device: torch.device | str = "cpu", allow_int8: bool = True) -> Choice:
    """auto's precision for ``encoder`` (a ``VideoEncoder`` in fp32) on ``device``, measured once
    per machine and model, then read from the cache. Says on stderr when it measures."""
    device = torch.device(device)
    allow_int8 = allow_int8 and os.environ.get(AUTO_INT8_ENV, "1") != "0" and device.type == "cpu"
    if not allow_int8 and not fast_bf16(device.type):
        return Choice("fp32", "no native bf16 matrix units")  # nothing to measure
    key = f"{device.type} {'int8' if allow_int8 else 'no-int8'} {fingerprint(encoder)}"

    def measure() -> dict:
        print("precision auto: measuring this model once on this machine (cached)", file=sys.stderr)
        return asdict(decide(encoder, device, allow_int8))

    return Choice(**cached(f"auto | {machine_key()}", key, measure))
