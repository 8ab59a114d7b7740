"""Encoder speed: our VideoEncoder vs transformers.VJEPA2Model holding the same random weights.

    python benchmarks/encoder_speed.py                      # ViT-L, 16 frames x 256 px, batch 1
    python benchmarks/encoder_speed.py --preset tiny --frames 16 --size 64 --repeats 5
    python benchmarks/encoder_speed.py --memory-frames 64   # also peak memory at 64 x 256 (8192 tokens)

Prints seconds per forward (median of --repeats after a warm-up), the speed ratio, and achieved
GFLOP/s against this machine's measured matmul peak, for fp32 and bf16 autocast.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import tempfile
import time

import torch

import vjepa2
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.model import VJEPA2
from vjepa2.models.presets import encoder_config


def encoder_flops(cfg, n_tokens: int, frames: int, size: int) -> float:
    """Multiply-adds x 2 of one forward: patch embedding, qkv/proj/MLP, attention scores and mix."""
    d, n = cfg.dim, n_tokens
    per_layer = 2 * n * (3 * d * d + d * d + 2 * d * cfg.mlp_hidden) + 2 * 2 * n * n * d
    embed = 2 * n * d * cfg.in_chans * cfg.tubelet * cfg.patch**2
    return cfg.depth * per_layer + embed


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times) / 1e9


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def build_pair(preset: str, size: int, frames: int):
    torch.manual_seed(0)
    cfg = encoder_config(preset, crop=size, frames=frames)
    ours = VJEPA2(VideoEncoder(cfg)).eval()
    from transformers import VJEPA2Model

    with tempfile.TemporaryDirectory() as tmp:
        vjepa2.export_transformers(ours, tmp, crop_size=size)
        hf = VJEPA2Model.from_pretrained(tmp, attn_implementation="sdpa").eval()
    return ours, hf


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def memory_run(preset: str, frames: int, size: int, dtype: str) -> None:
    """Peak resident memory of one inference forward (run in a fresh process for a clean peak)."""
    cfg = encoder_config(preset, crop=size, frames=frames)
    model = VideoEncoder(cfg).eval()
    video = torch.randn(1, frames, 3, size, size)
    base = peak_rss_gb()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
        t0 = time.perf_counter()
        tokens = model(video)
    print(
        f"{preset} {frames}x{size} ({tokens.shape[1]} tokens) {dtype}: peak RSS {peak_rss_gb():.2f} GB "
        f"(weights+input {base:.2f} GB), {time.perf_counter() - t0:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="vitl")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument(
        "--memory-frames", type=int, default=0, help="also measure peak memory at this many frames"
    )
    parser.add_argument("--memory-only", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_only:
        memory_run(args.preset, args.frames, args.size, args.memory_only)
        return

    ours, hf = build_pair(args.preset, args.size, args.frames)
    video = torch.randn(1, args.frames, 3, args.size, args.size)
    n_tokens = ours.encoder.grid(video.shape)
    n_tokens = n_tokens[0] * n_tokens[1] * n_tokens[2]
    flops = encoder_flops(ours.encoder.cfg, n_tokens, args.frames, args.size)
    with torch.no_grad():
        diff = (
            ours.encode(video) - hf(pixel_values_videos=video, skip_predictor=True).last_hidden_state
        ).abs()
    print(
        f"# {args.preset}, {args.frames} frames x {args.size} px, batch 1, {n_tokens} tokens, "
        f"{flops / 1e9:.0f} GFLOP per forward, {torch.get_num_threads()} threads; max |ours - hf| = {diff.max():.2e}"
    )
    print("| dtype | peak matmul GFLOP/s | transformers s | ours s | speed-up | ours GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|---|")
    for name, dtype in (("fp32", torch.float32), ("bf16 autocast", torch.bfloat16)):
        peak = matmul_peak(dtype)
        enabled = dtype == torch.bfloat16

        def run_hf(enabled=enabled):
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
                hf(pixel_values_videos=video, skip_predictor=True)

        def run_ours(enabled=enabled):
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
                ours.encode(video)

        # Interleave the two so that load from other processes hits both alike.
        t_hf, t_ours = [], []
        for _ in range(args.repeats):
            t_hf.append(timed(run_hf, 1))
            t_ours.append(timed(run_ours, 1))
        hf_s, ours_s = statistics.median(t_hf), statistics.median(t_ours)
        achieved = flops / ours_s / 1e9
        print(
            f"| {name} | {peak:.0f} | {hf_s:.2f} | {ours_s:.2f} | {hf_s / ours_s:.2f}x | {achieved:.0f} | "
            f"{100 * achieved / peak:.0f}% |"
        )
        gc.collect()
    if args.memory_frames:
        import subprocess

        for dtype in ("fp32", "bf16"):
            cmd = [
                sys.executable,
                __file__,
                "--preset",
                args.preset,
                "--frames",
                str(args.memory_frames),
                "--size",
                str(args.size),
                "--memory-only",
                dtype,
            ]
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
