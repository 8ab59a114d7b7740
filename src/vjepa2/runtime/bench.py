"""What this machine does: matmul peaks per precision and the encoder's speed in each, measured.

The shared measuring code of ``vjepa2 bench`` (``runtime/bench_command.py``) and
``benchmarks/encoder_speed.py``. Every timing is the minimum over interleaved repeats (each
callable runs in turn, so a load that comes and goes on a shared machine hits all alike), after a
warm-up call; on CUDA the device is synchronised around each call (``precision.interleaved``).

Precisions: fp32 always; bf16 where native (``precision.fast_bf16``), and shrunk to a smaller
product and left out of the encoder timing where it is emulated (an AVX2 EPYC runs bf16 Linear
layers at about a tenth of fp32: a ViT-L forward takes minutes); int8 on CPUs with PyTorch's
x86 / fbgemm quantized engine (VNNI / AMX used where present). The int8 "peak" is that of a dynamically quantized Linear
layer (the int8 GEMM plus quantizing its input per call), which is what the encoder's int8 runs.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vjepa2.models.held import TORCH_DTYPES, hold
from vjepa2.models.precision import cpu_flags, fast_bf16, interleaved, synchronize

PEAK_SIZE = 2048  # n of the n x n x n matmul that measures a native precision's peak
EMULATED_PEAK_SIZE = 1024  # the same where the precision is emulated (a second or two, not minutes)
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def precisions(device: torch.device) -> dict[str, str]:
    """The precisions this device runs -> 'native' or why not ('emulated: ...', 'no ...')."""
    out = {"fp32": "native"}
    if fast_bf16(device.type):
        out["bf16"] = "native"
    elif device.type == "cpu":
        out["bf16"] = "emulated: no AMX / AVX512-BF16 (runs at a fraction of fp32)"
    else:
        out["bf16"] = "no bf16 on this GPU"
    if device.type == "cpu" and "x86" in torch.backends.quantized.supported_engines:
        vnni = [f for f in VNNI_FLAGS if f in (cpu_flags() or set())]
        out["int8"] = "native" + (f" ({', '.join(vnni)})" if vnni else " (AVX2 int8 GEMMs, no VNNI)")
    else:
        out["int8"] = "no int8 path here (dynamic int8 Linear layers run on the CPU only)"
    return out


def peak_product(dtype: str, device: torch.device, n: int = PEAK_SIZE) -> Callable[[], object]:
    """A zero-argument callable computing one (n, n) x (n, n) product in ``dtype`` (2 n^3 FLOP) as
    the model's Linear layers do, ``x @ weight.T``: for int8 a dynamically quantized Linear (its
    input quantized per call). The layout matters where bf16 is emulated: on an AVX2 EPYC a bf16
    ``linear`` ran at 17 GFLOP/s where ``a @ b`` of the same size ran at 0.3-1.3."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)
    if dtype == "int8":
        layer = hold(nn.Sequential(nn.Linear(n, n, bias=False)), "int8")
        return lambda: layer(a)
    a = a.to(device, TORCH_DTYPES[dtype])
    weight = torch.randn(n, n, generator=gen).to(device, TORCH_DTYPES[dtype])
    return lambda: F.linear(a, weight)


def matmul_peak(dtype: str, device: torch.device, n: int = PEAK_SIZE, repeats: int = 3) -> float:
    """GFLOP/s (GOP/s for int8) of an (n, n) x (n, n) product in ``dtype``, the best of ``repeats``."""
    with torch.no_grad():
        seconds = interleaved({dtype: peak_product(dtype, device, n)}, repeats, device)[dtype]
    return 2 * n**3 / seconds / 1e9


def encoder_flops(cfg, n_tokens: int) -> float:
    """FLOP of one clip's forward (multiply-adds x 2): patch embedding, qkv / proj / MLP, and the
    attention scores and mix."""
    d, n = cfg.dim, n_tokens
    per_layer = 2 * n * (3 * d * d + d * d + 2 * d * cfg.mlp_hidden) + 2 * 2 * n * n * d
    embed = 2 * n * d * cfg.in_chans * cfg.tubelet * cfg.patch**2
    return cfg.depth * per_layer + embed


@dataclass
class EncoderRow:
    """One precision's timing of the encoder: seconds per batch, clips/s, GFLOP/s, the fraction of
    that precision's matmul peak, and the minimum token cosine to the fp32 output."""

    dtype: str
    seconds: float
    clips_per_s: float
    gflops: float
    fraction_of_peak: float | None
    token_cosine: float


def held_copies(encoder: nn.Module, dtypes: list[str]) -> dict[str, nn.Module]:
    """``encoder`` (fp32) and a held copy of it for every other precision of ``dtypes``."""
    return {d: encoder if d == "fp32" else hold(copy.deepcopy(encoder), d) for d in dtypes}


def time_encoders(
    models: dict[str, nn.Module], clips: torch.Tensor, repeats: int, peaks: dict[str, float]
) -> list[EncoderRow]:
    """Time each held encoder of ``models`` (precision -> module, 'fp32' among them) on ``clips``
    (B, T, C, H, W), interleaved; the token cosine is to the fp32 output on the same clips."""
    fp32 = models["fp32"]
    device = next(fp32.parameters()).device
    clips = clips.to(device)
    cfg = fp32.cfg
    tokens = (max(clips.shape[1], cfg.tubelet) // cfg.tubelet) * (clips.shape[3] // cfg.patch) * (clips.shape[4] // cfg.patch)  # fmt: skip
    flops = encoder_flops(cfg, tokens) * clips.shape[0]
    with torch.no_grad():
        reference = fp32(clips).float()
        outputs = {}

        def runner(name):
            def run():
                outputs[name] = models[name](clips)

            return run

        seconds = interleaved({name: runner(name) for name in models}, repeats, device)
        rows = []
        for name, s in seconds.items():
            cosine = F.cosine_similarity(outputs[name].float(), reference, dim=-1).min().item()
            gflops = flops / s / 1e9
            peak = peaks.get(name)
            rows.append(
                EncoderRow(name, s, clips.shape[0] / s, gflops, gflops / peak if peak else None, cosine)
            )
    return rows


def compiled_seconds(model: nn.Module, clips: torch.Tensor, repeats: int) -> tuple[float, float]:
    """(cold, warm) seconds of ``torch.compile(model)`` on ``clips``: the first call (compiling
    included) and the best of ``repeats`` calls after it."""
    device = next(model.parameters()).device
    clips = clips.to(device)
    compiled = torch.compile(model)
    with torch.no_grad():
        synchronize(device)
        start = time.perf_counter()
        compiled(clips)
        synchronize(device)
        cold = time.perf_counter() - start
        warm = interleaved({"compiled": lambda: compiled(clips)}, repeats, device)["compiled"]
    return cold, warm
