"""How fast the synthetic world makes probe videos (target: 1,000 clips of 16 x 64 px in < 60 s).

    python benchmarks/worlds_speed.py [--clips 1000] [--workers 2] [--size 64] [--num-frames 16]

Runs ``vjepa2 worlds make-videos`` end to end (simulation, rendering, H.264 files, CSV indexes) in a
process pool, then times each stage in this process on a few clips, and prints one table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from vjepa2.data.video import write_video
from vjepa2.worlds.scenes import MakeVideosConfig, run_make_videos, sample_scene, scene_config


def time_stages(cfg: MakeVideosConfig, folder: Path, clips: int) -> dict[str, float]:
    """Milliseconds per clip of each stage, single process."""
    scene_cfg = scene_config(cfg)
    start = time.perf_counter()
    scenes = [sample_scene(cfg.seed + 1, i, scene_cfg) for i in range(clips)]
    sampled = time.perf_counter()
    videos = [scene.render(cfg.size) for scene in scenes]
    rendered = time.perf_counter()
    for i, frames in enumerate(videos):
        write_video(folder / f"stage_{i}.mp4", frames, fps=cfg.fps)
    written = time.perf_counter()
    return {
        "simulate + search": (sampled - start) / clips * 1e3,
        "render": (rendered - sampled) / clips * 1e3,
        "encode mp4": (written - rendered) / clips * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--num-frames", "--frames", dest="frames", type=int, default=16)
    parser.add_argument("--stage-clips", type=int, default=50, help="clips for the per-stage timing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MakeVideosConfig(
            out=str(Path(tmp) / "videos"),
            num_videos=args.clips,
            num_frames=args.frames,
            size=args.size,
            workers=args.workers,
        )
        start = time.perf_counter()
        run_make_videos(cfg)
        seconds = time.perf_counter() - start
        files = sorted((Path(tmp) / "videos" / "videos").glob("*.mp4"))
        megabytes = sum(f.stat().st_size for f in files) / 2**20
        stages = time_stages(cfg, Path(tmp), args.stage_clips)
    print()
    print(f"| run ({args.frames} frames x {args.size} px) | clips | seconds | clips/s |")
    print("|---|---:|---:|---:|")
    print(
        f"| make-videos, {args.workers} workers | {len(files)} | {seconds:.1f} | {len(files) / seconds:.1f} |"
    )
    print()
    print(f"| stage (1 process, {args.stage_clips} clips) | ms / clip |")
    print("|---|---:|")
    for name, ms in stages.items():
        print(f"| {name} | {ms:.1f} |")
    print(f"| total | {np.sum(list(stages.values())):.1f} |")
    print()
    verdict = "meets" if seconds < 60 else "misses"
    print(f"{megabytes:.1f} MiB written; {seconds:.1f} s {verdict} the 60 s target for {args.clips} clips")


if __name__ == "__main__":
    main()
