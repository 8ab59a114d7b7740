"""The LeRobot dataset layout, versions 2.1 and 3.0: ``meta/info.json``, the episode tables, stats.

Facts from huggingface/lerobot (src/lerobot/datasets/utils.py: the path templates and
DEFAULT_FEATURES; src/lerobot/datasets/v30/convert_dataset_v21_to_v30.py: what 3.0 changed)::

    meta/info.json      codebase_version, fps, features {key: {dtype, shape, names, info}},
                        data_path and video_path (str.format templates), chunks_size, totals
    v2.1: data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet    one file per episode
          videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4
          meta/episodes.jsonl {episode_index, tasks, length}; meta/tasks.jsonl {task_index, task};
          meta/episodes_stats.jsonl {episode_index, stats: {feature: {min, max, mean, std, count}}}
    v3.0: data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet      many episodes per file
          videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4   many per mp4
          meta/episodes/chunk-*/file-*.parquet: episode_index, tasks, length, data/chunk_index,
          data/file_index, dataset_from_index, dataset_to_index (rows of the data file... the
          global frame index), videos/{key}/chunk_index, file_index, from_timestamp, to_timestamp,
          stats/{feature}/{min,max,mean,std,count}; meta/tasks.parquet (task string -> task_index)
    both: meta/stats.json {feature: {min, max, mean, std, ...}} (v2.1 may lack it)

A frame's video time is ``from_timestamp + timestamp`` (0 in 2.1: one file per episode). The
episode ``chunk`` of 2.1 is ``episode_index // chunks_size``. Every name read from a file becomes
a path only through ``safe_names.inside``: a dataset cannot point outside its folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from vjepa2.errors import MissingPathError, UserError
from vjepa2.safe_names import UnsafeNameError, inside

INFO = "meta/info.json"
STATS = "meta/stats.json"
EPISODES_V21 = "meta/episodes.jsonl"
EPISODES_STATS_V21 = "meta/episodes_stats.jsonl"
TASKS_V21 = "meta/tasks.jsonl"
TASKS_V30 = "meta/tasks.parquet"
EPISODES_V30 = "meta/episodes"
VERSIONS = ("v2.1", "v3.0")
# lerobot/datasets/utils.py DEFAULT_FEATURES: the bookkeeping columns of every frame table
BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
STAT_NAMES = ("min", "max", "mean", "std", "count")


class LeRobotError(UserError):
    """A dataset that does not follow the format; the message names the file (and episode, field)."""

    def __init__(self, where: str | Path, problem: str):
        self.where, self.problem = str(where), problem
        super().__init__(f"{where}: {problem}")


@dataclass
class EpisodeRef:
    """Where one episode lives: ``data`` file and its rows [start, stop) (the whole file in 2.1),
    ``videos``: camera key -> (mp4 path, time of the episode's first frame in it, seconds)."""

    index: int
    length: int
    data: Path
    rows: tuple[int, int] | None
    videos: dict[str, tuple[Path, float]] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)  # feature -> {mean, std, count, ...} (arrays)
    extra: dict = field(default_factory=dict)  # other columns of its metadata row


@dataclass
class Layout:
    """One dataset on disk: its root, version, info.json, features and episodes (in index order)."""

    root: Path
    version: str
    info: dict
    episodes: list[EpisodeRef]

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    @property
    def features(self) -> dict:
        return self.info["features"]

    @property
    def video_keys(self) -> list[str]:
        """The camera keys, in info.json's order (the first is the default camera)."""
        return [k for k, f in self.features.items() if f.get("dtype") == "video"]

    def path(self, template: str, what: str, **values) -> Path:
        """``template`` (from info.json) filled in, as a path that stays inside the dataset."""
        try:
            name = template.format(**values)
        except (KeyError, IndexError, ValueError) as err:
            raise LeRobotError(
                self.root / INFO, f"{what} template {template!r} does not fit ({err})"
            ) from None
        try:
            return inside(self.root, name, what=what)
        except UnsafeNameError as err:
            raise LeRobotError(self.root / INFO, str(err)) from None


