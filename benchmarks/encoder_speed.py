"""Encoder speed: ours against transformers.VJEPA2Model, each in its best configuration, same weights.

    python benchmarks/encoder_speed.py --threads 2                 # ViT-L, 16 frames x 256 px, batch 1 and 4
    python benchmarks/encoder_speed.py --preset tiny --size 64 --batches 1 --repeats 5
    python benchmarks/encoder_speed.py --depth 6 --batches 1 4      # ViT-L widths and tokens, a quarter of the blocks
    python benchmarks/encoder_speed.py --cosine-presets tiny,small,vitl,vith,vitg --cosine-depth 2 --batches

Every configuration a user could pick is timed, interleaved in one loop per batch size (minimum
of --repeats rounds after a warm-up, so a load that comes and goes hits all alike; the measuring
code is ``vjepa2.runtime.bench``, which ``vjepa2 bench`` uses too):

- ours: the weights held in fp32, bf16 (``vjepa2.load(dtype="bf16")``) or int8 (quantized Linear
  layers, ``models/held.py``);
- transformers: fp32, bf16 autocast over its fp32 weights, its weights cast to bf16, and int8 by
  hand (the same torch.ao dynamic quantization applied to its Linear layers).

bf16 runs only where it is native (AMX / AVX512-BF16 CPUs, CUDA) or with --force-bf16. Each row
gives seconds per batch, GFLOP/s and the fraction of the measured matmul peak of its precision; the
last line compares the best of each side. ``--cosine-presets``: the token cosine to fp32 of every
precision (bf16 included, emulated where it must be: the models are cut to --cosine-depth blocks)
for each preset on the benchmark clip ``dtype: auto`` checks (``models/auto_precision.py``).
transformers has no V-JEPA 2.1 class: a 2.1 preset is timed on our side only.
"""

from __future__ import annotations

import argparse
import copy
import tempfile

import torch

import vjepa2
from vjepa2.models.auto_precision import benchmark_clip
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.model import VJEPA2
from vjepa2.models.precision import fast_bf16, machine_summary
from vjepa2.models.presets import encoder_config
from vjepa2.models.quantize import quantize_int8
from vjepa2.runtime import bench


def build_pair(preset: str, size: int, frames: int, depth: int = 0):
    """Our fp32 encoder and transformers' VJEPA2Model holding its weights (None for 2.1)."""
    torch.manual_seed(0)
    cfg = encoder_config(preset, crop=size, frames=frames, **({"depth": depth} if depth else {}))
    ours = VJEPA2(VideoEncoder(cfg)).eval()
    if cfg.version != "2.0":
        return ours.encoder, None
    from transformers import VJEPA2Model

    with tempfile.TemporaryDirectory() as tmp:
        vjepa2.export_transformers(ours, tmp, crop_size=size)
        hf = VJEPA2Model.from_pretrained(tmp, attn_implementation="sdpa").eval()
    return ours.encoder, hf


def transformers_forward(model, cast: bool):
    """transformers' encoder call (bf16 autocast around it with ``cast``), tokens out."""
    kind = next(model.parameters()).device.type

    def run(video):
        with torch.autocast(kind, dtype=torch.bfloat16, enabled=cast):
            return model(pixel_values_videos=video, skip_predictor=True).last_hidden_state

    return run


def configurations(ours, hf, dtypes: list[str]) -> dict[str, tuple[str, object]]:
    """name -> (its precision, a callable clips -> tokens), for both sides."""
    configs = {f"ours {d}": (d, m) for d, m in bench.held_copies(ours, dtypes).items()}
    if hf is not None:
        configs["transformers fp32"] = ("fp32", transformers_forward(hf, False))
        if "bf16" in dtypes:
            configs["transformers bf16 autocast"] = ("bf16", transformers_forward(hf, True))
            configs["transformers bf16 weights"] = ("bf16", transformers_forward(copy.deepcopy(hf).to(torch.bfloat16), False))  # fmt: skip
        if "int8" in dtypes:
            configs["transformers int8 (by hand)"] = ("int8", transformers_forward(quantize_int8(hf), False))
    return configs


