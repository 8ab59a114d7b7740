"""Episodes as pretraining clips: the frames of trajectory folders written as plain videos.

``vjepa2 pretrain`` reads folders and indexes of videos, not episode folders (their frames may be a
``frames.npy`` beside ``data.npz`` and ``meta.json``). ``vjepa2 episodes to-clips runs/push-random
runs/push-expert --out runs/push-clips`` writes every episode listed by each root's ``index.csv``
as ``<out>/<root name>/<episode folder name>.mp4`` (H.264, 4:4:4 chroma, the episode's fps), so
the output folder is a ready ``pretrain`` source: one class sub-folder per root, labels unused by
pretraining. The actions and states are not copied: pretraining sees frames only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from vjepa2.config import opt
from vjepa2.data.episodes import read_frames, read_index, read_meta
from vjepa2.data.video import write_video
from vjepa2.errors import UserError
from vjepa2.safe_names import inside


@dataclass
class EpisodeClipsConfig:
    sources: list[str] = opt(
        [], help="episode roots (folders with index.csv) or index files", positional=True
    )
    out: str = opt("runs/clips", help="output folder: <out>/<root name>/<episode>.mp4")
    fps: float = opt(0.0, help="frame rate written to the clips; 0: each episode's own (meta.json)")


def clip_folders(sources: list[str | Path]) -> list[str]:
    """One output sub-folder name per source (the root's folder name), unique and in order.

    Two roots with the same name (``a/push`` and ``b/push``) get ``push`` and ``push-1``: their
    clips must not overwrite each other."""
    names: list[str] = []
    for source in sources:
        path = Path(source)
        base = (
            path.parent if path.is_file() else path
        ).resolve().name or "episodes"  # an index file: its folder
        name, n = base, 0
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def export_clips(sources: list[str | Path], out: str | Path, fps: float = 0.0) -> list[Path]:
    """Write every episode of ``sources`` as ``out/<root>/<episode>.mp4``; returns the clip paths.

    ``fps`` > 0 overrides the rate of meta.json (which sets how ``data.fps`` of pretraining
    steps through the frames). Bad episodes raise ``EpisodeError`` naming the file; a name that
    would not stay inside ``out`` raises ``UnsafeNameError``."""
    if not sources:
        raise UserError("episodes to-clips: give at least one episode root (a folder with index.csv)")
    if fps < 0:
        raise UserError(f"episodes to-clips: fps must be >= 0, got {fps}")
    out = Path(out)
    folders = [(name, read_index(source)) for name, source in zip(clip_folders(sources), sources)]
    written = []
    bar = tqdm(total=sum(len(episodes) for _, episodes in folders), desc="episodes -> clips")
    for name, episodes in folders:
        (out / name).mkdir(parents=True, exist_ok=True)
        for folder in episodes:
            rate = fps or float(read_meta(folder)["fps"])
            # Episode folders come from an index: their names are checked like any from elsewhere.
            path = inside(out, f"{name}/{folder.name}.mp4", what=f"clip of episode {folder}")
            write_video(path, read_frames(folder), fps=rate)  # atomic: a stopped run leaves no half clip
            written.append(path)
            bar.update(1)
    bar.close()
    return written


def run_episode_clips(cfg: EpisodeClipsConfig) -> int:
    written = export_clips(cfg.sources, cfg.out, cfg.fps)
    print(f"wrote {len(written)} clips to {cfg.out} (a `vjepa2 pretrain` source)")
    return 0
