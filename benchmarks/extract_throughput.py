"""Does decoding hide behind compute? `vjepa2 extract` clips/s (decode included) against the
encoder's own rate on the same clips already in memory, same batch, same precision, same run.

    python benchmarks/extract_throughput.py                      # random:small, 16 x 128 px, 24 videos
    python benchmarks/extract_throughput.py --encoder random:vitl --crop 256 --videos 8 --decode-workers 0 2

The videos (320 x 240 px h264, 64 frames at 30 fps, moving noise) are made once in a temporary
folder. Each round times, in turn: the encoder alone on the clips read beforehand (batches of
--batch-size), then `vjepa2 extract` over the files for each --decode-workers value, wall time
of the command minus its model load (the same encoder, timed in the round). The table shows the
best round of each and the ratio extract / encoder: 100% means decoding is fully hidden.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vjepa2.checkpoints.loading import load_encoder
from vjepa2.cli import main as cli
from vjepa2.data.video import write_video
from vjepa2.evals.commands.extract import ExtractConfig, read_clips
from vjepa2.models.precision import machine_summary


def make_videos(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        base = rng.integers(0, 255, (240, 360, 3), dtype=np.uint8)
        frames = np.stack([np.roll(base, 2 * t, axis=1)[:, :320] for t in range(64)])
        paths.append(write_video(folder / f"v{i:03d}.mp4", frames, fps=30))
    return paths


def encoder_seconds(model, clips: list[torch.Tensor], batch: int) -> float:
    """Seconds to encode ``clips`` (each (1, T, C, H, W)) in batches of ``batch``."""
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(clips), batch):
            model.encode(torch.cat(clips[i : i + batch]))
    return time.perf_counter() - start


def extract_seconds(folder: Path, out: Path, args, workers: int) -> float:
    command = [str(folder), "--encoder", args.encoder, "--out", str(out), "--crop", str(args.crop)]
    command += ["--num-frames", str(args.num_frames), "--batch-size", str(args.batch_size)]
    command += ["--pooling", "mean", f"dtype={args.dtype}", f"decode_workers={workers}"]
    start = time.perf_counter()
    assert cli(["extract", *command]) == 0
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="random:small")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--num-frames", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--decode-workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(machine_summary())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "videos"
        paths = make_videos(folder, args.videos)
        cfg = ExtractConfig(num_frames=args.num_frames, crop=args.crop)
        clips = [read_clips(p, cfg, args.crop, False) for p in paths]
        best: dict[str, float] = {}
        for r in range(args.rounds):
            start = time.perf_counter()
            model = load_encoder(args.encoder, device="cpu", dtype=args.dtype)
            load = time.perf_counter() - start
            rows = {"encoder alone": encoder_seconds(model, clips, args.batch_size)}
            for w in args.decode_workers:
                seconds = extract_seconds(folder, Path(tmp) / f"out{r}-{w}", args, w) - load
                rows[f"extract, decode_workers={w}"] = seconds
            for name, seconds in rows.items():
                best[name] = min(best.get(name, float("inf")), seconds)
    encoder = best["encoder alone"]
    print(f"\n{args.encoder}, {args.num_frames} x {args.crop} px, batch {args.batch_size}, {args.dtype}, "
          f"{args.videos} videos, best of {args.rounds} rounds")  # fmt: skip
    print("| case | s | clips/s | of the encoder's rate |\n|---|---:|---:|---:|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.2f} | {args.videos / seconds:.2f} | {100 * encoder / seconds:.0f}% |")


if __name__ == "__main__":
    main()
