"""Video files in and out with PyAV: writing, probing, decoding, and reading clips. The one
module that opens a video: data sets, shards, episodes and DROID trajectories all decode here.

Frames are always uint8 numpy arrays in (T, H, W, 3) RGB order; timestamps are float seconds.
Still images (png, jpg, jpeg, bmp, webp) are read with Pillow and behave as one-frame videos.
A reader takes a path or an ``EncodedVideo`` (the bytes of a file held in memory, e.g. a tar
shard member). Which frames a clip takes (fps-based steps, clip windows, variable-rate files) is decided in
``vjepa2.data.frames``; this module only decodes them.
"""

from __future__ import annotations

import io
import math
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vjepa2.atomic import atomic_path
from vjepa2.data.frames import sample_indices
from vjepa2.data.transforms import repeat_image
from vjepa2.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".gif")
MEDIA_SUFFIXES = VIDEO_SUFFIXES + IMAGE_SUFFIXES  # what a folder index or a shard member may hold


class VideoReadError(UserError, RuntimeError):
    """A video or image that cannot be read; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class EncodedVideo:
    """A video or image file's encoded bytes held in memory (a member of a tar shard): every
    reader here takes one where it takes a path. ``name`` is what messages show; its suffix
    says whether it is an image."""

    name: str
    data: bytes

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    def __str__(self) -> str:
        return self.name


Source = str | Path | EncodedVideo  # what the readers take


def _source(path: Source) -> Path | EncodedVideo:
    return path if isinstance(path, EncodedVideo) else Path(path)


@dataclass
class VideoInfo:
    """What a file holds: frame count, mean frame rate (frames/s), size (pixels), duration (s)."""

    num_frames: int
    fps: float
    width: int
    height: int
    duration: float


def is_image(path: Source) -> bool:
    return _source(path).suffix.lower() in IMAGE_SUFFIXES


# ---------------------------------------------------------------------------------------------
# Writing


def _pixel_format(codec: str, width: int, height: int) -> str:
    """yuv420p where it works; 4:2:0 chroma needs even sizes in H.264, so odd sizes use 4:4:4."""
    formats = [f.name for f in av.Codec(codec, "w").video_formats or []]
    if formats and "yuv420p" not in formats and "rgb24" in formats:
        return "rgb24"  # an RGB codec (libx264rgb): lossless with qp 0
    if width % 2 == 0 and height % 2 == 0:
        return "yuv420p"
    # mpeg4 only offers yuv420p but accepts odd sizes; libx264 refuses them unless 4:4:4.
    return "yuv444p" if "yuv444p" in formats else "yuv420p"


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float = 4,
    codec: str = "h264",
    timestamps: np.ndarray | None = None,
    keyframe_interval: int | None = None,
    container_format: str | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode ``frames`` uint8 (T, H, W, 3) RGB to a video file, atomically (container from the
    suffix, or ``container_format``, e.g. "mp4", for a path without one).

    ``fps`` sets a constant frame rate; ``timestamps`` (T,) seconds, increasing, gives each frame its
    own presentation time instead (a variable-frame-rate file). Any width and height work: odd sizes
    are stored without padding (4:4:4 chroma for H.264), so reading back gives the original size.
    ``keyframe_interval`` (frames) sets the codec's GOP size: smaller makes seeking finer.
    ``options``: the encoder's own options (libx264rgb with {"qp": "0"} is lossless).
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(
            f"{path}: frames must be uint8 (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}"
        )
    rate = Fraction(fps).limit_denominator(1001)
    if timestamps is None:
        time_base = 1 / rate
        pts = np.arange(len(frames))
    else:
        timestamps = np.asarray(timestamps, dtype=np.float64)
        if timestamps.shape != (len(frames),) or np.any(np.diff(timestamps) <= 0):
            raise ValueError(f"{path}: timestamps must be (T,) strictly increasing seconds")
        time_base = Fraction(1, 1000)
        pts = np.round(timestamps / float(time_base)).astype(np.int64)
        if np.any(np.diff(pts) <= 0):
            raise ValueError(f"{path}: timestamps closer than 1 ms apart")
    height, width = frames.shape[1:3]
    # Encoded beside ``path`` and renamed once whole: a stopped run leaves no half video.
    with (
        atomic_path(path, keep_suffix=True) as tmp,
        av.open(str(tmp), "w", format=container_format) as container,
    ):
        stream = container.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height = width, height
        stream.pix_fmt = _pixel_format(stream.codec_context.name, width, height)
        stream.time_base = stream.codec_context.time_base = time_base
        if keyframe_interval:
            stream.codec_context.gop_size = keyframe_interval
        for image, t in zip(frames, pts):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = int(t), time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())  # flush the encoder's delayed frames
    return path


# ---------------------------------------------------------------------------------------------
# Opening, probing, decoding


def _check_file(path: Path | EncodedVideo) -> None:
    if isinstance(path, EncodedVideo):
        if not path.data:
            raise VideoReadError(path, "empty file")
        return
    if not path.exists():
        raise VideoReadError(path, "file not found")
    if not path.is_file():
        raise VideoReadError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise VideoReadError(path, "empty file")


@contextmanager
def _reading(path: Path):
    """Open ``path`` for the ``with`` block: yields (container, its first video stream).

    Any FFmpeg error inside the block becomes a VideoReadError naming the file.
    """
    container, stream = _open(path)
    try:
        with container:
            yield container, stream
    except av.FFmpegError as err:
        raise VideoReadError(path, f"cannot decode ({err})") from None


def _open(path: Path):
    """Open ``path`` and return (container, its first video stream)."""
    _check_file(path)
    try:
        container = av.open(io.BytesIO(path.data) if isinstance(path, EncodedVideo) else str(path))
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise VideoReadError(path, f"not a readable video ({err})") from None
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def read_image(path: Source) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB."""
    from PIL import Image, UnidentifiedImageError

    path = _source(path)
    _check_file(path)
    try:
        with Image.open(io.BytesIO(path.data) if isinstance(path, EncodedVideo) else path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as err:
        raise VideoReadError(path, f"not a readable image ({err})") from None


def _packet_times(path: Path, container, stream) -> np.ndarray:
    """Presentation times (s) of every frame, sorted, from the packets alone (no decoding)."""
    try:
        pts = [p.pts for p in container.demux(stream) if p.size > 0]
    except av.FFmpegError as err:
        raise VideoReadError(path, f"cannot read packets ({err})") from None
    _check_complete(path, stream, len(pts))
    if any(p is None for p in pts):
        return np.array([])  # no timestamps: the caller decodes everything instead
    return np.sort(np.array(pts, dtype=np.int64)) * float(stream.time_base)


def _check_complete(path: Path, stream, num_packets: int) -> None:
    if num_packets == 0:
        raise VideoReadError(path, "no video frames")
    if stream.frames and num_packets < stream.frames:
        # The header's frame table outlives a cut-off download: ffmpeg silently stops early.
        raise VideoReadError(
            path, f"truncated: the header lists {stream.frames} frames, {num_packets} are present"
        )


def _decode(path: Path, container, stream, keep=None, tolerance: float = 0.0):
    """Decode frames in order; keep those within ``tolerance`` s of a time in ``keep`` (all if None).

    Stops once past the last kept time. Returns (frames list of (H, W, 3) uint8, times list of s).
    """
    frames, times = [], []
    rgb = VideoReformatter()  # one colour converter a file (``to_ndarray`` builds one a frame)
    stop_time = math.inf if keep is None else keep[-1] + tolerance
    num_packets = num_decoded = 0
    try:
        for packet in container.demux(stream):
            num_packets += packet.size > 0
            for frame in packet.decode():
                # Without timestamps, time is the frame's position over the mean rate.
                t = float(frame.time) if frame.time is not None else num_decoded / _mean_fps(stream)
                num_decoded += 1
                if t > stop_time:
                    return frames, times
                if keep is None or np.min(np.abs(keep - t)) <= tolerance:
                    frames.append(rgb.reformat(frame, format="rgb24").to_ndarray())
                    times.append(t)
    except av.FFmpegError as err:
        raise VideoReadError(path, f"corrupt video data ({err})") from None
    if keep is None:
        _check_complete(path, stream, num_packets)
    if not frames:
        raise VideoReadError(path, "no decodable video frames")
    return frames, times


def _mean_fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 1.0


def probe_video(path: Source) -> VideoInfo:
    """Frame count, mean fps, size and duration of a video (an image: 1 frame, fps 0)."""
    path = _source(path)
    if is_image(path):
        height, width = read_image(path).shape[:2]
        return VideoInfo(1, 0.0, width, height, 0.0)
    with _reading(path) as (container, stream):
        times = _packet_times(path, container, stream)
        fps = _mean_fps(stream)
        num_frames = len(times) if len(times) else stream.frames
        duration = float(times[-1] - times[0]) + 1 / fps if len(times) else num_frames / fps
        return VideoInfo(num_frames, fps, stream.codec_context.width, stream.codec_context.height, duration)


def decode_frames(path: Source) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of a video: (frames uint8 (T, H, W, 3), timestamps float64 (T,) seconds).

    An image gives one frame at time 0.
    """
    path = _source(path)
    if is_image(path):
        return read_image(path)[None], np.zeros(1)
    with _reading(path) as (container, stream):
        frames, times = _decode(path, container, stream)
    return np.stack(frames), np.asarray(times)


def declared_rate(path: Source) -> float | None:
    """The mean frame rate (frames/s) the video's header declares, None when it declares none."""
    with _reading(_source(path)) as (_, stream):
        return float(stream.average_rate) if stream.average_rate else None


def decode_every(path: Source, step: int, size: int | None = None) -> tuple[np.ndarray, int]:
    """Every ``step``-th decoded frame, uint8 (T', H, W, 3), squashed to ``size`` x ``size`` while
    decoding when given (FFmpeg's scaler), and the number of frames decoded in all."""
    path = _source(path)
    kw = {"width": size, "height": size} if size else {}
    frames, count, rgb = [], 0, VideoReformatter()
    with _reading(path) as (container, stream):
        for frame in container.decode(stream):
            if count % step == 0:
                frames.append(rgb.reformat(frame, format="rgb24", **kw).to_ndarray())
            count += 1
    if not frames:
        raise VideoReadError(path, "no decodable video frames")
    return np.stack(frames), count


def decode_at_packet_times(path: Source) -> tuple[np.ndarray, np.ndarray, float] | None:
    """A whole video laid out as ``read_clip`` sees it: (frames uint8 (T, H, W, 3), one per packet
    time, packet times (T,) s, mean fps); ``sample_indices`` on these gives ``read_clip``'s clips.

    None for a file without packet timestamps (``read_clip`` decodes those whole anyway).
    """
    path = _source(path)
    with _reading(path) as (container, stream):
        times = _packet_times(path, container, stream)
        if len(times) == 0:
            return None
        video_fps = _mean_fps(stream)
        container.seek(0)
        frames, got = _decode(path, container, stream)
    return _nearest_frames(frames, got, times), times, video_fps


def read_clip(
    path: Source,
    num_frames: int = 16,
    fps: float | None = None,
    frame_step: int | None = None,
    num_clips: int = 1,
    rng: np.random.Generator | None = None,
    sampling: str = "auto",
) -> np.ndarray:
    """Read ``num_clips`` clips of ``num_frames`` frames: uint8 (num_clips, num_frames, H, W, 3).

    Windows are random with ``rng`` (a seeded ``np.random.Generator``), else evenly spread (the
    multi-clip test protocol). See ``sample_indices`` for ``fps``, ``frame_step`` and ``sampling``.
    Only the frames the clips need are decoded: the file is first scanned for packet times
    (cheap), then decoding seeks near the first needed frame and stops after the last one.
    An image is repeated into every frame of every clip (a read-only view: copy before writing).
    """
    path = _source(path)
    if is_image(path):
        still = repeat_image(read_image(path), num_frames)  # (num_frames, H, W, 3) view
        return np.broadcast_to(still, (num_clips, *still.shape))
    with _reading(path) as (container, stream):
        times = _packet_times(path, container, stream)
        if len(times) == 0:  # no packet timestamps: decode all, then sample
            container.seek(0)
            frames, times = _decode(path, container, stream)
            indices = sample_indices(np.asarray(times), num_frames, fps, frame_step, num_clips, rng, sampling)
            return np.stack(frames)[indices]
        indices = sample_indices(
            times, num_frames, fps, frame_step, num_clips, rng, sampling, _mean_fps(stream)
        )
        needed = np.unique(times[indices])
        # Decoded frame times can differ slightly from packet times: match within half a frame.
        gaps = np.diff(times)[np.diff(times) > 0]
        tolerance = 0.5 * np.min(gaps) if len(gaps) else math.inf
        _seek(container, stream, needed[0])
        frames, got = _decode(path, container, stream, keep=needed, tolerance=tolerance)
    return _nearest_frames(frames, got, times[indices])


def _nearest_frames(frames: list, got: list, wanted: np.ndarray) -> np.ndarray:
    """For each wanted time (any shape, s) the decoded frame (of ``frames`` at times ``got``)
    nearest to it: uint8 (*wanted.shape, H, W, 3). A packet that decoded to nothing (damage)
    borrows its neighbour's frame."""
    nearest = np.abs(wanted[..., None] - np.asarray(got)).argmin(-1)
    return np.stack(frames)[nearest]


def _seek(container, stream, time: float) -> None:
    """Seek to the keyframe at or before ``time`` seconds (from the start if seeking fails)."""
    target = int(math.floor(time / float(stream.time_base)))
    try:
        container.seek(target, stream=stream, backward=True, any_frame=False)
    except av.FFmpegError:
        container.seek(0)
