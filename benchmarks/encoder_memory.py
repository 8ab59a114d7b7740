"""Peak memory of one inference forward per held precision, each in a fresh process (Linux).

    python benchmarks/encoder_memory.py                          # ViT-L, 64 frames x 256 px: fp32, bf16, int8
    python benchmarks/encoder_memory.py --dtypes bf16 --depth 1  # one block, and an estimate for all

Each precision runs in a child process of its own, so one's allocations cannot hide another's
peak. The child builds the encoder (fp32, random weights), holds it in the precision
(``models/held.py``: bf16 or int8 weights, the fp32 ones freed and, with glibc, handed back to
the OS by ``malloc_trim``), resets the kernel's high-water mark of its resident memory
(``/proc/self/clear_refs``), runs one forward without gradients and reads the high-water mark
again (``VmHWM``). Printed per precision: the weights held (counted), the resident memory before
the forward, the peak during it, the peak while loading (the fp32 model is built first), seconds.

``--depth`` cuts the encoder to that many blocks (same width and tokens), for a quick look where
bf16 is emulated (AVX2: about 15 s a ViT-L block at 8192 tokens, 7 minutes for the whole). The row then
also prints an ESTIMATE of the full-depth peak, labelled as such: the full model's held weights
(counted without building it) plus what the forward added over the resident memory at the cut
depth. At inference the blocks run one after another and keep no activations for a backward, so
the forward's extra memory is that of one block, whatever the depth.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import subprocess
import sys
import time
from pathlib import Path

import torch

from vjepa2.models.auto_precision import benchmark_clip
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.held import hold, weight_bytes
from vjepa2.models.precision import machine_summary
from vjepa2.models.presets import encoder_config

GB = 1e9


def status_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmRSS, VmHWM; 1 kB there is 1,024 bytes)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def release_freed_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed heap pages otherwise
    except (OSError, AttributeError):
        pass


def full_weight_bytes(preset: str, dtype: str) -> int:
    """Bytes the full-depth encoder holds in ``dtype``, counted from one block (not built whole)."""
    one = VideoEncoder(encoder_config(preset, depth=1))
    block = weight_bytes(hold(one.blocks[0], dtype))
    rest = weight_bytes(hold(one, dtype)) - block
    return rest + encoder_config(preset).depth * block


def child(args) -> None:
    """One precision, in this process: print one table row."""
    depth = args.depth or encoder_config(args.preset).depth
    cfg = encoder_config(args.preset, depth=depth, crop=args.size, frames=args.num_frames)
    model = hold(VideoEncoder(cfg).eval(), args.child)
    release_freed_memory()
    load_peak = status_kb("VmHWM") * 1024
    clip = benchmark_clip(args.num_frames, args.size)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = status_kb("VmRSS") * 1024
    start = time.perf_counter()
    with torch.no_grad():
        tokens = model(clip)
    seconds = time.perf_counter() - start
    peak = status_kb("VmHWM") * 1024
    held = weight_bytes(model)
    row = (
        f"| {args.preset} {args.num_frames} x {args.size} ({tokens.shape[1]} tokens) | {args.child} | {depth} | "
        f"{held / GB:.2f} GB | {before / GB:.2f} GB | **{peak / GB:.2f} GB** | {load_peak / GB:.2f} GB | {seconds:.0f} s |"
    )
    if args.depth:
        estimate = full_weight_bytes(args.preset, args.child) + (peak - before) + (before - held)
        row += f" ESTIMATE at full depth: {estimate / GB:.2f} GB |"
    print(row, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="vitl", help="encoder preset")
    parser.add_argument("--num-frames", type=int, default=64, help="frames per clip")
    parser.add_argument("--size", type=int, default=256, help="crop in pixels")
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16", "int8"], help="held precisions")
    parser.add_argument("--depth", type=int, default=0, help="blocks (0: the preset's; see the docstring)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        child(args)
        return
    print(f"# {machine_summary()}")
    print(
        "| clip | held precision | blocks | weights held | resident before the forward | peak during the forward "
        "| peak while loading | forward |\n|---|---|---|---|---|---|---|---|"
    )
    for dtype in args.dtypes:
        cmd = [sys.executable, __file__, "--preset", args.preset, "--num-frames", str(args.num_frames)]
        cmd += ["--size", str(args.size), "--depth", str(args.depth), "--threads", str(args.threads)]
        subprocess.run([*cmd, "--child", dtype], check=True)


if __name__ == "__main__":
    main()
