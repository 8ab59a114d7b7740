"""Decoded videos kept in memory, for data sets small enough to hold.

Training reads every video many times (the tiny-cpu run: 4,800 clips from 256 videos). Decoding
a clip costs about 12 ms on this 2-core machine, a third of a core at that run's rate, so a loader
worker that keeps each decoded video decodes it once instead of ~19 times. The synthetic world's
256 videos take about 120 MB decoded. Clips come out identical to ``read_clip``'s: frames are
stored in packet-time order and sampled with the same ``sample_indices``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vjepa2.data.frames import sample_indices
from vjepa2.data.video import decode_at_packet_times, is_image, read_clip


class DecodedVideos:
    """A per-process store of whole decoded videos, filled until ``max_mb`` megabytes.

    ``read_clip`` has ``vjepa2.data.video.read_clip``'s signature and result. Videos that do not
    fit, images, and files without packet timestamps are read from disk every time.
    """

    def __init__(self, max_mb: float):
        if max_mb < 0:
            raise ValueError(f"the decoded-video budget must be 0 MB or more, got {max_mb}")
        self.max_bytes = int(max_mb * 2**20)
        self.used_bytes = 0
        self.videos: dict[Path, tuple[np.ndarray, np.ndarray, float]] = {}
        self.passed: set[Path] = set()  # tried once and not kept: read from disk from now on

    def __len__(self) -> int:
        return len(self.videos)

    def read_clip(
        self, path: str | Path, num_frames: int, fps, frame_step, num_clips=1, rng=None, sampling="auto"
    ):
        """uint8 (num_clips, num_frames, H, W, 3): ``vjepa2.data.video.read_clip`` with these arguments."""
        path = Path(path)
        entry = self.videos.get(path)
        if (
            entry is None
            and path not in self.passed
            and self.used_bytes < self.max_bytes
            and not is_image(path)
        ):
            entry = decode_at_packet_times(path)  # a video that does not fit still serves this read
            if entry is not None and self.used_bytes + entry[0].nbytes <= self.max_bytes:
                self.videos[path] = entry
                self.used_bytes += entry[0].nbytes
            else:
                self.passed.add(path)
        if entry is None:
            return read_clip(path, num_frames, fps, frame_step, num_clips, rng, sampling)
        frames, times, video_fps = entry
        indices = sample_indices(times, num_frames, fps, frame_step, num_clips, rng, sampling, video_fps)
        return frames[indices]
