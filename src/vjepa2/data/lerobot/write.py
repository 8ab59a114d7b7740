"""Writing LeRobot datasets (v3.0, or v2.1 for readers that have not moved): frames, tables, meta.

The layout is the one ``format`` reads (facts from huggingface/lerobot
src/lerobot/datasets/utils.py and v30/convert_dataset_v21_to_v30.py). v3.0 puts every episode in
one data file and one mp4 per camera, back to back (episode e starts at ``from_timestamp`` =
frames before it / fps); v2.1 writes one parquet and one mp4 per episode. Camera features carry
LeRobot's ``info`` (video.codec, fps, size, pix_fmt). Stats: ``meta/stats.json`` (all frames)
and per episode (v3.0: ``stats/<feature>/<stat>`` columns of the episode table; v2.1:
``meta/episodes_stats.jsonl``); image stats per channel in [0, 1], shape (3, 1, 1), as LeRobot's.
Codecs: ``av1`` (LeRobot's default, SVT-AV1), ``h264``, ``lossless`` (libx264rgb at qp 0: the
frames read back bit-exact, for comparisons). Everything is written through ``vjepa2.atomic``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vjepa2.atomic import atomic_path, atomic_write_json, atomic_write_text
from vjepa2.data.lerobot import format as fmt
from vjepa2.errors import UserError

# name -> (PyAV encoder, its options, the codec name info.json gives)
CODECS = {
    "av1": ("libsvtav1", {}, "av1"),
    "h264": ("libx264", {}, "h264"),
    "lossless": ("libx264rgb", {"qp": "0"}, "h264"),
}
V30_DATA = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V30_VIDEO = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
V21_DATA = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V21_VIDEO = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"


@dataclass
class LeRobotEpisode:
    """frames: camera key -> uint8 (T, H, W, 3); state (T, S), action (T, A); extras: other
    per-frame numeric arrays (T,) or (T, k); meta: JSON facts kept as ``vjepa2_meta``."""

    frames: dict[str, np.ndarray]
    state: np.ndarray
    action: np.ndarray
    task: str = ""
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(self.state)


def _column(values: np.ndarray) -> pa.Array:
    """(T,) -> a plain column; (T, k) -> fixed-size lists of k (LeRobot's 1-D features)."""
    values = np.ascontiguousarray(values)
    if values.ndim == 1:
        return pa.array(values)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _frame_table(episodes: list[LeRobotEpisode], first: int, fps: float, task_ids: list[int]) -> pa.Table:
    n = [e.length for e in episodes]
    frame_index = np.concatenate([np.arange(k) for k in n])
    columns = {
        "observation.state": _column(np.concatenate([e.state for e in episodes]).astype(np.float32)),
        "action": _column(np.concatenate([e.action for e in episodes]).astype(np.float32)),
    }
    for name in episodes[0].extras:
        columns[name] = _column(np.concatenate([e.extras[name] for e in episodes]))
    columns.update(
        timestamp=pa.array((frame_index / fps).astype(np.float32)),
        frame_index=pa.array(frame_index.astype(np.int64)),
        episode_index=pa.array(np.repeat(np.arange(first, first + len(n)), n).astype(np.int64)),
        index=pa.array(np.arange(sum(n), dtype=np.int64)),
        task_index=pa.array(np.repeat(task_ids, n).astype(np.int64)),
    )
    return pa.table(columns)


def _write_parquet(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _encode(path: Path, chunks, fps: float, codec: str) -> None:
    """Encode the frame arrays of ``chunks`` (each (T, H, W, 3)) into one constant-rate mp4."""
    encoder, options, _ = CODECS[codec]
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner on stderr otherwise
    with atomic_path(path, keep_suffix=True) as tmp, av.open(str(tmp), "w") as container:
        stream = None
        for frames in chunks:
            if stream is None:
                stream = container.add_stream(encoder, rate=round(fps), options=dict(options))
                stream.height, stream.width = frames.shape[1:3]
                stream.pix_fmt = "rgb24" if encoder == "libx264rgb" else "yuv420p"
            for image in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def _stats(values: np.ndarray) -> dict:
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    return {
        "min": values.min(0),
        "max": values.max(0),
        "mean": values.mean(0),
        "std": values.std(0),
        "count": np.array([len(values)]),
    }


def _image_stats(frames: np.ndarray) -> dict:
    """Per-channel stats in [0, 1], shaped (3, 1, 1) as LeRobot's image stats; every 4th frame."""
    pixels = frames[::4].reshape(-1, 3).astype(np.float64) / 255.0
    stats = _stats(pixels)
    return {k: (v.reshape(3, 1, 1) if k != "count" else np.array([len(frames)])) for k, v in stats.items()}


def episode_stats(episode: LeRobotEpisode) -> dict:
    stats = {"observation.state": _stats(episode.state), "action": _stats(episode.action)}
    stats.update({name: _stats(values) for name, values in episode.extras.items()})
    stats.update({key: _image_stats(frames) for key, frames in episode.frames.items()})
    return stats


def _jsonable(stats: dict) -> dict:
    return {f: {k: np.asarray(v).tolist() for k, v in s.items()} for f, s in stats.items()}


def _features(episode: LeRobotEpisode, fps: float, codec: str, names: dict) -> dict:
    def vector(values: np.ndarray, key: str) -> dict:
        shape = [1] if values.ndim == 1 else list(values.shape[1:])
        return {
            "dtype": str(values.dtype) if key not in ("observation.state", "action") else "float32",
            "shape": shape,
            "names": names.get(key),
        }

    features = {}
    for key, frames in episode.frames.items():
        height, width = frames.shape[1:3]
        info = {
            "video.height": height,
            "video.width": width,
            "video.codec": CODECS[codec][2],
            "video.pix_fmt": "rgb24" if codec == "lossless" else "yuv420p",
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        }
        features[key] = {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": info,
        }
    features["observation.state"] = vector(episode.state, "observation.state")
    features["action"] = vector(episode.action, "action")
    features.update({name: vector(values, name) for name, values in episode.extras.items()})
    for name in fmt.BOOKKEEPING:
        features[name] = {"dtype": "float32" if name == "timestamp" else "int64", "shape": [1], "names": None}
    return features


def check_episodes(episodes: list[LeRobotEpisode]) -> None:
    """Every episode has the cameras, widths and extras of the first, and rows for every frame."""
    if not episodes:
        raise UserError("lerobot: no episodes to write")
    first = episodes[0]
    for i, e in enumerate(episodes):
        shapes = {k: f.shape[1:] for k, f in e.frames.items()}
        if shapes != {k: f.shape[1:] for k, f in first.frames.items()}:
            raise UserError(f"lerobot: episode {i} has cameras {shapes}, episode 0 has others")
        if e.state.shape[1:] != first.state.shape[1:] or e.action.shape[1:] != first.action.shape[1:]:
            raise UserError(f"lerobot: episode {i}: state/action widths differ from episode 0's")
        if sorted(e.extras) != sorted(first.extras):
            raise UserError(
                f"lerobot: episode {i} has extras {sorted(e.extras)}, episode 0 {sorted(first.extras)}"
            )
        if any(len(a) != e.length for a in [e.action, *e.frames.values(), *e.extras.values()]):
            raise UserError(f"lerobot: episode {i}: frames, state, action and extras differ in length")
        if any("/" in name for name in e.extras):
            raise UserError(f"lerobot: episode {i}: feature names may not hold '/' ({sorted(e.extras)})")


def write_dataset(
    out: str | Path,
    episodes: list[LeRobotEpisode],
    fps: float,
    version: str = "v3.0",
    codec: str = "av1",
    robot_type: str | None = None,
    names: dict | None = None,
) -> Path:
    """Write ``episodes`` as a LeRobot dataset in ``out``; returns ``out``. ``names``: feature ->
    names of its dims (info.json's ``names``)."""
    if version not in fmt.VERSIONS:
        raise UserError(f"lerobot: version must be one of {list(fmt.VERSIONS)}, got {version!r}")
    if codec not in CODECS:
        raise UserError(f"lerobot: codec must be one of {sorted(CODECS)}, got {codec!r}")
    check_episodes(episodes)
    fps = int(fps) if float(fps).is_integer() else float(fps)  # LeRobot's info.json holds an int
    out = Path(out)
    tasks = list(dict.fromkeys(e.task for e in episodes))
    task_ids = [tasks.index(e.task) for e in episodes]
    stats = [episode_stats(e) for e in episodes]
    write = _write_v30 if version == "v3.0" else _write_v21
    rows = write(out, episodes, fps, codec, task_ids, stats)
    info = {
        "codebase_version": version,
        "robot_type": robot_type,
        "total_episodes": len(episodes),
        "total_frames": sum(e.length for e in episodes),
        "total_tasks": len(tasks),
        "chunks_size": 1000,
        "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": V30_DATA if version == "v3.0" else V21_DATA,
        "video_path": V30_VIDEO if version == "v3.0" else V21_VIDEO,
        "features": _features(episodes[0], fps, codec, names or {}),
    }
    if version == "v3.0":
        info.update(data_files_size_in_mb=100, video_files_size_in_mb=500)
        _write_tasks_v30(out, tasks)
    else:
        info.update(total_chunks=1, total_videos=len(episodes) * len(episodes[0].frames))
        atomic_write_text(
            out / fmt.TASKS_V21,
            "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(tasks)),
        )
        atomic_write_text(out / fmt.EPISODES_V21, "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_json(out / fmt.INFO, info, indent=4)
    atomic_write_json(out / fmt.STATS, _jsonable(_pool(stats)), indent=4)
    return out


def _pool(stats: list[dict]) -> dict:
    pooled = fmt.pool_stats(stats)
    for feature, pooled_stats in pooled.items():
        pooled_stats["min"] = np.min([s[feature]["min"] for s in stats], axis=0)
        pooled_stats["max"] = np.max([s[feature]["max"] for s in stats], axis=0)
    return pooled


def _meta_json(episode: LeRobotEpisode) -> str:
    return json.dumps(episode.meta, sort_keys=True)


def _write_v30(out: Path, episodes, fps, codec, task_ids, stats) -> list[dict]:
    _write_parquet(
        _frame_table(episodes, 0, fps, task_ids), out / V30_DATA.format(chunk_index=0, file_index=0)
    )
    starts = np.concatenate([[0], np.cumsum([e.length for e in episodes])])
    for key in episodes[0].frames:
        path = out / V30_VIDEO.format(video_key=key, chunk_index=0, file_index=0)
        _encode(path, (e.frames[key] for e in episodes), fps, codec)
    rows = []
    for i, e in enumerate(episodes):
        row = {
            "episode_index": i,
            "tasks": [e.task],
            "length": e.length,
            "data/chunk_index": 0,
            "data/file_index": 0,
            "dataset_from_index": int(starts[i]),
            "dataset_to_index": int(starts[i + 1]),
        }
        for key in e.frames:
            row.update(
                {
                    f"videos/{key}/chunk_index": 0,
                    f"videos/{key}/file_index": 0,
                    f"videos/{key}/from_timestamp": float(starts[i] / fps),
                    f"videos/{key}/to_timestamp": float(starts[i + 1] / fps),
                }
            )
        for feature, values in stats[i].items():
            row.update({f"stats/{feature}/{k}": np.asarray(v).tolist() for k, v in values.items()})
        row.update(
            {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0, "vjepa2_meta": _meta_json(e)}
        )
        rows.append(row)
    _write_parquet(pa.Table.from_pylist(rows), out / fmt.EPISODES_V30 / "chunk-000" / "file-000.parquet")
    return rows


def _write_v21(out: Path, episodes, fps, codec, task_ids, stats) -> list[dict]:
    rows, stat_lines = [], []
    for i, e in enumerate(episodes):
        table = _frame_table([e], i, fps, [task_ids[i]])
        start = sum(x.length for x in episodes[:i])
        table = table.set_column(
            table.column_names.index("index"),
            "index",
            pa.array(np.arange(start, start + e.length, dtype=np.int64)),
        )
        _write_parquet(table, out / V21_DATA.format(episode_chunk=0, episode_index=i))
        for key, frames in e.frames.items():
            _encode(
                out / V21_VIDEO.format(episode_chunk=0, video_key=key, episode_index=i), [frames], fps, codec
            )
        rows.append({"episode_index": i, "tasks": [e.task], "length": e.length, "vjepa2_meta": _meta_json(e)})
        stat_lines.append(json.dumps({"episode_index": i, "stats": _jsonable(stats[i])}) + "\n")
    atomic_write_text(out / fmt.EPISODES_STATS_V21, "".join(stat_lines))
    return rows


def _write_tasks_v30(out: Path, tasks: list[str]) -> None:
    """meta/tasks.parquet: LeRobot reads it with pandas, the task strings as the index."""
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [],
        "columns": [
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
        ],
    }
    table = pa.table(
        {"task": pa.array(tasks, pa.string()), "task_index": pa.array(range(len(tasks)), pa.int64())}
    )
    table = table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
    _write_parquet(table, out / fmt.TASKS_V30)
