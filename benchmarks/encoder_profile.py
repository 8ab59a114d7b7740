"""Where an encoder forward spends its time, per held precision: the operators, grouped, with
their share of the forward and the GFLOP/s of the matrix products.

    python benchmarks/encoder_profile.py                             # ViT-L cut to 4 blocks, 16 x 256 px
    python benchmarks/encoder_profile.py --preset vitl --depth 24 --dtypes fp32 int8

Answers "what stops a precision short of its matmul peak": torch.profiler over one forward after
a warm-up, operators grouped into matrix products (Linear / quantized Linear), attention (SDPA),
quantizing activations, norms, GELU and the rest (copies, RoPE, adds).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from vjepa2.checkpoints.loading import load_encoder
from vjepa2.models.precision import machine_summary
from vjepa2.runtime.bench import encoder_flops

GROUPS = (  # (group, substrings of operator names), first match wins
    ("matrix products", ("addmm", "mm", "linear_dynamic", "quantized::linear", "fbgemm", "matmul")),
    ("attention", ("attention", "sdpa", "flash")),
    ("quantize activations", ("quantize", "choose_qparams", "dequantize")),
    ("norms", ("layer_norm", "native_layer_norm")),
    ("GELU", ("gelu",)),
)


def group_of(name: str) -> str:
    low = name.lower()
    for group, keys in GROUPS:
        if any(k in low for k in keys):
            return group
    return "the rest (copies, RoPE, adds)"


def profile_forward(model, clip: torch.Tensor) -> tuple[float, dict[str, float], dict[str, list]]:
    """(seconds of one forward, {group: self CPU seconds}, {group: [(operator, seconds)]})."""
    with torch.inference_mode():
        model.encode(clip)  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model.encode(clip)
    groups: dict[str, float] = defaultdict(float)
    members: dict[str, list] = defaultdict(list)
    for event in prof.key_averages():
        seconds = event.self_cpu_time_total / 1e6
        groups[group_of(event.key)] += seconds
        members[group_of(event.key)].append((event.key, seconds))
    return sum(groups.values()), dict(groups), members


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="vitl")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "int8"])
    args = parser.parse_args()
    print(machine_summary())
    clip = torch.randn(1, args.frames, 3, args.crop, args.crop)
    for dtype in args.dtypes:
        model = load_encoder(f"random:{args.preset}", depth=args.depth, dtype=dtype)
        seconds, groups, members = profile_forward(model, clip)
        cfg = model.encoder.cfg
        flops = encoder_flops(cfg, (args.frames // cfg.tubelet) * (args.crop // cfg.patch) ** 2)
        print(f"\n{args.preset} x {args.depth} blocks, {args.frames} x {args.crop} px, {dtype}: "
              f"{seconds:.2f} s of operator time, {flops / seconds / 1e9:.0f} GFLOP/s overall")  # fmt: skip
        print("| group | s | share | largest operators (s) |\n|---|---:|---:|---|")
        for name, s in sorted(groups.items(), key=lambda kv: -kv[1]):
            top = sorted(members[name], key=lambda m: -m[1])[:3]
            ops = ", ".join(f"{op} {t:.2f}" for op, t in top)
            print(f"| {name} | {s:.2f} | {100 * s / seconds:.0f}% | {ops} |")


if __name__ == "__main__":
    main()
