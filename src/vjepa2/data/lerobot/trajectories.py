"""LeRobot episodes as world-model trajectories: one camera, states, actions, at the model's rate.

``read_lerobot(source, camera, fps, action)`` reads every episode of a dataset (folder or hub id):
frames of ``camera`` (the first video key by default), ``observation.state`` and the action:
``given`` (the ``action`` column at the kept frames: absolute targets such as joint positions),
``sum`` (the column summed over each kept step: delta actions) or ``ee-delta`` (from 7-D
end-effector states xyz, Euler xyz, gripper, as the reference computes DROID's:
``poses_to_actions``). Frames
are kept every ceil(dataset fps / ``fps``) (4 fps: the paper's rate; 0 keeps every frame), as
the DROID reader does. The dataset's stats (meta/stats.json or the pooled per-episode stats)
become the ``NormStats`` when the actions are the column's own rows (``given``; ``sum`` at every
frame); otherwise (None) training computes them from its split.
"""

from __future__ import annotations

import math

import numpy as np
from tqdm import tqdm

from vjepa2.data.lerobot.format import Layout, LeRobotError, dataset_stats, episode_meta, open_layout
from vjepa2.data.lerobot.hub import resolve
from vjepa2.data.lerobot.read import check_camera, close_videos, read_camera, read_columns
from vjepa2.data.trajectories import NormStats, Trajectory, poses_to_actions
from vjepa2.errors import UserError

STATE, ACTION = "observation.state", "action"
ACTIONS = ("given", "sum", "ee-delta")


def feature_width(layout: Layout, key: str) -> int:
    """The width of a 1-D feature from info.json (its shape), or a LeRobotError naming it."""
    feature = layout.features.get(key)
    if feature is None:
        raise LeRobotError(
            layout.root / "meta/info.json", f"no feature {key!r} (features: {sorted(layout.features)[:12]})"
        )
    shape = feature.get("shape")
    if not isinstance(shape, (list, tuple)) or len(shape) != 1 or not isinstance(shape[0], int):
        raise LeRobotError(
            layout.root / "meta/info.json", f"feature {key!r} must be 1-D, its shape is {shape!r}"
        )
    return int(shape[0])


def frame_step(layout: Layout, fps: float) -> int:
    """Every how many dataset frames one is kept to see ``fps`` (0: all)."""
    return 1 if fps <= 0 else max(1, math.ceil(layout.fps / fps - 1e-9))


def norm_stats(layout: Layout, min_std: float = 1e-6) -> NormStats | None:
    """NormStats of the dataset's ``action`` and ``observation.state`` stats, None without them."""
    stats = dataset_stats(layout)
    try:
        a, s = stats[ACTION], stats[STATE]
        values = [a["mean"], a["std"], s["mean"], s["std"]]
    except KeyError:
        return None
    values = [np.asarray(v, dtype=np.float64).reshape(-1) for v in values]
    values[1] = np.where(values[1] < min_std, 1.0, values[1])
    values[3] = np.where(values[3] < min_std, 1.0, values[3])
    if len(values[0]) != feature_width(layout, ACTION) or len(values[2]) != feature_width(layout, STATE):
        raise LeRobotError(
            layout.root / "meta/stats.json", "stats of action/observation.state have the wrong width"
        )
    return NormStats(*[v.tolist() for v in values])


def read_episode(layout: Layout, i: int, camera: str, step: int, action: str, size: int | None) -> Trajectory:
    """Episode number ``i`` (position in ``layout.episodes``) as a Trajectory."""
    episode = layout.episodes[i]
    keys = [STATE, "timestamp"] + ([ACTION] if action != "ee-delta" else [])
    columns = read_columns(layout, episode, keys)
    kept = np.arange(0, episode.length, step)
    states = columns[STATE][kept].reshape(len(kept), -1)
    if action == "given":
        actions = columns[ACTION][kept].reshape(len(kept), -1)
    elif action == "sum":  # delta actions: the kept step's move is the sum of the moves it spans
        actions = np.add.reduceat(columns[ACTION].reshape(episode.length, -1), kept, axis=0)
    else:
        if states.shape[1] != 7:
            raise LeRobotError(
                f"{episode.data} episode {episode.index}",
                f"action 'ee-delta' needs 7-D observation.state (xyz, Euler xyz, gripper), got {states.shape[1]}",
            )
        actions = poses_to_actions(states)
    frames = read_camera(layout, episode, camera, columns["timestamp"][kept], size)
    meta = episode_meta(episode)
    meta.update(path=f"{layout.root} episode {episode.index}", fps=layout.fps / step, tasks=episode.tasks)
    return Trajectory(frames, actions, states.astype(np.float32), meta)


def read_lerobot(
    source: str, camera: str = "", fps: float = 4.0, action: str = "given", size: int | None = None
) -> tuple[list[Trajectory], NormStats | None]:
    """Every episode of a LeRobot dataset (v2.1 or v3.0, folder or hub id) as trajectories, and the
    dataset's normalisation statistics (None when it has none or ``action`` is ``ee-delta``)."""
    if action not in ACTIONS:
        raise UserError(f"lerobot: action must be one of {list(ACTIONS)}, got {action!r}")
    layout = open_layout(resolve(source))
    camera = check_camera(layout, camera)
    feature_width(layout, STATE)
    if action != "ee-delta":
        feature_width(layout, ACTION)
    step = frame_step(layout, fps)
    bar = tqdm(range(len(layout.episodes)), desc=f"lerobot {layout.root.name}", leave=False)
    try:
        trajectories = [read_episode(layout, i, camera, step, action, size) for i in bar]
    finally:
        close_videos()
    # the dataset's stats describe its action column: not sums over several frames, nor deltas
    stats = norm_stats(layout) if action == "given" or (action == "sum" and step == 1) else None
    return trajectories, stats
