"""Pretraining step speed and memory: our JEPA step vs the same step built from transformers.

    python benchmarks/train_step.py                                 # tiny and ViT-L, fp32 and bf16
    python benchmarks/train_step.py --presets tiny --steps 5
    python benchmarks/train_step.py --presets vitl --num-frames 16 --crop 256 --device cuda

One step = EMA target encoder on the full clip (no grad) + layer_norm, context encoder and
predictor for the two V-JEPA 2 mask generators, L1 loss, backward, AdamW, EMA update. Each case
runs in its own process (so peak memory is its own): clips/s over --steps steps after a warm-up,
and peak memory (CUDA: max allocated; CPU: peak RSS above the RSS before the models were built).

The peer is transformers' VJEPA2Model with the same random-init sizes: its API encodes the full
clip and then gathers the context for the predictor, so its context encoder sees every token,
where the V-JEPA 2 recipe (ours) encodes only the context tokens (~39% short-range, ~19% long).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from vjepa2.masks import vjepa2_mask_generators
from vjepa2.models.predictor import gather_tokens
from vjepa2.train.jepa import Student, ema_update, jepa_loss, param_groups
from vjepa2.train.pretrain import ModelConfig, build_models

DEFAULT_SIZES = {"tiny": (16, 64), "vitl": (4, 256)}  # (frames, crop) that keep CPU runs short


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ours(preset: str, device: torch.device, checkpointing: bool):
    """(step function of clips and masks, encoder) for our Student + target encoder."""
    predictor = "tiny" if preset == "tiny" else "default"
    encoder, pred = build_models(
        ModelConfig(encoder=preset, predictor=predictor, checkpointing=checkpointing)
    )
    student = Student(encoder, pred).to(device)
    target = copy.deepcopy(encoder).requires_grad_(False).to(device)
    optimizer = torch.optim.AdamW(param_groups(student, 0.04), lr=1e-4)

    def forward(clips, context_idx, target_idx):
        return jepa_loss(student, target, clips, context_idx, target_idx)[0]

    def update():
        ema_update(target, student.encoder, 0.99925)

    return forward, update, optimizer, encoder


def peer(preset: str, device: torch.device, checkpointing: bool):
    """The same step with transformers.VJEPA2Model (student) and a copy of its encoder (target)."""
    from transformers import VJEPA2Config, VJEPA2Model

    from vjepa2.checkpoints.hf import transformers_config

    predictor = "tiny" if preset == "tiny" else "default"
    encoder, pred = build_models(ModelConfig(encoder=preset, predictor=predictor, checkpointing=False))
    model = VJEPA2Model(VJEPA2Config(**transformers_config(encoder, pred))).to(device)
    if checkpointing:
        model.gradient_checkpointing_enable()
    target = copy.deepcopy(model.encoder).requires_grad_(False)
    optimizer = torch.optim.AdamW(param_groups(model, 0.04), lr=1e-4)

    def forward(clips, context_idx, target_idx):
        with torch.no_grad():
            features = target(pixel_values_videos=clips).last_hidden_state
            features = F.layer_norm(features, (features.shape[-1],))
        losses = []
        for ctx, tgt in zip(context_idx, target_idx):  # one call per generator: their K differ
            out = model(pixel_values_videos=clips, context_mask=[ctx], target_mask=[tgt])
            pred_tokens = out.predictor_output.last_hidden_state
            losses.append((pred_tokens.float() - gather_tokens(features, tgt).float()).abs().mean())
        return torch.stack(losses).mean()

    def update():
        ema_update(target, model.encoder, 0.99925)

    return forward, update, optimizer, encoder


def run_case(args) -> dict:
    """Time one (implementation, preset, dtype) case in this process."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    before = rss_mb()
    build = ours if args.impl == "ours" else peer
    forward, update, optimizer, encoder = build(args.preset, device, args.checkpointing)
    clips = torch.randn(args.batch, args.frames, 3, args.crop, args.crop, device=device)
    generators = vjepa2_mask_generators(encoder.grid(clips.shape), seed=0)

    def step(index: int) -> None:
        masks = [gen(args.batch, index) for gen in generators]
        context_idx = [c.to(device) for c, _ in masks]
        target_idx = [t.to(device) for _, t in masks]
        with torch.autocast(device.type, torch.bfloat16, enabled=args.dtype == "bf16"):
            loss = forward(clips, context_idx, target_idx)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        update()

    step(0)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for index in range(1, args.steps + 1):
        step(index)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    memory = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else rss_mb() - before
    return {
        "clips_per_s": args.batch * args.steps / seconds,
        "peak_mb": memory,
        "s_per_step": seconds / args.steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", default="tiny,vitl")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument(
        "--num-frames", "--frames", dest="frames", type=int, default=0, help="0: 16 for tiny, 4 for vitl"
    )
    parser.add_argument("--crop", type=int, default=0, help="0: 64 for tiny, 256 for vitl")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing (both)")
    parser.add_argument("--no-peer", action="store_true", help="skip the transformers step")
    parser.add_argument("--case", nargs=3, metavar=("IMPL", "PRESET", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        args.impl, args.preset, args.dtype = args.case
        print(json.dumps(run_case(args)))
        return
    impls = ["ours"] if args.no_peer else ["ours", "transformers"]
    print(
        f"device {args.device}, batch {args.batch}, {args.steps} timed steps, checkpointing {args.checkpointing}"
    )
    print(
        f"{'preset':7s} {'clip':>9s} {'dtype':5s} {'impl':12s} {'clips/s':>8s} {'s/step':>7s} {'peak MB':>8s}"
    )
    for preset in args.presets.split(","):
        frames = args.frames or DEFAULT_SIZES[preset][0]
        crop = args.crop or DEFAULT_SIZES[preset][1]
        for dtype in args.dtypes.split(","):
            results = {}
            for impl in impls:
                cmd = [sys.executable, __file__, "--case", impl, preset, dtype, "--batch", str(args.batch)]
                cmd += [
                    "--num-frames",
                    str(frames),
                    "--crop",
                    str(crop),
                    "--steps",
                    str(args.steps),
                    "--device",
                    args.device,
                ]
                cmd += ["--checkpointing"] if args.checkpointing else []
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"{preset} {dtype} {impl}: failed\n{done.stderr[-2000:]}")
                    continue
                results[impl] = r = json.loads(done.stdout.strip().splitlines()[-1])
                print(
                    f"{preset:7s} {f'{frames}x{crop}':>9s} {dtype:5s} {impl:12s} {r['clips_per_s']:8.2f} "
                    f"{r['s_per_step']:7.2f} {r['peak_mb']:8.0f}"
                )
            if len(results) == 2:
                speedup = results["ours"]["clips_per_s"] / results["transformers"]["clips_per_s"]
                memory = results["ours"]["peak_mb"] / max(results["transformers"]["peak_mb"], 1e-9)
                print(
                    f"{'':7s} {'':9s} {dtype:5s} ours / transformers: speed x{speedup:.2f}, peak memory x{memory:.2f}"
                )


if __name__ == "__main__":
    main()
