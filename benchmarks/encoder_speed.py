"""Encoder speed: our VideoEncoder vs transformers.VJEPA2Model holding the same random weights.

    python benchmarks/encoder_speed.py                      # ViT-L, 16 frames x 256 px, batch 1
    python benchmarks/encoder_speed.py --preset tiny --num-frames 16 --size 64 --repeats 5
    python benchmarks/encoder_speed.py --memory-frames 64   # also peak memory at 64 x 256 (8192 tokens)
    python benchmarks/encoder_speed.py --preset vitl-2.1    # V-JEPA 2.1 ViT-L, 16 frames x 384 px

The size defaults to the preset's crop (256 for the 2.0 presets, 384 for the 2.1 releases).
transformers has no V-JEPA 2.1 class: for a 2.1 preset only ours is timed (its 2.1 RoPE table,
image tokenizer and level norms have no transformers counterpart).

Prints the machine (CPU model and the flags that decide precision), then seconds per forward
(median of --repeats, both sides interleaved after a warm-up) for every precision the machine
runs well: fp32; bf16 autocast only where bf16 is native (AMX / AVX512-BF16 CPUs; --force-bf16
runs it anyway); int8 (dynamic int8 Linear layers, both sides quantized the same way) with its
error against fp32 (cosine similarity of tokens). The last line is the speed-up of our fastest
precision over transformers' fastest built-in one (fp32 or bf16: it has no int8 option).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from functools import partial

import torch
import torch.nn.functional as F

import vjepa2
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.model import VJEPA2
from vjepa2.models.precision import fast_bf16, machine_summary
from vjepa2.models.presets import encoder_config
from vjepa2.models.quantize import quantize_int8


def encoder_flops(cfg, n_tokens: int) -> float:
    """Multiply-adds x 2 of one forward: patch embedding, qkv/proj/MLP, attention scores and mix."""
    d, n = cfg.dim, n_tokens
    per_layer = 2 * n * (3 * d * d + d * d + 2 * d * cfg.mlp_hidden) + 2 * 2 * n * n * d
    embed = 2 * n * d * cfg.in_chans * cfg.tubelet * cfg.patch**2
    return cfg.depth * per_layer + embed


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n matmul in ``dtype``, best of ``repeats``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times) / 1e9


def build_pair(preset: str, size: int, frames: int):
    """Our encoder and transformers' VJEPA2Model with its weights (None for a 2.1 preset)."""
    torch.manual_seed(0)
    cfg = encoder_config(preset, crop=size, frames=frames)
    ours = VJEPA2(VideoEncoder(cfg)).eval()
    if cfg.version != "2.0":
        return ours.encoder, None
    from transformers import VJEPA2Model

    with tempfile.TemporaryDirectory() as tmp:
        vjepa2.export_transformers(ours, tmp, crop_size=size)
        hf = VJEPA2Model.from_pretrained(tmp, attn_implementation="sdpa").eval()
    return ours.encoder, hf


def interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each zero-argument callable, run in turn so that load hits all alike."""
    for fn in fns.values():
        fn()  # warm-up
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def peak_rss_gb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def memory_run(preset: str, frames: int, size: int, dtype: str) -> None:
    """Peak resident memory of one inference forward (run in a fresh process for a clean peak)."""
    cfg = encoder_config(preset, crop=size, frames=frames)
    model = VideoEncoder(cfg).eval()
    if dtype == "int8":
        model = quantize_int8(model, inplace=True)
        gc.collect()
    video = torch.randn(1, frames, 3, size, size)
    base = peak_rss_gb()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
        t0 = time.perf_counter()
        tokens = model(video)
    print(
        f"| {preset} {frames} x {size} ({tokens.shape[1]} tokens) | {dtype} | {peak_rss_gb():.2f} GB | "
        f"{base:.2f} GB | {time.perf_counter() - t0:.1f} s |",
        flush=True,
    )


def precisions(force_bf16: bool) -> list[str]:
    """fp32, int8, and bf16 where it is native (or forced)."""
    return ["fp32", *(["bf16"] if force_bf16 or fast_bf16("cpu") else []), "int8"]


def run_transformers(model, video: torch.Tensor) -> torch.Tensor:
    return model(pixel_values_videos=video, skip_predictor=True).last_hidden_state


def time_precisions(ours, hf, video, reference, flops: float, args) -> None:
    """The table: seconds per forward of each precision, ours against transformers (hf None: ours
    alone), then the speed-up of the fastest precisions."""
    print("| precision | transformers s | ours s | speed-up | ours GFLOP/s | token cosine vs fp32 (min) |")
    print("|---|---|---|---|---|---|")
    best = {"ours": float("inf"), "transformers": float("inf")}
    for name in precisions(args.force_bf16):
        pair = {"ours": ours} if hf is None else {"transformers": hf, "ours": ours}
        if name == "int8":
            pair = {k: quantize_int8(m) for k, m in pair.items()}
        cast = torch.autocast("cpu", dtype=torch.bfloat16) if name == "bf16" else nullcontext()

        def forward(side, cast=cast, pair=pair):
            with torch.no_grad(), cast:
                model = pair[side]
                return model(video) if side == "ours" else run_transformers(model, video)

        seconds = interleaved({side: partial(forward, side) for side in pair}, args.repeats)
        cosine = F.cosine_similarity(forward("ours").float(), reference, dim=-1).min().item()
        best["ours"] = min(best["ours"], seconds["ours"])
        theirs = seconds.get("transformers")
        if theirs is not None and name != "int8":  # transformers offers fp32 and bf16; int8 is by hand
            best["transformers"] = min(best["transformers"], theirs)
        their_s, speedup = (f"{theirs:.2f}", f"{theirs / seconds['ours']:.2f}x") if theirs else ("-", "-")
        print(
            f"| {name} | {their_s} | {seconds['ours']:.2f} | {speedup} | "
            f"{flops / seconds['ours'] / 1e9:.0f} | {cosine:.5f} |",
            flush=True,
        )
        del pair
        gc.collect()
    if hf is None:
        print(f"fastest: ours {best['ours']:.2f} s (no transformers V-JEPA 2.1 to compare with)")
        return
    print(
        f"fastest: ours {best['ours']:.2f} s vs transformers {best['transformers']:.2f} s (its fastest "
        f"built-in precision; the int8 row quantizes it by hand as we do): {best['transformers'] / best['ours']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="vitl", help="encoder preset, e.g. vitl, vitg, tiny, vitl-2.1")
    parser.add_argument(
        "--num-frames",
        "--frames",
        dest="frames",
        type=int,
        default=16,
        help="frames per clip (--frames: old name)",
    )
    parser.add_argument("--size", type=int, default=0, help="crop in pixels (0: the preset's crop)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per precision (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument(
        "--force-bf16", action="store_true", help="time bf16 autocast even where it is emulated"
    )
    parser.add_argument(
        "--memory-frames", type=int, default=0, help="also measure peak memory at this many frames"
    )
    parser.add_argument("--memory-only", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.size = args.size or encoder_config(args.preset).crop
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_only:
        memory_run(args.preset, args.frames, args.size, args.memory_only)
        return

    print(f"# {machine_summary()}")
    ours, hf = build_pair(args.preset, args.size, args.frames)
    video = torch.randn(1, args.frames, 3, args.size, args.size)
    t, h, w = ours.grid(video.shape)
    flops = encoder_flops(ours.cfg, t * h * w)
    with torch.no_grad():
        reference = ours(video)
        diff = "n/a" if hf is None else f"{(reference - run_transformers(hf, video)).abs().max():.2e}"
    print(
        f"# {args.preset} (V-JEPA {ours.cfg.version}), {args.frames} frames x {args.size} px, batch 1, "
        f"{t * h * w} tokens, {flops / 1e9:.0f} GFLOP per forward; fp32 max |ours - transformers| = {diff}; "
        f"fp32 matmul peak {matmul_peak(torch.float32):.0f} GFLOP/s"
    )
    if hf is None:
        print("# transformers has no V-JEPA 2.1 class: ours only")
    time_precisions(ours, hf, video, reference, flops, args)
    if args.memory_frames:
        print("\n| clip | precision | peak RSS | before the forward | forward time |\n|---|---|---|---|---|")
        for name in ("fp32", "int8"):
            cmd = [sys.executable, __file__, "--preset", args.preset, "--num-frames", str(args.memory_frames)]
            subprocess.run([*cmd, "--size", str(args.size), "--memory-only", name], check=True)


if __name__ == "__main__":
    main()
