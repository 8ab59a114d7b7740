"""How much an encoder's tokens depend on object colour, against a random encoder of its shape.

    python benchmarks/colour_sensitivity.py runs/tiny-cpu/latest.pt [more encoders] [--clips 16]

In the synthetic world only the objects are coloured (background and occluder are grey), so
permuting the RGB channels of a clip changes the objects' colours and nothing else. For each
encoder (and ``random:<it>``) the table gives the mean token change under that permutation,
divided by the mean token distance between different clips: near 0, the features ignore colour
(what JEPA does with attributes it cannot predict from context); random weights give ~0.3.
It is a share of the token distance: a lower figure can also mean that other features grew, with
colour still readable (``benchmarks/token_readout.py`` reads it from each object's token).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import vjepa2
from vjepa2.data.video import decode_frames
from vjepa2.evals.features import load_encoder
from vjepa2.worlds.scenes import MakeVideosConfig, run_make_videos


def read_frames(folder: Path, count: int) -> list:
    """The first 16 frames (uint8 (16, H, W, 3)) of ``count`` synthetic clips (made if missing)."""
    if not (folder / "videos").is_dir():
        run_make_videos(MakeVideosConfig(out=str(folder), num_videos=count, seed=7))
    return [decode_frames(p)[0][:16] for p in sorted((folder / "videos").iterdir())[:count]]


def clips(frames: list, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(clips, the same clips with RGB -> GBR), each (count, 16, C, crop, crop), normalized."""
    original = torch.stack([vjepa2.preprocess(f, crop=crop) for f in frames])
    permuted = torch.stack([vjepa2.preprocess(f[..., [1, 2, 0]], crop=crop) for f in frames])
    return original, permuted


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("encoders", nargs="+", help="checkpoints (any vjepa2.load source)")
    parser.add_argument("--data", default="data/probe-worlds", help="make-videos folder (made if missing)")
    parser.add_argument("--clips", type=int, default=16)
    args = parser.parse_args()
    frames = read_frames(Path(args.data), args.clips)  # decoded once for every encoder
    print("| encoder | colour change / clip distance |\n|---|---:|")
    by_crop: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # an encoder and its twin share a crop
    for source in args.encoders:
        for name in (source, f"random:{source}"):
            model = load_encoder(name)
            crop = model.encoder.cfg.crop
            if crop not in by_crop:
                by_crop[crop] = clips(frames, crop)
            original, permuted = by_crop[crop]
            with torch.no_grad():
                a, b = model.encode(original), model.encode(permuted)  # (clips, N, D)
            colour = (a - b).norm(dim=-1).mean()
            between = (a - a.roll(1, dims=0)).norm(dim=-1).mean()  # each clip against another one
            print(f"| {name} | {colour / between:.3f} |")


if __name__ == "__main__":
    main()
