"""Episodes on disk: the trajectory format of world-model data (ours and users' own robots).

One folder per episode, and an index listing the folders (see docs/trajectory-format.md)::

    root/
      index.csv            one episode folder per line, relative to root; optional 2nd column: T
      episode_000000/
        frames.mp4         T RGB frames (or frames.npy: uint8 (T, H, W, 3), lossless)
        data.npz           actions (T, A) float32, states (T, S) float32, optional extra (T, ...) arrays
        meta.json          {"format": "vjepa2-episode", "version": 1, "fps": 10, "num_frames": T, ...}

Row t of ``actions`` is the action taken at frame t, which leads to frame t + 1; the last row has no
next frame and is ignored by training (collectors write zeros there). Row t of ``states`` is the
proprioceptive state seen with frame t. Reading checks everything and raises ``EpisodeError``
naming the file and the problem. npz files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vjepa2.atomic import atomic_open, atomic_write_json, atomic_write_text
from vjepa2.data.video import VideoReadError, decode_frames, probe_video, write_video
from vjepa2.errors import UserError

FORMAT = "vjepa2-episode"
VERSION = 1
INDEX = "index.csv"
VIDEO, FRAMES_NPY, DATA, META = "frames.mp4", "frames.npy", "data.npz", "meta.json"


class EpisodeError(UserError):
    """An episode that does not follow the format; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


@dataclass
class Episode:
    """frames uint8 (T, H, W, 3) or None (not loaded); actions (T, A) and states (T, S) float32;
    meta (dict from meta.json); extras: other per-step arrays (T, ...) such as ``sim_states``.

    Unpacks as ``frames, actions, states, meta = read_episode(folder)``.
    """

    frames: np.ndarray | None
    actions: np.ndarray
    states: np.ndarray
    meta: dict
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __iter__(self):
        return iter((self.frames, self.actions, self.states, self.meta))

    def __len__(self) -> int:
        return len(self.actions)


def _check_steps(path: Path, name: str, array: np.ndarray, length: int | None) -> np.ndarray:
    """A numeric, finite array with T >= 1 rows (T = ``length`` when given)."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf" or array.ndim < 1 or len(array) == 0:
        raise EpisodeError(
            path, f"{name} must be a numeric array with one row per frame, got {array.dtype} {array.shape}"
        )
    if length is not None and len(array) != length:
        raise EpisodeError(path, f"{name} has {len(array)} rows but the episode has {length} frames")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise EpisodeError(path, f"{name} contains NaN or infinite values")
    return array


def _check_table(path: Path, name: str, array: np.ndarray, length: int | None) -> np.ndarray:
    array = _check_steps(path, name, array, length)
    if array.ndim != 2:
        raise EpisodeError(path, f"{name} must be 2-D (T, dim), got shape {array.shape}")
    return array.astype(np.float32)


def _check_frames(path: Path, frames: np.ndarray, length: int | None) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise EpisodeError(path, f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if length is not None and len(frames) != length:
        raise EpisodeError(path, f"{len(frames)} frames but actions and states have {length} rows")
    return frames


def write_episode(
    folder: str | Path,
    frames: np.ndarray,
    actions: np.ndarray,
    states: np.ndarray,
    fps: float,
    meta: dict | None = None,
    extras: dict[str, np.ndarray] | None = None,
    lossless: bool = False,
) -> Path:
    """Write one episode folder: frames uint8 (T, H, W, 3), actions (T, A), states (T, S), at ``fps``.

    ``meta``: JSON-serialisable facts (env, seed, success, action_names, ...); ``extras``: other
    per-step arrays (T, ...). ``lossless`` stores frames.npy instead of an H.264 frames.mp4.
    """
    folder = Path(folder)
    frames = _check_frames(folder, frames, None)
    length = len(frames)
    arrays = {
        "actions": _check_table(folder / DATA, "actions", actions, length),
        "states": _check_table(folder / DATA, "states", states, length),
    }
    for name, array in (extras or {}).items():
        if name in arrays:
            raise EpisodeError(folder / DATA, f"extra array name {name!r} is reserved")
        arrays[name] = _check_steps(folder / DATA, name, array, length)
    folder.mkdir(parents=True, exist_ok=True)
    if lossless:
        with atomic_open(folder / FRAMES_NPY) as fh:
            np.save(fh, frames)
    else:
        write_video(folder / VIDEO, frames, fps=fps)
    with atomic_open(folder / DATA) as fh:
        np.savez_compressed(fh, **arrays)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "fps": float(fps),
        "num_frames": length,
        "frame_size": list(frames.shape[1:3]),
        "action_dim": arrays["actions"].shape[1],
        "state_dim": arrays["states"].shape[1],
    }
    atomic_write_json(folder / META, {**header, **(meta or {})})
    return folder


def read_meta(folder: str | Path) -> dict:
    path = Path(folder) / META
    if not path.is_file():
        raise EpisodeError(path, "missing (every episode folder needs a meta.json)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise EpisodeError(path, f"not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise EpisodeError(path, "must hold a JSON object")
    if meta.get("format", FORMAT) != FORMAT or meta.get("version", VERSION) > VERSION:
        raise EpisodeError(
            path, f"format {meta.get('format')!r} v{meta.get('version')} is not {FORMAT} v<={VERSION}"
        )
    fps = meta.get("fps")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or fps <= 0:
        raise EpisodeError(path, f"'fps' must be a positive number, got {fps!r}")
    return meta


def read_arrays(folder: str | Path) -> dict[str, np.ndarray]:
    """Every array of data.npz (no pickles), with actions and states checked."""
    path = Path(folder) / DATA
    if not path.is_file():
        raise EpisodeError(path, "missing (every episode folder needs a data.npz)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError) as err:
        raise EpisodeError(path, f"not a readable npz file ({err})") from None
    for name in ("actions", "states"):
        if name not in arrays:
            raise EpisodeError(path, f"has no {name!r} array (found {sorted(arrays)})")
    length = len(arrays["actions"]) if arrays["actions"].ndim else None
    for name in list(arrays):
        check = _check_table if name in ("actions", "states") else _check_steps
        arrays[name] = check(path, name, arrays[name], length)
    return arrays


def frames_file(folder: Path) -> Path:
    found = [folder / name for name in (VIDEO, FRAMES_NPY) if (folder / name).is_file()]
    if len(found) != 1:
        problem = "has no frames.mp4 or frames.npy" if not found else "has both frames.mp4 and frames.npy"
        raise EpisodeError(folder, problem)
    return found[0]


def read_frames(folder: str | Path) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of an episode folder."""
    path = frames_file(Path(folder))
    if path.suffix == ".npy":
        try:
            return _check_frames(path, np.load(path, allow_pickle=False), None)
        except (ValueError, OSError) as err:
            raise EpisodeError(path, f"not a readable .npy array ({err})") from None
    try:
        return decode_frames(path)[0]
    except VideoReadError as err:
        raise EpisodeError(path, err.problem) from None


