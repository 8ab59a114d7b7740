"""Decoded videos kept in memory give the clips that decoding from disk gives."""

import numpy as np
import pytest
import torch

from vjepa2.data.datasets import VideoDataset
from vjepa2.data.memory import DecodedVideos
from vjepa2.data.video import VideoReadError, read_clip, write_video


def counting_video(path, num_frames=30, fps=12):
    """Frames whose pixels tell their index apart (codec noise stays far below the gaps)."""
    frames = np.zeros((num_frames, 32, 48, 3), dtype=np.uint8)
    frames[:] = (np.arange(num_frames) * 8)[:, None, None, None]
    frames[:, :, :8] = np.random.default_rng(0).integers(0, 256, (32, 8, 3), dtype=np.uint8)
    return write_video(path, frames, fps=fps)


@pytest.mark.parametrize(
    "kw",
    [
        dict(num_frames=4, fps=4.0, frame_step=None),  # reference step sampling from the mean rate
        dict(num_frames=6, fps=None, frame_step=2, num_clips=3),  # multi-clip windows
        dict(num_frames=40, fps=12.0, frame_step=None),  # longer than the video: padded with the last
        dict(num_frames=5, fps=3.0, frame_step=None, sampling="time"),
    ],
)
def test_memory_clips_equal_disk_clips(tmp_path, kw):
    path = counting_video(tmp_path / "v.mp4")
    memory = DecodedVideos(max_mb=64)
    for draw in range(6):
        rng = None if draw == 0 else np.random.default_rng(draw)  # None: evenly spread windows
        again = None if draw == 0 else np.random.default_rng(draw)
        np.testing.assert_array_equal(memory.read_clip(path, rng=rng, **kw), read_clip(path, rng=again, **kw))
    assert len(memory) == 1 and memory.used_bytes == 30 * 32 * 48 * 3


def test_memory_budget_images_and_bad_files(tmp_path, monkeypatch):
    paths = [counting_video(tmp_path / f"v{i}.mp4") for i in range(3)]
    memory = DecodedVideos(max_mb=2.5 * 30 * 32 * 48 * 3 / 2**20)  # room for two videos
    for path in paths:
        memory.read_clip(path, 4, 4.0, None)
    assert len(memory) == 2 and paths[2] not in memory.videos
    # It was decoded whole once, for its first read; later reads go straight to the file.
    monkeypatch.setattr(
        "vjepa2.data.memory.decode_at_packet_times", lambda path: pytest.fail(f"decoded {path} again")
    )
    # The third video is still read, from disk, the same as without a store.
    rng, again = np.random.default_rng(1), np.random.default_rng(1)
    np.testing.assert_array_equal(
        memory.read_clip(paths[2], 4, 4.0, None, rng=rng), read_clip(paths[2], 4, fps=4.0, rng=again)
    )
    monkeypatch.undo()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    with pytest.raises(VideoReadError, match="broken.mp4"):
        DecodedVideos(max_mb=64).read_clip(broken, 4, 4.0, None)
    with pytest.raises(ValueError, match="0 MB or more"):
        DecodedVideos(max_mb=-1)


def test_dataset_with_memory_gives_the_same_items(tmp_path):
    (tmp_path / "videos").mkdir()
    for i in range(3):
        counting_video(tmp_path / "videos" / f"v{i}.mp4")
    plain = VideoDataset(tmp_path / "videos", num_frames=4, fps=4.0, crop=24, seed=3)
    memory = DecodedVideos(max_mb=16)
    kept = VideoDataset(tmp_path / "videos", num_frames=4, fps=4.0, crop=24, seed=3, memory=memory)
    for key in [(0, 0), (1, 5), (2, 1), (0, 7), (0, 0)]:  # (index, draw) keys, one repeated
        assert torch.equal(plain[key]["clip"], kept[key]["clip"])
    assert len(memory) == 3
