"""Clips per second through the training loader: WebDataset shards against the same videos as
single files, with the tiny-cpu pretraining step's consumption beside them.

    python benchmarks/data_throughput.py                       # the tiny-cpu data and clip settings
    python benchmarks/data_throughput.py --clips 400 --workers 1 2 4 --no-step

The videos are the tiny-cpu run's synthetic set (256 clips of 24 frames, 80 px; made first if
missing). Each case reads --clips training clips of 16 frames at 4 fps, cropped to 64 px (random
windows, crops and flips, as pretraining draws them) through a DataLoader with 1 and 2 worker
processes, and counts clips/s after the first batch (worker start-up left out); the cases take turns, each
--repeats times, and the table shows the best run and every run (the CPU may be shared), and
the CPU time all processes spent per clip (less sensitive to other work on the machine):

  files:         ``VideoDataset`` over the folder (a random file per clip), every clip decoded
  shards:        ``ShardClips`` over the packed shards on the local disk (shuffle buffer 64)
  shards, HTTP:  the same shards from an HTTP server on loopback (a thread of this process)

The step row runs ``vjepa2 pretrain --config configs/pretrain/tiny-cpu.yaml`` for --steps steps
fed from the shards (1 loader worker, as that config) and reports the median clips/s of the
logged steps after the second: what the tiny-cpu step consumes on this machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vjepa2.data.datasets import VideoDataset, collate_skip_bad
from vjepa2.data.shards.reader import ShardClips, shard_sources
from vjepa2.data.shards.writer import MakeShardsConfig, run_make_shards
from vjepa2.train.pretrain_data import DataConfig, synthetic_source

REPO = Path(__file__).resolve().parents[1]
FRAMES, FPS, CROP, BATCH = 16, 4.0, 64, 8  # configs/pretrain/tiny-cpu.yaml, main phase


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (loader workers, joined)."""
    own, ended = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime


def clips_per_s(dataset, workers: int, clips: int, sampler=None) -> tuple[float, float]:
    """(clips/s of a DataLoader over ``dataset`` from its second batch to ``clips`` clips, CPU ms
    per clip of every process over the whole read, start-up included)."""
    loader = torch.utils.data.DataLoader(
        dataset, BATCH, sampler=sampler, num_workers=workers, collate_fn=collate_skip_bad
    )
    seen, start, cpu = 0, None, cpu_seconds()
    batches = iter(loader)
    for batch in batches:
        if start is None:  # the first batch pays for the workers' start-up
            start = time.perf_counter()
            continue
        seen += len(batch["clip"])
        if seen >= clips:
            break
    rate = seen / (time.perf_counter() - start)
    del batches  # the workers end here, and their CPU time is counted
    return rate, 1000 * (cpu_seconds() - cpu) / (seen + BATCH)


def serve(folder: Path) -> tuple[str, object]:
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def step_rate(shards: Path, steps: int, out: Path) -> float:
    """Median clips/s of the tiny-cpu pretraining step fed from ``shards``."""
    args = [sys.executable, "-m", "vjepa2", "pretrain", str(shards), "--config",
            str(REPO / "configs/pretrain/tiny-cpu.yaml"), f"run.out={out}", f"run.stop_after={steps}",
            "run.log_every=1", "run.checkpoint_every=100000"]  # fmt: skip
    subprocess.run(args, check=True, capture_output=True)
    rows = [json.loads(line) for line in open(out / "log.jsonl")]
    return statistics.median(r["clips_per_s"] for r in rows[2:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=240, help="clips read per case")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="loader worker counts")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each case (the best is shown)")
    parser.add_argument("--steps", type=int, default=12, help="tiny-cpu steps timed")
    parser.add_argument("--no-step", action="store_true", help="skip the tiny-cpu step row")
    parser.add_argument("--shard-size-mb", type=float, default=0.25, help="shard size (8 shards here)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    videos = synthetic_source(DataConfig(), 24, 80)  # the tiny-cpu set, cached
    work = Path(tempfile.mkdtemp(prefix="data-throughput-"))
    shards = work / "shards"
    run_make_shards(
        MakeShardsConfig(sources=[str(videos)], out=str(shards), shard_size_mb=args.shard_size_mb)
    )
    url, server = serve(shards)
    files = VideoDataset(videos, FRAMES, FPS, crop=CROP, seed=0)
    rates: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(args.repeats):  # cases alternate, so a busy spell of a shared CPU hits them all
        for workers in args.workers:
            sampler = torch.utils.data.RandomSampler(files, replacement=True, num_samples=10**6)
            rates.setdefault(("files", workers), []).append(clips_per_s(files, workers, args.clips, sampler))
            for name, source in (("shards", str(shards)), ("shards, HTTP loopback", url)):
                dataset = ShardClips(shard_sources([source]), FRAMES, FPS, CROP, buffer=64, batch_size=BATCH)
                rates.setdefault((name, workers), []).append(clips_per_s(dataset, workers, args.clips))
    server.shutdown()
    print(f"\nCPU: {cpu_name()} ({torch.get_num_threads()} torch thread per process, {len(videos_in(videos))} "
          f"videos, {FRAMES} frames at {FPS:g} fps, {CROP} px, batch {BATCH})\n")  # fmt: skip
    print("| read from | loader workers | clips/s (best run) | each run | CPU ms per clip (median) |")
    print("| --- | --- | --- | --- | --- |")
    for (name, workers), runs in sorted(rates.items(), key=lambda item: item[0][1]):
        walls, cpus = zip(*runs)
        each = ", ".join(f"{r:.1f}" for r in walls)
        print(f"| {name} | {workers} | {max(walls):.1f} | {each} | {statistics.median(cpus):.1f} |")
    if not args.no_step:
        rate = step_rate(shards, args.steps, work / "run")
        steps = f"median of {args.steps - 2} steps"
        print(f"| tiny-cpu pretraining step (consumes), fed from shards | 1 | {rate:.1f} | {steps} | |")


def videos_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.mp4"))


if __name__ == "__main__":
    main()