def count_frames(folder: Path) -> int:
    """Frames in an episode without decoding them."""
    path = frames_file(folder)
    if path.suffix == ".npy":
        return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
    try:
        return probe_video(path).num_frames
    except VideoReadError as err:
        raise EpisodeError(path, err.problem) from None


def read_episode(folder: str | Path, load_frames: bool = True) -> Episode:
    """Read and check one episode folder (``load_frames=False``: frames counted, not decoded)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EpisodeError(folder, "episode folder not found")
    meta = read_meta(folder)
    arrays = read_arrays(folder)
    actions, states = arrays.pop("actions"), arrays.pop("states")
    frames = read_frames(folder) if load_frames else None
    num_frames = len(frames) if frames is not None else count_frames(folder)
    if num_frames != len(actions):
        raise EpisodeError(frames_file(folder), f"{num_frames} frames but data.npz has {len(actions)} rows")
    if meta.get("num_frames", num_frames) != num_frames:
        raise EpisodeError(
            folder / META, f"num_frames is {meta['num_frames']} but the episode has {num_frames}"
        )
    return Episode(frames, actions, states, meta, arrays)


def write_index(root: str | Path, folders: list[str | Path], lengths: list[int] | None = None) -> Path:
    """index.csv in ``root``: one folder per line (relative to root when inside it), then T."""
    root = Path(root).resolve()
    lines = []
    for i, folder in enumerate(folders):
        folder = Path(folder).resolve()
        name = folder.relative_to(root) if folder.is_relative_to(root) else folder
        lines.append(name.as_posix() + (f" {lengths[i]}" if lengths is not None else "") + "\n")
    path = root / INDEX
    atomic_write_text(path, "".join(lines))
    return path


def read_index(path: str | Path) -> list[Path]:
    """Episode folders listed by an index file (or by ``index.csv`` in a folder), as paths.

    Relative entries are relative to the index file's folder; blank lines and '#' lines are skipped.
    """
    path = Path(path)
    if path.is_dir():
        path = path / INDEX
    if not path.is_file():
        raise EpisodeError(path, "index file not found")
    folders = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) > 2 or (len(words) == 2 and not words[1].isdigit()):
            raise EpisodeError(path, f"line {number}: expected 'folder [num_frames]', got {line!r}")
        folder = Path(words[0])
        folders.append(folder if folder.is_absolute() else path.parent / folder)
    if not folders:
        raise EpisodeError(path, "lists no episodes")
    return folders
