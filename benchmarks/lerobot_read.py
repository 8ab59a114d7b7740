"""Training clips per second from a LeRobot dataset against our own episode format, same episodes.

    python benchmarks/lerobot_read.py runs/reach-random runs/reach-expert   # roots of `worlds collect`
    python benchmarks/lerobot_read.py ROOT... --repeats 3 --num-frames 4

The episodes (collected with ``--lossless true``: frames.npy) are also written as our format with
H.264 frames.mp4 (the collector's default) and as LeRobot datasets (v3.0 lossless, H.264 and AV1;
v2.1 AV1), in a temporary folder. Each case reads every episode into trajectories (frames,
actions, states, at the dataset's own rate) and builds the training windows of ``--num-frames``
(``WindowData``), what ``train-ac`` does before its feature cache; clips/s = windows / seconds.
The cases take turns, ``--repeats`` times; the table shows the best and every run (the CPU may
be shared), and checks that each case gives the same number of windows.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from vjepa2.data.episodes import read_episode, read_index, write_episode, write_index
from vjepa2.data.lerobot.convert import to_lerobot
from vjepa2.data.lerobot.trajectories import read_lerobot
from vjepa2.data.trajectories import NormStats, WindowData, read_trajectories


def cpu() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    wide = [f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma")]
    return f"{fields.get('Model name', '?').strip()} ({fields.get('CPU(s)', '?').strip()} CPUs; {' '.join(wide)})"


def as_mp4(roots: list[str], out: Path) -> Path:
    folders = []
    for i, folder in enumerate(f for root in roots for f in read_index(root)):
        e = read_episode(folder)
        folders.append(
            write_episode(
                out / f"episode_{i:06d}",
                e.frames,
                e.actions,
                e.states,
                e.meta["fps"],
                {k: v for k, v in e.meta.items() if k not in ("fps",)},
                e.extras,
            )
        )
    write_index(out, folders)
    return out


def clips(trajectories, num_frames: int) -> int:
    stats = NormStats.compute([t.actions for t in trajectories], [t.states for t in trajectories])
    data = WindowData(trajectories, stats, num_frames)
    return len(data.windows(list(range(len(trajectories)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("roots", nargs="+", help="episode roots written with --lossless true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-frames", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lerobot-bench-") as work:
        measure(args, Path(work))


def measure(args: argparse.Namespace, work: Path) -> None:
    """Write the cases into ``work``, read each ``args.repeats`` times, print the table."""
    cases = {"ours, frames.npy": lambda: read_trajectories(args.roots)}
    mp4 = as_mp4(args.roots, work / "ours-mp4")
    cases["ours, frames.mp4 (H.264)"] = lambda: read_trajectories([str(mp4)])
    for version, codec in (("v3.0", "lossless"), ("v3.0", "h264"), ("v3.0", "av1"), ("v2.1", "av1")):
        root = to_lerobot(args.roots, work / f"{version}-{codec}", version, codec)
        cases[f"LeRobot {version}, {codec}"] = lambda root=root: read_lerobot(str(root), fps=0)[0]
    runs: dict[str, list[float]] = {name: [] for name in cases}
    counts = {}
    for _ in range(args.repeats):
        for name, read in cases.items():
            tick = time.perf_counter()
            counts[name] = clips(read(), args.num_frames)
            runs[name].append(counts[name] / (time.perf_counter() - tick))
    assert len(set(counts.values())) == 1, counts
    total = next(iter(counts.values()))
    print(f"{total} clips of {args.num_frames} frames; {cpu()}; {time.strftime('%Y-%m-%d')}")
    print("| source | clips/s (best) | every run |\n|---|---|---|")
    for name, values in runs.items():
        print(f"| {name} | {max(values):.0f} | {', '.join(f'{v:.0f}' for v in values)} |")


if __name__ == "__main__":
    main()
