"""``vjepa2 episodes to-lerobot`` / ``from-lerobot``: our episode format to LeRobot and back.

    vjepa2 episodes to-lerobot runs/reach-random --out runs/reach-lerobot            # v3.0, AV1
    vjepa2 episodes from-lerobot runs/reach-lerobot --out runs/reach-again           # or a hub id

to-lerobot writes every episode of the roots (their ``index.csv``) as one dataset: the frames as the
camera ``observation.image``, ``states`` as ``observation.state``, ``actions`` as ``action``, the
extra arrays (``sim_states``, ``rewards``, ``success``) as features of their own names, and each
episode's meta.json facts in its metadata row (``vjepa2_meta``), so from-lerobot gives the same
episodes back (bit-exact with ``codec: lossless`` and ``lossless: true``). from-lerobot reads any
LeRobot dataset: one camera, the given actions, every other numeric feature as an extra array.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vjepa2.config import opt
from vjepa2.data import episodes as ours
from vjepa2.data.lerobot import format as fmt
from vjepa2.data.lerobot.hub import resolve
from vjepa2.data.lerobot.read import check_camera, close_videos, read_camera, read_columns
from vjepa2.data.lerobot.trajectories import ACTION, STATE
from vjepa2.data.lerobot.write import CODECS, LeRobotEpisode, write_dataset
from vjepa2.errors import UserError
from vjepa2.safe_names import inside

CAMERA = "observation.image"
HEADER = ("format", "version", "fps", "num_frames", "frame_size", "action_dim", "state_dim")


@dataclass
class ToLeRobotConfig:
    sources: list[str] = opt(
        [], help="episode roots (folders with index.csv) or index files", positional=True
    )
    out: str = opt("runs/lerobot", help="output folder: the LeRobot dataset")
    version: str = opt("v3.0", help="LeRobot codebase version written: v3.0 or v2.1")
    codec: str = opt("av1", help="video codec: av1 (LeRobot's default), h264 or lossless (exact frames)")
    camera: str = opt(CAMERA, help="the camera key the frames are written under")
    task: str = opt("", help="the task text of every episode (empty: the env name of meta.json)")


@dataclass
class FromLeRobotConfig:
    source: str = opt("", help="LeRobot dataset: a folder or a hub id owner/name[@revision]", positional=True)
    out: str = opt("runs/episodes", help="output folder: episode folders and index.csv")
    camera: str = opt("", help="the camera key to read (empty: the first)")
    fps: float = opt(0.0, help="frames per second kept (0: every frame)", min=0)
    lossless: bool = opt(False, help="store frames.npy (exact) instead of frames.mp4")


def _lerobot_episode(folder: Path, camera: str, task: str) -> tuple[LeRobotEpisode, float]:
    episode = ours.read_episode(folder)
    meta = {k: v for k, v in episode.meta.items() if k not in HEADER}
    text = task or str(meta.get("env", ""))
    return (
        LeRobotEpisode({camera: episode.frames}, episode.states, episode.actions, text, episode.extras, meta),
        float(episode.meta["fps"]),
    )


def to_lerobot(
    sources: list[str],
    out: str | Path,
    version: str = "v3.0",
    codec: str = "av1",
    camera: str = CAMERA,
    task: str = "",
) -> Path:
    """Every episode of ``sources`` as one LeRobot dataset in ``out``."""
    if codec not in CODECS:
        raise UserError(f"episodes to-lerobot: codec must be one of {sorted(CODECS)}, got {codec!r}")
    if version not in fmt.VERSIONS:
        raise UserError(f"episodes to-lerobot: version must be one of {list(fmt.VERSIONS)}, got {version!r}")
    if not sources:
        raise UserError("episodes to-lerobot: give at least one episode root (a folder with index.csv)")
    folders = [folder for source in sources for folder in ours.read_index(source)]
    episodes, rates = [], set()
    for folder in tqdm(folders, desc="episodes -> lerobot"):
        episode, fps = _lerobot_episode(folder, camera, task)
        episodes.append(episode)
        rates.add(fps)
    if len(rates) != 1:
        raise UserError(f"episodes to-lerobot: the episodes have different frame rates {sorted(rates)}")
    first = episodes[0].meta
    names = {STATE: first.get("state_names"), ACTION: first.get("action_names")}
    return write_dataset(out, episodes, rates.pop(), version, codec, robot_type=first.get("env"), names=names)


def _extra_keys(layout: fmt.Layout) -> list[str]:
    skip = {STATE, ACTION, *fmt.BOOKKEEPING}
    return [
        k
        for k, f in layout.features.items()
        if k not in skip and f.get("dtype") not in ("video", "image", "string")
    ]


def from_lerobot(
    source: str, out: str | Path, camera: str = "", fps: float = 0.0, lossless: bool = False
) -> list[Path]:
    """Every episode of a LeRobot dataset as our episode folders ``out/episode_NNNNNN``."""
    from vjepa2.data.lerobot.trajectories import frame_step

    layout = fmt.open_layout(resolve(source))
    camera = check_camera(layout, camera)
    step = frame_step(layout, fps)
    extras = _extra_keys(layout)
    out = Path(out)
    folders = []
    for episode in tqdm(layout.episodes, desc="lerobot -> episodes"):
        columns = read_columns(layout, episode, [STATE, ACTION, "timestamp", *extras])
        kept = np.arange(0, episode.length, step)
        frames = read_camera(layout, episode, camera, columns["timestamp"][kept])
        meta = {**fmt.episode_meta(episode), "lerobot_source": str(source), "lerobot_episode": episode.index}
        if episode.tasks:
            meta.setdefault("task", episode.tasks[0])
        folder = inside(out, f"episode_{episode.index:06d}", what=f"episode {episode.index}")
        arrays = {k: _squeeze(columns[k][kept]) for k in extras}
        ours.write_episode(
            folder,
            frames,
            columns[ACTION][kept].reshape(len(kept), -1),
            columns[STATE][kept].reshape(len(kept), -1),
            layout.fps / step,
            meta,
            arrays,
            lossless,
        )
        folders.append(folder)
    close_videos()
    ours.write_index(out, folders, [len(np.arange(0, e.length, step)) for e in layout.episodes])
    return folders


def _squeeze(values: np.ndarray) -> np.ndarray:
    """LeRobot stores (T,) features as shape [1]: a (T, 1) read back is (T,)."""
    return values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values


def run_to_lerobot(cfg: ToLeRobotConfig) -> int:
    out = to_lerobot(cfg.sources, cfg.out, cfg.version, cfg.codec, cfg.camera, cfg.task)
    print(f"wrote a LeRobot {cfg.version} dataset to {out} (train on it: data.source=[lerobot:{out}])")
    return 0


def run_from_lerobot(cfg: FromLeRobotConfig) -> int:
    if not cfg.source:
        raise UserError("episodes from-lerobot: give a LeRobot dataset folder or hub id")
    folders = from_lerobot(cfg.source, cfg.out, cfg.camera, cfg.fps, cfg.lossless)
    print(f"wrote {len(folders)} episodes to {cfg.out}")
    return 0
