"""Reading LeRobot episodes: the parquet frame tables (pyarrow) and the camera videos (PyAV).

``read_columns(layout, episode, keys)`` gives one episode's rows of the frame table, in frame
order; ``read_camera(layout, episode, key, timestamps)`` decodes the frames shown at those
timestamps. In 3.0 an mp4 holds many episodes back to back: episode e's frame at timestamp t is
the video frame at ``from_timestamp + t``. A query must fall within ``TOLERANCE_S`` of a decoded
frame's time (LeRobotDataset's ``tolerance_s``, 1e-4 s, huggingface/lerobot
src/lerobot/datasets/lerobot_dataset.py), else the episode and camera are named in the error.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from av.video.reformatter import VideoReformatter

from vjepa2.data.lerobot.format import EpisodeRef, Layout, LeRobotError
from vjepa2.errors import MissingPathError, UnknownKeyError

TOLERANCE_S = 1e-4


@lru_cache(maxsize=4)
def _table(path: Path, mtime_ns: int) -> pa.Table:
    """A whole data file (3.0 packs many episodes in one): read once for all of its episodes."""
    try:
        return pq.read_table(path)
    except Exception as err:  # pyarrow raises several kinds on a damaged file
        raise LeRobotError(path, f"not a readable parquet file ({err})") from None


def _numpy(column: pa.Array) -> np.ndarray:
    """A column as (T,) or, for a list column (LeRobot's vectors), (T, k): every row k long."""
    if not (pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type)):
        return column.to_numpy(zero_copy_only=False)
    if column.null_count:
        raise ValueError("empty (null) rows")
    lengths = np.asarray(pc.list_value_length(column).to_numpy(zero_copy_only=False))
    if len(lengths) and (lengths != lengths[0]).any():
        raise ValueError(f"rows of different lengths {sorted(set(lengths.tolist()))[:5]}")
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(column), -1)


def read_columns(layout: Layout, episode: EpisodeRef, keys: list[str]) -> dict[str, np.ndarray]:
    """The columns ``keys`` of one episode's frames, (T, ...) numpy arrays ordered by frame_index."""
    path = episode.data
    if not path.is_file():
        raise MissingPathError(f"{path}: the data file of episode {episode.index} is missing")
    table = _table(path, path.stat().st_mtime_ns)
    where = f"{path} episode {episode.index}"
    for key in ("episode_index", *keys):
        if key not in table.column_names:
            raise LeRobotError(where, f"no column {key!r} (columns: {table.column_names[:12]})")
    rows = table.filter(pc.equal(table["episode_index"], episode.index))
    if "frame_index" in rows.column_names:
        rows = rows.sort_by("frame_index")
    if rows.num_rows != episode.length:
        raise LeRobotError(
            where, f"{rows.num_rows} frames in the data file, the metadata says {episode.length}"
        )
    out = {}
    for key in keys:
        column = rows[key].combine_chunks()
        try:
            values = _numpy(column)
        except (ValueError, TypeError, pa.ArrowInvalid) as err:
            raise LeRobotError(where, f"field {key!r} is not a numeric array ({err})") from None
        if values.dtype.kind not in "biuf" or values.dtype == object:
            raise LeRobotError(where, f"field {key!r} is not numeric ({values.dtype})")
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise LeRobotError(where, f"field {key!r} holds NaN or infinite values")
        out[key] = values
    return out


def check_camera(layout: Layout, camera: str) -> str:
    """The camera key to read: ``camera``, or the first video key when empty."""
    keys = layout.video_keys
    if not keys:
        raise LeRobotError(layout.root / "meta/info.json", "the dataset has no video features (cameras)")
    if not camera:
        return keys[0]
    if layout.features.get(camera, {}).get("dtype") == "image":
        raise LeRobotError(
            layout.root / "meta/info.json",
            f"camera {camera!r} stores images in the parquet "
            f"files, which this reader does not read (video cameras: {keys})",
        )
    if camera not in keys:
        raise UnknownKeyError(f"{layout.root}: no camera {camera!r}; its cameras: {keys}")
    return camera


class _Cursor:
    """An open video decoded forward: reading the episodes of a 3.0 file in order decodes it once
    (a seek goes back to a keyframe, which in a long GOP is many episodes back)."""

    def __init__(self, path: Path):
        self.container = av.open(str(path))
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        # one reformatter for the file: PyAV's frame.to_ndarray(format=...) sets up a new
        # converter per frame, several times slower than the decoding itself on small frames
        self.rgb = VideoReformatter()
        self.frames = None  # the decoding generator, None before the first seek
        self.pending = None  # a frame decoded past the last request, (time, frame)

    def seek(self, time: float) -> None:
        self.container.seek(max(0, int(time / self.stream.time_base)), stream=self.stream, backward=True)
        self.frames, self.pending = self.container.decode(self.stream), None

    def next(self):
        """(time s, frame) of the next frame, or None at the end."""
        if self.pending is not None:
            item, self.pending = self.pending, None
            return item
        frame = next(self.frames, None)
        return None if frame is None else (float(frame.time), frame)


_open_cursor: dict[str, _Cursor] = {}  # at most one open file: the one read last


def close_videos() -> None:
    """Close the video kept open between reads (call once a pass over a dataset is done)."""
    for cursor in _open_cursor.values():
        cursor.container.close()
    _open_cursor.clear()


def _cursor(path: Path, start: float) -> _Cursor:
    """The cursor of ``path``, positioned before ``start`` (kept from the last call when it is)."""
    stat = path.stat()
    key = f"{path} {stat.st_mtime_ns} {stat.st_size}"  # a file written again is opened again
    cursor = _open_cursor.get(key)
    if cursor is None:
        close_videos()
        cursor = _open_cursor[key] = _Cursor(path)
    ahead = cursor.pending[0] if cursor.pending is not None else None
    if cursor.frames is None or ahead is None or ahead > start + TOLERANCE_S or start - ahead > 10.0:
        cursor.seek(start)
    return cursor


def read_camera(
    layout: Layout, episode: EpisodeRef, camera: str, timestamps: np.ndarray, size: int | None = None
) -> np.ndarray:
    """uint8 (N, H, W, 3) frames of ``camera`` at the episode's ``timestamps`` (N,) seconds;
    squashed to ``size`` x ``size`` while decoding when given."""
    path, offset = episode.videos[camera]
    where = f"{path} (episode {episode.index}, {camera})"
    if not path.is_file():
        raise MissingPathError(f"{where}: the video file is missing")
    wanted = offset + np.asarray(timestamps, dtype=np.float64)
    frames: list = [None] * len(wanted)
    kw = {"width": size, "height": size} if size else {}
    try:
        cursor = _cursor(path, float(wanted.min()))
        while (item := cursor.next()) is not None:
            t, frame = item
            if t > wanted.max() + TOLERANCE_S:
                cursor.pending = item  # the next episode's first frame
                break
            hits = np.flatnonzero(np.abs(wanted - t) <= TOLERANCE_S)
            if len(hits):
                image = cursor.rgb.reformat(frame, format="rgb24", **kw).to_ndarray()
                for i in hits:
                    frames[i] = image
    except (av.FFmpegError, IndexError) as err:
        close_videos()
        raise LeRobotError(where, f"not a readable video ({err})") from None
    missing = [i for i, f in enumerate(frames) if f is None]
    if missing:
        first = float(timestamps[missing[0]])
        raise LeRobotError(
            where,
            f"{len(missing)} timestamps have no video frame within {TOLERANCE_S} s "
            f"(the first: timestamp {first:.4f} s, video time {offset + first:.4f} s)",
        )
    return np.stack(frames)