def time_batch(
    configs, cfg, clip: torch.Tensor, batch: int, repeats: int, dtypes: list[str]
) -> dict[str, float]:
    """Print one table row per configuration at ``batch``; returns name -> seconds. The matmul
    peak of each precision is timed in the same interleaved loop, so that it sees the same load."""
    video = clip.expand(batch, -1, -1, -1, -1).contiguous()
    device = video.device
    tokens = (clip.shape[1] // cfg.tubelet) * (clip.shape[3] // cfg.patch) * (clip.shape[4] // cfg.patch)
    flops = bench.encoder_flops(cfg, tokens) * batch
    fns = {n: (lambda f=f: f(video)) for n, (_, f) in configs.items()}
    fns |= {f"peak {d}": bench.peak_product(d, device) for d in dtypes}
    with torch.no_grad():
        seconds = bench.interleaved(fns, repeats, device)
    peaks = {d: 2 * bench.PEAK_SIZE**3 / seconds.pop(f"peak {d}") / 1e9 for d in dtypes}
    print(
        f"| {batch} | matmul peak (2048^3, same loop) | | | {' / '.join(f'{d} {p:.0f}' for d, p in peaks.items())} | |"
    )
    for name, s in seconds.items():
        dtype = configs[name][0]
        gflops = flops / s / 1e9
        print(
            f"| {batch} | {name} | {s:.2f} | {batch / s:.3f} | {gflops:.0f} | {100 * gflops / peaks[dtype]:.0f}% |"
        )
    return seconds


def best_of_each(seconds: dict[str, float], batch: int) -> None:
    ours = min((s, n) for n, s in seconds.items() if n.startswith("ours"))
    theirs = [(s, n) for n, s in seconds.items() if n.startswith("transformers")]
    if theirs:
        t = min(theirs)
        print(f"batch {batch}: best ours ({ours[1]}) {ours[0]:.2f} s vs best transformers ({t[1]}) {t[0]:.2f} s: {t[0] / ours[0]:.2f}x")  # fmt: skip


def cosines(presets: list[str], depth: int) -> None:
    """Token cosine (min over tokens) of each held precision to fp32 per preset, --cosine-depth blocks."""
    print(f"\n| preset (first {depth} blocks) | bf16 | int8 |\n|---|---|---|")
    for preset in presets:
        cfg = encoder_config(preset)
        clip = benchmark_clip(4, min(cfg.crop, 128))
        torch.manual_seed(0)
        encoder = VideoEncoder(encoder_config(preset, depth=depth)).eval()
        rows = bench.time_encoders(bench.held_copies(encoder, ["fp32", "bf16", "int8"]), clip, 1, {})
        got = {r.dtype: r.token_cosine for r in rows}
        print(f"| {preset} | {got['bf16']:.5f} | {got['int8']:.5f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="vitl", help="encoder preset, e.g. vitl, vitg, tiny, vitl-2.1")
    parser.add_argument("--num-frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--size", type=int, default=0, help="crop in pixels (0: the preset's crop)")
    parser.add_argument("--depth", type=int, default=0, help="cut the encoder to this many blocks (0: all)")
    parser.add_argument(
        "--batches", type=int, nargs="*", default=[1, 4], help="batch sizes (none: skip timing)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per batch size (minimum kept)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (int8: CPU only)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--force-bf16", action="store_true", help="time bf16 even where it is emulated")
    parser.add_argument("--cosine-presets", default="", help="comma-separated presets for the cosine table")
    parser.add_argument("--cosine-depth", type=int, default=2, help="blocks of each cosine-table model")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {machine_summary()}")
    if args.batches:
        device = torch.device(args.device)
        bf16 = args.force_bf16 or fast_bf16(device.type)
        dtypes = ["fp32", *(["bf16"] if bf16 else []), *(["int8"] if device.type == "cpu" else [])]
        size = args.size or encoder_config(args.preset).crop
        ours, hf = build_pair(args.preset, size, args.num_frames, args.depth)
        ours, hf = ours.to(device), hf.to(device) if hf is not None else None
        clip = benchmark_clip(args.num_frames, size).to(device)
        print(f"# {args.preset} (V-JEPA {ours.cfg.version}, {ours.cfg.depth} blocks), {args.num_frames} frames x {size} px" +
              ("" if hf is not None else "; transformers has no V-JEPA 2.1 class: ours only"))  # fmt: skip
        configs = configurations(ours, hf, dtypes)
        print(
            "| batch | configuration | s per batch | clips/s | GFLOP/s | of its matmul peak |\n|---|---|---|---|---|---|"
        )
        for batch in args.batches:
            best_of_each(time_batch(configs, ours.cfg, clip, batch, args.repeats, dtypes), batch)
    if args.cosine_presets:
        cosines(args.cosine_presets.split(","), args.cosine_depth)


if __name__ == "__main__":
    main()