def _load_json(path: Path) -> object:
    if not path.is_file():
        raise MissingPathError(f"{path}: missing (every LeRobot dataset has one)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LeRobotError(path, f"not valid JSON ({err})") from None


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise MissingPathError(f"{path}: missing (a LeRobot v2.1 dataset lists its episodes there)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise LeRobotError(path, f"line {number}: not JSON ({err})") from None
        if not isinstance(row, dict):
            raise LeRobotError(path, f"line {number}: not a JSON object")
        rows.append(row)
    return rows


def read_info(root: Path) -> dict:
    """meta/info.json, checked: a known version, a positive fps, a dict of features."""
    path = root / INFO
    info = _load_json(path)
    if not isinstance(info, dict):
        raise LeRobotError(path, "must hold a JSON object")
    version = info.get("codebase_version")
    if version not in VERSIONS:
        raise LeRobotError(path, f"codebase_version {version!r} is not one of {list(VERSIONS)}")
    fps = info.get("fps")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not fps > 0:
        raise LeRobotError(path, f"'fps' must be a positive number, got {fps!r}")
    features = info.get("features")
    if not isinstance(features, dict) or not all(isinstance(f, dict) for f in features.values()):
        raise LeRobotError(path, "'features' must map each key to {dtype, shape, ...}")
    for key in ("data_path",) + (
        ("video_path",) if any(f.get("dtype") == "video" for f in features.values()) else ()
    ):
        if not isinstance(info.get(key), str):
            raise LeRobotError(path, f"{key!r} must be a path template")
    return info


def _int(value, where: Path, what: str) -> int:
    if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise LeRobotError(where, f"{what} must be a whole number >= 0, got {value!r}")
    return int(value)


def _stats_of(raw: dict, where: Path) -> dict:
    """{feature: {name: array}} from a JSON-like stats mapping (unknown entries kept as they are)."""
    if not isinstance(raw, dict):
        raise LeRobotError(where, "stats must map each feature to {mean, std, ...}")
    out = {}
    for feature, values in raw.items():
        if isinstance(values, dict):
            try:
                out[feature] = {
                    k: np.asarray(v, dtype=np.float64) for k, v in values.items() if k in STAT_NAMES
                }
            except (TypeError, ValueError) as err:
                raise LeRobotError(where, f"stats of {feature!r} are not numbers ({err})") from None
    return out


def _episodes_v21(root: Path, info: dict, layout: Layout) -> list[EpisodeRef]:
    path = root / EPISODES_V21
    stats_path = root / EPISODES_STATS_V21
    per_episode = {}
    if stats_path.is_file():
        for row in _jsonl(stats_path):
            index = _int(row.get("episode_index"), stats_path, "episode_index")
            per_episode[index] = _stats_of(row.get("stats", {}), stats_path)
    chunk_size = _int(info.get("chunks_size", 1000), root / INFO, "chunks_size") or 1000
    refs = []
    for row in _jsonl(path):
        index = _int(row.get("episode_index"), path, "episode_index")
        length = _int(row.get("length"), path, f"episode {index}: length")
        chunk = index // chunk_size
        data = layout.path(
            info["data_path"], f"episode {index} data", episode_chunk=chunk, episode_index=index
        )
        videos = {
            key: (
                layout.path(
                    info["video_path"],
                    f"episode {index} video",
                    episode_chunk=chunk,
                    video_key=key,
                    episode_index=index,
                ),
                0.0,
            )
            for key in layout.video_keys
        }
        extra = {k: v for k, v in row.items() if k not in ("episode_index", "length", "tasks")}
        refs.append(
            EpisodeRef(
                index,
                length,
                data,
                None,
                videos,
                list(row.get("tasks") or []),
                per_episode.get(index, {}),
                extra,
            )
        )
    return refs


def _episode_rows_v30(root: Path) -> list[tuple[Path, dict]]:
    folder = root / EPISODES_V30
    files = sorted(folder.glob("*/*.parquet"))
    if not files:
        raise MissingPathError(f"{folder}: no episode metadata parquet files (chunk-*/file-*.parquet)")
    rows = []
    for file in files:
        try:
            table = pq.read_table(file)
        except Exception as err:  # pyarrow raises several kinds on a damaged file
            raise LeRobotError(file, f"not a readable parquet file ({err})") from None
        rows += [(file, row) for row in table.to_pylist()]
    return rows


def _number(row: dict, where: str, key: str, kind=int):
    """A whole number >= 0 (kind int) or a finite float from a metadata row, or an error naming it."""
    value = row.get(key)
    if kind is int:
        return _int(value, where, key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value):
        raise LeRobotError(where, f"{key} must be a number, got {value!r}")
    return float(value)


def _episodes_v30(root: Path, info: dict, layout: Layout) -> list[EpisodeRef]:
    refs = []
    for file, row in _episode_rows_v30(root):
        index = _int(row.get("episode_index"), file, "episode_index")
        where = f"{file} episode {index}"

        def number(key: str, kind=int, row=row, where=where):
            return _number(row, where, key, kind)

        start, stop = number("dataset_from_index"), number("dataset_to_index")
        if stop - start != number("length"):
            raise LeRobotError(
                where,
                f"dataset_from_index..to_index spans {stop - start} frames, length is {number('length')}",
            )
        data = layout.path(
            info["data_path"],
            f"episode {index} data",
            chunk_index=number("data/chunk_index"),
            file_index=number("data/file_index"),
        )
        videos = {}
        for key in layout.video_keys:
            mp4 = layout.path(
                info["video_path"],
                f"episode {index} video {key}",
                video_key=key,
                chunk_index=number(f"videos/{key}/chunk_index"),
                file_index=number(f"videos/{key}/file_index"),
            )
            videos[key] = (mp4, number(f"videos/{key}/from_timestamp", float))
        stats: dict = {}
        for name, value in row.items():
            parts = name.split("/")
            if len(parts) >= 3 and parts[0] == "stats" and parts[-1] in STAT_NAMES and value is not None:
                stats.setdefault("/".join(parts[1:-1]), {})[parts[-1]] = np.asarray(value, dtype=np.float64)
        extra = {
            k: v for k, v in row.items() if "/" not in k and k not in ("episode_index", "length", "tasks")
        }
        refs.append(
            EpisodeRef(
                index,
                number("length"),
                data,
                (start, stop),
                videos,
                list(row.get("tasks") or []),
                stats,
                extra,
            )
        )
    return refs


def episode_meta(episode: EpisodeRef) -> dict:
    """The ``vjepa2_meta`` an episode written here carries (JSON text), {} for any other."""
    raw = episode.extra.get("vjepa2_meta")
    try:
        meta = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return {}
    return dict(meta) if isinstance(meta, dict) else {}


def open_layout(root: str | Path) -> Layout:
    """Read the metadata of a local dataset folder (no frame tables, no videos yet)."""
    root = Path(root)
    if not root.is_dir():
        raise MissingPathError(f"{root}: LeRobot dataset folder not found")
    info = read_info(root)
    layout = Layout(root, info["codebase_version"], info, [])
    reader = _episodes_v21 if layout.version == "v2.1" else _episodes_v30
    episodes = sorted(reader(root, info, layout), key=lambda e: e.index)
    if not episodes:
        raise LeRobotError(root, "the dataset lists no episodes")
    if len({e.index for e in episodes}) != len(episodes):
        raise LeRobotError(root, "an episode_index is listed twice")
    layout.episodes = episodes
    return layout


def dataset_stats(layout: Layout) -> dict:
    """{feature: {mean, std, ...}}: meta/stats.json, else the per-episode stats pooled (mean and
    variance weighted by each episode's count, as lerobot's compute_stats.aggregate_stats does)."""
    path = layout.root / STATS
    if path.is_file():
        return _stats_of(_load_json(path), path)
    return pool_stats([e.stats for e in layout.episodes])


def pool_stats(per_episode: list[dict]) -> dict:
    """{feature: {mean, std, count}} of all frames from per-episode {feature: {mean, std, count}}."""
    pooled: dict = {}
    for feature in {f for stats in per_episode for f in stats}:
        parts = [stats[feature] for stats in per_episode if feature in stats]
        if not all({"mean", "std", "count"} <= set(p) for p in parts):
            continue
        counts = np.array([float(np.asarray(p["count"]).reshape(-1)[0]) for p in parts])
        means = np.stack([p["mean"] for p in parts])
        variances = np.stack([p["std"] ** 2 for p in parts])
        weights = (counts / counts.sum()).reshape(-1, *([1] * (means.ndim - 1)))
        mean = (weights * means).sum(0)
        var = (weights * (variances + (means - mean) ** 2)).sum(0)
        pooled[feature] = {"mean": mean, "std": np.sqrt(var), "count": np.array([counts.sum()])}
    return pooled
