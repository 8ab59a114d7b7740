"""Memory and time to load a released-layout checkpoint, per held precision, each in a fresh process.

    python benchmarks/load_memory.py                      # ViT-L: fp32, bf16, int8, ours and read whole
    python benchmarks/load_memory.py --preset vith --dtypes bf16

Writes a reference-layout ``.pt`` as the released pretraining files are (``vitl.pt``: online and
EMA encoder, predictor, Adam state for both) with random weights, then loads its EMA encoder:

- ``vjepa2.load(file, dtype=...)``: the file memory-mapped, the modules built on the meta device,
  the file's tensors taken as the weights (``checkpoints/keymaps.built_with``), then held;
- read whole: ``torch.load`` without mapping, a randomly initialised fp32 encoder, a strict
  ``load_state_dict``, then held: how this package loaded before, and how the reference's hub
  loader and most scripts load these files.

Printed per row: the most anonymous resident memory the load held (sampled every half
millisecond; the pages of a mapped file are the file's, shared and dropped under pressure, not
the process's), the peak resident memory of the process (``VmHWM``, mapped pages included), what
the model holds after, and seconds. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from encoder_memory import status_kb

from vjepa2.checkpoints import keymaps as km
from vjepa2.checkpoints.loading import load, random_model
from vjepa2.models.held import hold, weight_bytes
from vjepa2.models.precision import machine_summary

GB = 1e9


def write_released_layout(path: Path, preset: str) -> None:
    """A file shaped as a released pretraining checkpoint of ``preset`` (random weights)."""
    model = random_model(preset)
    encoder = km.to_theirs(model.encoder.state_dict(), km.REFERENCE_ENCODER)
    predictor = km.to_theirs(model.predictor.state_dict(), km.REFERENCE_PREDICTOR)
    prefixed = lambda state: {f"module.backbone.{k}": v for k, v in state.items()}  # noqa: E731
    trained = [*encoder.values(), *predictor.values()]
    adam = {i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(v), "exp_avg_sq": torch.zeros_like(v)} for i, v in enumerate(trained)}  # fmt: skip
    ckpt = {
        "encoder": prefixed(encoder),
        "target_encoder": prefixed({k: v.clone() for k, v in encoder.items()}),
    }
    ckpt |= {"predictor": prefixed(predictor), "opt": {"state": adam}, "epoch": 1}
    torch.save(ckpt, path)


def read_whole(path: Path, preset: str, dtype: str) -> torch.nn.Module:
    """The file read into memory, a random fp32 encoder made, the EMA weights copied in, held."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = km.to_ours(km.strip_prefixes(ckpt["target_encoder"]), km.REFERENCE_ENCODER)
    encoder = random_model(preset, predictor=False).encoder
    encoder.load_state_dict(state, strict=True)
    del ckpt, state
    return hold(encoder.eval(), dtype)


def child(args) -> None:
    """One (way, precision) in this process: print one table row."""
    load(args.warm_up, dtype=args.dtype)  # a tiny file first: what any first load imports and sets up
    before, peak, done = status_kb("RssAnon") * 1024, [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], status_kb("RssAnon") * 1024)
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.perf_counter()
    if args.way == "ours":
        module = load(args.file, dtype=args.dtype).encoder
    else:
        module = read_whole(Path(args.file), args.preset, args.dtype)
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    anonymous = max(peak[0], status_kb("RssAnon") * 1024) - before
    way = (
        "`vjepa2.load` (mapped, built on meta)" if args.way == "ours" else "read whole, random init, copy in"
    )
    print(
        f"| {args.preset} | {args.dtype} | {way} | **{anonymous / GB:.2f} GB** | {status_kb('VmHWM') * 1024 / GB:.2f} GB "
        f"| {weight_bytes(module) / GB:.2f} GB | {seconds:.1f} s |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="vitl", help="encoder preset (its paired predictor too)")
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16", "int8"], help="held precisions")
    parser.add_argument("--ways", nargs="+", default=["ours", "whole"], help="ours and/or whole (see above)")
    parser.add_argument("--file", default="", help="an existing file of this layout (else one is written to a temp folder)")  # fmt: skip
    parser.add_argument("--warm-up", default="", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=2, metavar=("WAY", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.way, args.dtype = args.child
        child(args)
        return
    print(f"# {machine_summary()}")
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(args.file) if args.file else Path(tmp) / f"{args.preset}.pt"
        if not args.file:
            start = time.perf_counter()
            write_released_layout(file, args.preset)
            print(f"# wrote {file.stat().st_size / GB:.2f} GB in {time.perf_counter() - start:.0f} s")
        warm_up = Path(tmp) / "tiny.pt"
        write_released_layout(warm_up, "tiny")
        print(
            "| preset | held precision | load | most anonymous memory held while loading | peak resident (VmHWM) "
            "| weights held after | seconds |\n|---|---|---|---:|---:|---:|---:|"
        )
        for dtype in args.dtypes:
            for way in args.ways:
                cmd = [
                    sys.executable,
                    __file__,
                    "--preset",
                    args.preset,
                    "--file",
                    str(file),
                    "--warm-up",
                    str(warm_up),
                ]
                subprocess.run([*cmd, "--child", way, dtype], check=True)


if __name__ == "__main__":
    main()
