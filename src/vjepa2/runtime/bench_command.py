"""``vjepa2 bench``: this machine in one command, under a minute at its default size.

Prints the device, the precisions it runs natively, the measured matmul peak of each, the
encoder's clips/s in each held precision (``models/held.py``) with the achieved fraction of that
precision's peak and the token cosine to fp32, and the precision ``dtype: auto`` will use for this
encoder (``models/auto_precision.py``). ``--out`` writes the same as ``bench.json``. The
measuring code is ``runtime/bench.py``, which ``benchmarks/encoder_speed.py`` shares.
"""

from __future__ import annotations

import datetime
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from vjepa2.atomic import atomic_write_json
from vjepa2.checkpoints.loading import load_encoder
from vjepa2.config import opt
from vjepa2.models.auto_precision import benchmark_clip, choose
from vjepa2.models.precision import DEVICE_HELP, cpu_name, machine_summary
from vjepa2.runtime import bench
from vjepa2.runtime.process import Process

RESULT_FILE = "bench.json"


@dataclass
class BenchConfig:
    encoder: str = opt(
        "random:small",
        help="the encoder timed: random:<preset> (random:small runs in seconds), a checkpoint or a released name",
    )
    num_frames: int = opt(16, help="frames per clip", min=1)
    crop: int = opt(0, help="clip size in pixels (0: the encoder's pretraining crop)", min=0)
    batch_size: int = opt(1, help="clips per forward pass", min=1)
    repeats: int = opt(3, help="timed rounds per precision (interleaved; the minimum is kept)", min=1)
    device: str = opt("auto", help=DEVICE_HELP)
    threads: int = opt(0, help="torch CPU threads (0: torch's default)", min=0)
    compile: bool = opt(False, help="also time torch.compile of the fp32 encoder, cold (compiling) and warm")
    out: str = opt("", help=f"folder to write {RESULT_FILE} into (empty: print only)")


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def measure(cfg: BenchConfig, device: torch.device) -> dict:
    """Every figure ``vjepa2 bench`` reports, as a JSON-ready dict."""
    precs = bench.precisions(device)
    peaks, peak_sizes = {}, {}
    for name, how in precs.items():
        if how.startswith(("native", "emulated")):
            peak_sizes[name] = bench.PEAK_SIZE if how.startswith("native") else bench.EMULATED_PEAK_SIZE
            say(f"matmul peak {name} ({peak_sizes[name]}^3)")
            peaks[name] = bench.matmul_peak(name, device, peak_sizes[name])
    encoder = load_encoder(cfg.encoder, device=str(device)).encoder
    crop = cfg.crop or encoder.cfg.crop
    clips = benchmark_clip(cfg.num_frames, crop).expand(cfg.batch_size, -1, -1, -1, -1).contiguous()
    timed = [name for name, how in precs.items() if how.startswith("native")]
    say(
        f"encoder {cfg.encoder}, {cfg.num_frames} frames x {crop} px, batch {cfg.batch_size}: {', '.join(timed)}"
    )
    rows = bench.time_encoders(bench.held_copies(encoder, timed), clips, cfg.repeats, peaks)
    say("the precision auto uses for this encoder")
    auto = choose(encoder, device, allow_int8=True)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "machine": machine_summary(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "precisions": precs,
        "matmul_peak_gflops": peaks,
        "matmul_size": peak_sizes,
        "encoder": cfg.encoder,
        "num_frames": cfg.num_frames,
        "crop": crop,
        "batch_size": cfg.batch_size,
        "repeats": cfg.repeats,
        "rows": [asdict(r) for r in rows],
        "skipped": {name: how for name, how in precs.items() if name not in timed},
        "auto": asdict(auto),
    }
    if cfg.compile:
        say("torch.compile of the fp32 encoder (the first call compiles)")
        cold, warm = bench.compiled_seconds(encoder, clips, cfg.repeats)
        eager = next(r.seconds for r in rows if r.dtype == "fp32")
        result["compile"] = {"cold_seconds": cold, "warm_seconds": warm, "eager_seconds": eager}
    return result


def report(result: dict) -> str:
    """The console table of ``measure``'s result."""
    lines = [
        f"device: {result['device']} ({result['device_name']}), {result['threads']} threads, torch {result['torch']}",
        "precisions: " + "; ".join(f"{k} {v}" for k, v in result["precisions"].items()),
        "matmul peak: "
        + ", ".join(
            f"{k} {v:.0f} GFLOP/s ({result['matmul_size'][k]}^3)"
            for k, v in result["matmul_peak_gflops"].items()
        ),
        f"encoder {result['encoder']}: {result['num_frames']} frames x {result['crop']} px, batch {result['batch_size']}",
        "| precision | s per batch | clips/s | GFLOP/s | of its matmul peak | token cosine to fp32 |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        frac = "-" if r["fraction_of_peak"] is None else f"{100 * r['fraction_of_peak']:.0f}%"
        lines.append(
            f"| {r['dtype']} | {r['seconds']:.3f} | {r['clips_per_s']:.2f} | {r['gflops']:.1f} | {frac} | {r['token_cosine']:.5f} |"
        )
    lines += [f"not timed: {k} ({v})" for k, v in result["skipped"].items()]
    if "compile" in result:
        c = result["compile"]
        lines.append(
            f"torch.compile fp32: cold {c['cold_seconds']:.1f} s (compiling), warm {c['warm_seconds']:.3f} s "
            f"against eager {c['eager_seconds']:.3f} s"
        )
    lines.append(f"dtype auto uses: {result['auto']['dtype']} ({result['auto']['reason']})")
    return "\n".join(lines)


def run_bench(cfg: BenchConfig) -> int:
    with Process(cfg.device, "auto", cfg.threads, inference=True) as proc:
        result = measure(cfg, proc.device)
    print(report(result))
    if cfg.out:
        atomic_write_json(Path(cfg.out) / RESULT_FILE, result, indent=2)
        print(f"wrote {Path(cfg.out) / RESULT_FILE}")
    return 0
