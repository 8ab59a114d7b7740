"""Trajectories for the action-conditioned world model: episodes, windows, DROID, statistics.

A trajectory is frames uint8 (T, H, W, 3), states (T, S) and actions: action t takes frame t to
frame t + 1, so there are T - 1 of them (an episode that stores T actions, the last one unused,
is cut to T - 1). Training reads windows of ``num_frames`` consecutive steps.

Two sources:
- the project's episode format (``vjepa2 worlds collect``, read by ``vjepa2.data.episodes``);
- the reference DROID layout: a CSV (space separated, first column) of trajectory folders, each
  holding ``trajectory.h5`` (observation/robot_state/cartesian_position (T, 6) and
  gripper_position (T,)), a metadata ``*.json`` naming the camera MP4s, and recordings/MP4/.
  States are 7-D: xyz, Euler xyz, gripper; the action from state t to t + 1 is the reference's:
  delta xyz, the Euler angles of R_{t+1} R_t^T, delta gripper. Reading HDF5 needs ``h5py``.

``NormStats`` holds the mean and std of actions and states, saved as JSON beside a model, so the
predictor sees inputs of unit scale whatever the robot's units.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from vjepa2.atomic import atomic_write_json
from vjepa2.data.video import declared_rate, decode_every
from vjepa2.errors import MissingPathError, UnknownKeyError, UserError


@dataclass
class Trajectory:
    """frames uint8 (T, H, W, 3); actions float32 (T - 1, A); states float32 (T, S); meta."""

    frames: np.ndarray
    actions: np.ndarray
    states: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        T = len(self.frames)
        if len(self.actions) == T:  # stored per frame: the last action leads nowhere
            self.actions = self.actions[:-1]
        if len(self.states) != T or len(self.actions) != T - 1:
            raise UserError(
                f"{self.meta.get('path', 'trajectory')}: {T} frames need {T} states and {T - 1} actions, "
                f"got {len(self.states)} states and {len(self.actions)} actions"
            )
        self.actions = np.asarray(self.actions, dtype=np.float32).reshape(T - 1, -1)
        self.states = np.asarray(self.states, dtype=np.float32).reshape(T, -1)


# -- normalization statistics -----------------------------------------------------------------
@dataclass
class NormStats:
    """Per-dimension mean and std of actions (A,) and states (S,), as lists (JSON friendly)."""

    action_mean: list[float]
    action_std: list[float]
    state_mean: list[float]
    state_std: list[float]

    @classmethod
    def compute(cls, actions: list[np.ndarray], states: list[np.ndarray], min_std: float = 1e-6) -> NormStats:
        """From per-trajectory arrays (T_i, A) and (T_i, S); constant dims get std 1."""
        a = np.concatenate([np.asarray(x, dtype=np.float64).reshape(len(x), -1) for x in actions])
        s = np.concatenate([np.asarray(x, dtype=np.float64).reshape(len(x), -1) for x in states])

        def spread(x):
            std = x.std(0)
            return np.where(std < min_std, 1.0, std).tolist()

        return cls(a.mean(0).tolist(), spread(a), s.mean(0).tolist(), spread(s))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "stats") -> NormStats:
        try:
            stats = cls(**{k: [float(v) for v in data[k]] for k in cls.__dataclass_fields__})
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{where}: not normalization statistics ({type(err).__name__}: {err})") from None
        if len(stats.action_mean) != len(stats.action_std) or len(stats.state_mean) != len(stats.state_std):
            raise UserError(f"{where}: mean and std lengths differ")
        return stats

    def save(self, path: str | Path) -> None:
        atomic_write_json(Path(path), self.to_dict(), indent=2)

    @classmethod
    def load(cls, path: str | Path) -> NormStats:
        path = Path(path)
        if not path.is_file():
            raise MissingPathError(f"{path}: normalization statistics not found")
        return cls.from_dict(json.loads(path.read_text()), str(path))

    def _apply(self, x: torch.Tensor, mean: list[float], std: list[float], what: str) -> torch.Tensor:
        if x.shape[-1] != len(mean):
            raise UserError(f"{what} have {x.shape[-1]} dims, the statistics {len(mean)}")
        mean_t = torch.tensor(mean, dtype=x.dtype, device=x.device)
        std_t = torch.tensor(std, dtype=x.dtype, device=x.device)
        return (x - mean_t) / std_t

    def normalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """(..., A) in environment units -> zero mean, unit std."""
        return self._apply(actions, self.action_mean, self.action_std, "actions")

    def normalize_states(self, states: torch.Tensor) -> torch.Tensor:
        """(..., S) in environment units -> zero mean, unit std."""
        return self._apply(states, self.state_mean, self.state_std, "states")


# -- windows ----------------------------------------------------------------------------------
def window_index(lengths: list[int], num_frames: int, stride: int = 1) -> np.ndarray:
    """Every window of ``num_frames`` consecutive frames: (W, 2) int64 rows (trajectory, start).

    Trajectories shorter than ``num_frames`` give no window.
    """
    rows = [
        (i, start) for i, length in enumerate(lengths) for start in range(0, length - num_frames + 1, stride)
    ]
    if not rows:
        raise UserError(f"no trajectory has {num_frames} frames (lengths: {sorted(set(lengths))[:10]})")
    return np.asarray(rows, dtype=np.int64)


class WindowData:
    """All trajectories laid end to end: per-frame states and actions (the action of a
    trajectory's last frame is a zero pad), normalized; windows of ``num_frames`` index into them."""

    def __init__(self, trajectories: list[Trajectory], stats: NormStats, num_frames: int):
        self.num_frames = num_frames
        self.lengths = [len(t.frames) for t in trajectories]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        padded = [np.concatenate([t.actions, np.zeros_like(t.actions[:1])]) for t in trajectories]
        self.actions = stats.normalize_actions(torch.from_numpy(np.concatenate(padded)))
        self.states = stats.normalize_states(
            torch.from_numpy(np.concatenate([t.states for t in trajectories]))
        )

    def windows(self, ids: list[int]) -> np.ndarray:
        """(W, 2) rows (trajectory, start) of every window of the trajectories ``ids``."""
        rows = window_index([self.lengths[i] for i in ids], self.num_frames)
        rows[:, 0] = np.asarray(ids)[rows[:, 0]]
        return rows

    def batch(self, windows: np.ndarray, latents_of) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """latents (B, T, K, D), actions (B, T-1, A), states (B, T, S) of ``windows`` (B, 2)."""
        starts = torch.from_numpy(self.offsets[windows[:, 0]] + windows[:, 1])
        idx = starts[:, None] + torch.arange(self.num_frames)  # (B, T) frame indices
        return latents_of(idx), self.actions[idx[:, :-1]], self.states[idx]


def split_trajectories(num: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train ids, validation ids): a seeded shuffle, the last ceil(fraction * num) held out."""
    order = np.random.default_rng(seed).permutation(num).tolist()
    n_val = min(num - 1, math.ceil(val_fraction * num)) if val_fraction > 0 else 0
    return sorted(order[: num - n_val]), sorted(order[num - n_val :])


# -- the project's episode format ---------------------------------------------------------------
def read_episodes(source: str | Path) -> list[Trajectory]:
    """Every episode listed by an index (``index.csv`` or a folder holding one), as written by
    ``vjepa2 worlds collect``; meta gains the episode's "path"."""
    from vjepa2.data import episodes

    trajectories = []
    for folder in episodes.read_index(source):
        frames, actions, states, meta = episodes.read_episode(folder)
        trajectories.append(Trajectory(frames, actions, states, {**meta, "path": str(folder)}))
    return trajectories


# -- the DROID layout -------------------------------------------------------------------------
def euler_xyz_to_matrix(angles: np.ndarray) -> np.ndarray:
    """Extrinsic x-y-z Euler angles (..., 3) radians -> rotation matrices (..., 3, 3) = Rz Ry Rx."""
    a, b, c = np.moveaxis(np.asarray(angles, dtype=np.float64), -1, 0)
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    rows = [
        [cc * cb, cc * sb * sa - sc * ca, cc * sb * ca + sc * sa],
        [sc * cb, sc * sb * sa + cc * ca, sc * sb * ca - cc * sa],
        [-sb, cb * sa, cb * ca],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def matrix_to_euler_xyz(matrices: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> extrinsic x-y-z Euler angles (..., 3), pitch in [-pi/2, pi/2]."""
    m = np.asarray(matrices, dtype=np.float64)
    pitch = np.arcsin(np.clip(-m[..., 2, 0], -1.0, 1.0))
    roll = np.arctan2(m[..., 2, 1], m[..., 2, 2])
    yaw = np.arctan2(m[..., 1, 0], m[..., 0, 0])
    return np.stack([roll, pitch, yaw], axis=-1)


def poses_to_actions(states: np.ndarray) -> np.ndarray:
    """7-D states (T, 7) (xyz, Euler xyz, gripper) -> actions (T - 1, 7), as the reference computes:
    delta xyz, Euler angles of R_{t+1} R_t^T, delta gripper."""
    states = np.asarray(states, dtype=np.float64)
    rot = euler_xyz_to_matrix(states[:, 3:6])
    delta_rot = rot[1:] @ np.swapaxes(rot[:-1], -1, -2)
    return np.concatenate(
        [np.diff(states[:, :3], axis=0), matrix_to_euler_xyz(delta_rot), np.diff(states[:, 6:7], axis=0)],
        axis=1,
    ).astype(np.float32)


def read_droid_csv(path: str | Path) -> list[Path]:
    """Trajectory folders listed in a DROID CSV (first space-separated column of each line)."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"{path}: DROID trajectory list not found")
    folders = [Path(line.split()[0]) for line in path.read_text().splitlines() if line.strip()]
    if not folders:
        raise UserError(f"{path}: the DROID trajectory list is empty")
    return [f if f.is_absolute() else path.parent / f for f in folders]


def _droid_metadata(folder: Path) -> dict:
    for file in sorted(folder.glob("*.json")):
        try:
            return json.loads(file.read_text())
        except json.JSONDecodeError as err:
            raise UserError(f"{file}: invalid JSON metadata ({err})") from None
    raise MissingPathError(f"{folder}: no metadata *.json in this DROID trajectory folder")


def _droid_states(h5_path: Path) -> np.ndarray:
    try:
        import h5py
    except ImportError:
        raise ImportError(f"reading {h5_path} needs h5py, which is not installed: pip install h5py") from None
    if not h5_path.is_file():
        raise MissingPathError(f"{h5_path}: missing trajectory.h5")
    with h5py.File(h5_path, "r") as h5:
        try:
            robot = h5["observation"]["robot_state"]
            cartesian = np.asarray(robot["cartesian_position"], dtype=np.float64)
            gripper = np.asarray(robot["gripper_position"], dtype=np.float64).reshape(-1, 1)
        except KeyError as err:
            raise UserError(f"{h5_path}: no observation/robot_state/{err.args[0]}") from None
    return np.concatenate([cartesian, gripper], axis=1)  # (T, 7)


def read_droid_trajectory(
    folder: str | Path, camera: str = "left_mp4_path", fps: float = 4.0, size: int | None = 256
) -> Trajectory:
    """One DROID trajectory sampled at ``fps`` (frame step ceil(video fps / fps), as the reference).

    camera: the metadata key of the MP4 to read; size: frames are resized (squashed) to a square
    of this side while decoding (None keeps the recording's size). States are read at the same
    frames; actions are computed from consecutive sampled states.
    """
    folder = Path(folder)
    meta = _droid_metadata(folder)
    if camera not in meta:
        raise UnknownKeyError(f"{folder}: metadata has no camera {camera!r}; keys: {sorted(meta)[:10]}")
    video = folder / "recordings" / "MP4" / str(meta[camera]).split("recordings/MP4/")[-1]
    if not video.is_file():
        raise MissingPathError(f"{video}: the recording named by {camera!r} is missing")
    states = _droid_states(folder / "trajectory.h5")
    video_fps = declared_rate(video) or fps
    step = max(1, math.ceil(video_fps / fps))
    frames, count = decode_every(video, step, size)
    if len(states) < count:
        raise UserError(f"{folder}: {len(states)} robot states for {count} video frames")
    states = states[::step][: len(frames)]
    actions = poses_to_actions(states)
    return Trajectory(
        frames, actions, states.astype(np.float32), {"path": str(folder), "fps": video_fps / step}
    )


def read_droid(csv_path: str | Path, **kw) -> list[Trajectory]:
    """Every trajectory of a DROID CSV (see ``read_droid_trajectory`` for the options)."""
    return [read_droid_trajectory(folder, **kw) for folder in read_droid_csv(csv_path)]


def read_trajectories(sources: list[str], format: str = "episodes", **droid) -> list[Trajectory]:
    """Trajectories of every source, concatenated: episode indexes/folders (``format="episodes"``)
    or DROID CSVs (``format="droid"``, keyword options of ``read_droid_trajectory``)."""
    if not sources:
        raise UserError("no trajectory source given (episode folders/indexes or DROID CSVs)")
    if format not in ("episodes", "droid"):
        raise UserError(f"unknown trajectory format {format!r}; expected 'episodes' or 'droid'")
    trajectories = []
    for source in sources:
        trajectories += read_episodes(source) if format == "episodes" else read_droid(source, **droid)
    return trajectories
