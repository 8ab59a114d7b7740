"""Which frames make a clip: frame steps at a target fps, clip windows, variable-rate files.

Pure index arithmetic on a video's frame timestamps (float seconds); ``vjepa2.data.video`` decodes
the frames these indices pick. At a target ``fps`` the step between kept frames is the
reference's ``max(1, ceil(video_fps) // fps)``. Files with a variable frame rate have no single
step, so for them (``sampling="auto"`` or ``"time"``) each time ``t0 + k / fps`` takes the frame
whose timestamp is nearest. Videos shorter than a clip are padded by repeating their last frame.
"""

from __future__ import annotations

import math

import numpy as np

# Relative spread of frame intervals above which a file counts as variable frame rate.
VFR_TOLERANCE = 0.1


def fps_frame_step(video_fps: float, target_fps: float) -> int:
    """The reference's frame step for sampling at ``target_fps``: max(1, ceil(video_fps) // fps)."""
    return max(1, int(math.ceil(video_fps) // target_fps))


def is_variable_rate(timestamps: np.ndarray) -> bool:
    """True when frame intervals differ by more than ``VFR_TOLERANCE`` of their median."""
    gaps = np.diff(timestamps)
    if len(gaps) < 2:
        return False
    median = np.median(gaps)
    return bool(np.max(np.abs(gaps - median)) > VFR_TOLERANCE * median)


def _window_fractions(num_clips: int, rng: np.random.Generator | None) -> np.ndarray:
    """Where ``num_clips`` windows start, as fractions in [0, 1) of the free range.

    The range is cut into ``num_clips`` equal segments and one start is taken per segment: at
    its centre without ``rng`` (deterministic test-time clips), uniformly within it with ``rng``.
    """
    offsets = np.full(num_clips, 0.5) if rng is None else rng.random(num_clips)
    return (np.arange(num_clips) + offsets) / num_clips


def step_indices(
    num_video_frames: int,
    num_frames: int,
    frame_step: int,
    num_clips: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Frame indices (num_clips, num_frames) of clips taking every ``frame_step``-th frame.

    Indices past the end repeat the last frame (padding of short videos).
    """
    span = (num_frames - 1) * frame_step + 1
    num_starts = max(1, num_video_frames - span + 1)
    starts = np.floor(_window_fractions(num_clips, rng) * num_starts).astype(np.int64)
    indices = starts[:, None] + frame_step * np.arange(num_frames)[None]
    return np.minimum(indices, num_video_frames - 1)


def time_indices(
    timestamps: np.ndarray,
    num_frames: int,
    fps: float,
    num_clips: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Frame indices (num_clips, num_frames): for each time t0 + k / fps the nearest frame.

    ``timestamps`` (T,) seconds, increasing. Times past the last frame give the last frame.
    """
    times = np.asarray(timestamps, dtype=np.float64) - timestamps[0]
    span = (num_frames - 1) / fps
    starts = _window_fractions(num_clips, rng) * max(0.0, times[-1] - span)
    wanted = starts[:, None] + np.arange(num_frames)[None] / fps  # (num_clips, num_frames) seconds
    right = np.clip(np.searchsorted(times, wanted), 1, max(1, len(times) - 1))
    left = right - 1
    if len(times) == 1:
        return np.zeros_like(right)
    # Ties go to the earlier frame.
    take_right = np.abs(times[right] - wanted) < np.abs(wanted - times[left])
    return np.where(take_right, right, left)


def sample_indices(
    timestamps: np.ndarray,
    num_frames: int,
    fps: float | None = None,
    frame_step: int | None = None,
    num_clips: int = 1,
    rng: np.random.Generator | None = None,
    sampling: str = "auto",
    video_fps: float | None = None,
) -> np.ndarray:
    """Indices (num_clips, num_frames) into a video's frames, given their ``timestamps`` (s).

    Give ``fps`` (target frames/s) or ``frame_step`` (neither: every frame). With ``fps``,
    ``sampling`` picks "step" (the reference: a fixed step from the mean rate ``video_fps``),
    "time" (nearest frame to each target time) or "auto" (time only for variable-rate files).
    """
    if fps is not None and frame_step is not None:
        raise ValueError("give fps or frame_step, not both")
    if sampling not in ("auto", "step", "time"):
        raise ValueError(f"sampling must be 'auto', 'step' or 'time', got {sampling!r}")
    if fps is not None:
        use_time = sampling == "time" or (sampling == "auto" and is_variable_rate(timestamps))
        if use_time:
            return time_indices(timestamps, num_frames, fps, num_clips, rng)
        if video_fps is None:
            gaps = np.diff(timestamps)
            video_fps = 1 / np.median(gaps) if len(gaps) else fps
        frame_step = fps_frame_step(video_fps, fps)
    return step_indices(len(timestamps), num_frames, frame_step or 1, num_clips, rng)
