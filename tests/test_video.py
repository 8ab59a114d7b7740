"""Video I/O: files written here with PyAV, read back, sampled; corrupt files must raise clearly."""

import av
import numpy as np
import pytest

from vjepa2.data.frames import fps_frame_step, is_variable_rate, sample_indices, step_indices, time_indices
from vjepa2.data.video import (
    VideoReadError,
    declared_rate,
    decode_every,
    decode_frames,
    probe_video,
    read_clip,
    write_video,
)

SPACING = 10  # grey levels between consecutive frames: far above codec error (a few levels)


def coloured_frames(num_frames, height=48, width=64):
    """Frame i is flat (10 i + 5, 250 - 10 i, 128): its identity survives lossy compression."""
    levels = SPACING * np.arange(num_frames) + 5
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    frames[..., 0] = levels[:, None, None]
    frames[..., 1] = 250 - levels[:, None, None]
    frames[..., 2] = 128
    return frames


def frame_ids(frames):
    """Recover each frame's index from its red level; checks the other channels agree."""
    means = frames.reshape(*frames.shape[:-3], -1, 3).mean(-2)  # (..., 3)
    ids = np.round((means[..., 0] - 5) / SPACING).astype(int)
    assert np.all(np.abs(means[..., 1] - (250 - 5 - SPACING * ids)) < SPACING / 2), (
        "green channel out of place"
    )
    return ids


@pytest.mark.parametrize("codec", ["h264", "mpeg4"])
@pytest.mark.parametrize("size", [(48, 64), (47, 65)])
def test_roundtrip_keeps_count_size_order_and_times(tmp_path, codec, size):
    frames = coloured_frames(20, *size)
    path = write_video(tmp_path / "clip.mp4", frames, fps=8, codec=codec)
    decoded, times = decode_frames(path)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    np.testing.assert_array_equal(frame_ids(decoded), np.arange(20))
    assert np.abs(decoded.astype(float) - frames).mean() < 3
    np.testing.assert_allclose(times, np.arange(20) / 8, atol=1e-6)
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height) == (20, size[1], size[0])
    assert info.fps == pytest.approx(8) and info.duration == pytest.approx(2.5)


def test_variable_frame_rate_keeps_timestamps_and_samples_by_time(tmp_path):
    times = np.array([0.0, 0.1, 0.15, 0.5, 1.0, 1.05, 2.0, 2.2])
    path = write_video(tmp_path / "vfr.mp4", coloured_frames(8), timestamps=times)
    frames, decoded_times = decode_frames(path)
    np.testing.assert_allclose(decoded_times, times, atol=1e-3)
    assert is_variable_rate(decoded_times) and not is_variable_rate(np.arange(8) / 4)
    # 3 frames at 2 fps span 1 s; the centred window starts at (2.2 - 1) / 2 = 0.6 s, so the wanted
    # times are 0.6, 1.1, 1.6 s, whose nearest frames are at 0.5, 1.05 and 2.0 s.
    np.testing.assert_array_equal(time_indices(times, 3, fps=2), [[3, 5, 6]])
    clip = read_clip(path, num_frames=3, fps=2)  # "auto" sees the variable rate and samples by time
    np.testing.assert_array_equal(frame_ids(clip), [[3, 5, 6]])
    # Wanted 0, 2, 4, 6 s: past the last frame, time sampling repeats it (padding).
    np.testing.assert_array_equal(time_indices(times, 4, fps=0.5), [[0, 6, 7, 7]])


def test_reference_frame_step():
    assert fps_frame_step(30, 4) == 7
    assert fps_frame_step(29.97, 4) == 7  # ceil first, as the reference does
    assert fps_frame_step(25, 4) == 6
    assert fps_frame_step(3, 4) == 1


def test_fps_sampling_picks_every_kth_frame(tmp_path):
    path = write_video(tmp_path / "v.mp4", coloured_frames(24), fps=12)
    clip = read_clip(path, num_frames=5, fps=4)  # step 12 // 4 = 3, span 13 frames, 12 starts
    ids = frame_ids(clip)[0]
    np.testing.assert_array_equal(np.diff(ids), [3, 3, 3, 3])
    assert ids[0] == 6  # deterministic window: the middle of the 12 possible starts
    np.testing.assert_array_equal(ids, sample_indices(np.arange(24) / 12, 5, fps=4)[0])


def test_random_windows_are_seeded_and_in_range(tmp_path):
    path = write_video(tmp_path / "v.mp4", coloured_frames(24), fps=8)
    first = read_clip(path, num_frames=4, frame_step=2, rng=np.random.default_rng(3))
    again = read_clip(path, num_frames=4, frame_step=2, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(first, again)
    starts = {int(step_indices(24, 4, 2, rng=np.random.default_rng(s))[0, 0]) for s in range(50)}
    assert min(starts) >= 0 and max(starts) <= 24 - 7 and len(starts) > 8


def test_multi_clip_windows_spread_over_the_video(tmp_path):
    path = write_video(tmp_path / "v.mp4", coloured_frames(24), fps=8)
    clips = read_clip(path, num_frames=4, frame_step=1, num_clips=3)
    assert clips.shape == (3, 4, 48, 64, 3)
    ids = frame_ids(clips)
    np.testing.assert_array_equal(ids[:, 1:] - ids[:, :-1], 1)
    # 21 possible starts cut in 3 segments of 7, one start from the middle of each.
    np.testing.assert_array_equal(ids[:, 0], [3, 10, 17])


def test_short_video_is_padded_with_its_last_frame(tmp_path):
    path = write_video(tmp_path / "short.mp4", coloured_frames(5), fps=4, codec="mpeg4")
    clip = read_clip(path, num_frames=8, frame_step=1)
    np.testing.assert_array_equal(frame_ids(clip)[0], [0, 1, 2, 3, 4, 4, 4, 4])
    np.testing.assert_array_equal(step_indices(5, 4, 2)[0], [0, 2, 4, 4])


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp"])
def test_images_are_one_frame_videos(tmp_path, suffix):
    from PIL import Image

    image = coloured_frames(1, 31, 45)[0]
    path = tmp_path / f"image{suffix}"
    Image.fromarray(image).save(path)
    frames, times = decode_frames(path)
    assert frames.shape == (1, 31, 45, 3) and times.tolist() == [0.0]
    assert np.abs(frames[0].astype(float) - image).max() <= (0 if suffix in (".png", ".bmp") else 8)
    clip = read_clip(path, num_frames=6, num_clips=2)
    assert clip.shape == (2, 6, 31, 45, 3) and np.all(clip == frames[0])
    assert probe_video(path).num_frames == 1


def _faststart_mp4(path, frames):
    """An mp4 with its frame table at the front: cut short, ffmpeg alone would not complain."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("h264", rate=4)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def _corrupt_files(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (12, 48, 64, 3), dtype=np.uint8)
    whole = write_video(tmp_path / "whole.mp4", noise).read_bytes()
    front = _faststart_mp4(tmp_path / "front.mp4", noise).read_bytes()
    files = {
        "truncated.mp4": whole[: len(whole) // 2],
        "truncated_faststart.mp4": front[: int(len(front) * 0.6)],
        "random.mp4": np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "empty.mp4": b"",
        "broken.png": b"\x89PNG not really",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return [tmp_path / name for name in files] + [tmp_path / "missing.mp4"]


@pytest.mark.parametrize("reader", [decode_frames, read_clip, probe_video])
def test_corrupt_files_raise_naming_the_file(tmp_path, reader):
    for path in _corrupt_files(tmp_path):
        with pytest.raises(VideoReadError) as caught:
            reader(path)
        assert str(path) in str(caught.value) and caught.value.path == str(path)


def test_decode_every_keeps_every_step_th_frame_squashed(tmp_path):
    """The DROID reader's decoding: every step-th frame, resized while decoding, and the count."""
    path = write_video(tmp_path / "a.mp4", coloured_frames(10), fps=12)
    frames, count = decode_every(path, 3)
    assert count == 10 and frames.shape == (4, 48, 64, 3)
    np.testing.assert_array_equal(frame_ids(frames), [0, 3, 6, 9])
    squashed, _ = decode_every(path, 3, size=16)
    assert squashed.shape == (4, 16, 16, 3)
    np.testing.assert_array_equal(frame_ids(squashed), [0, 3, 6, 9])
    assert declared_rate(path) == pytest.approx(12.0)
    (tmp_path / "garbage.mp4").write_bytes(b"not a video at all")
    for bad in (tmp_path / "garbage.mp4", tmp_path / "missing.mp4"):
        with pytest.raises(VideoReadError, match=str(bad)):
            decode_every(bad, 3)


def test_write_video_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "a.mp4", np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="increasing"):
        write_video(tmp_path / "a.mp4", coloured_frames(3), timestamps=[0.0, 0.2, 0.1])
    with pytest.raises(ValueError, match="not both"):
        sample_indices(np.arange(10) / 4, 4, fps=2, frame_step=2)


@pytest.mark.parametrize("codec", ["h264", "mpeg4"])
def test_read_clip_seeking_matches_full_decode(tmp_path, codec):
    noise = np.random.default_rng(0).integers(0, 256, (60, 32, 48, 3), dtype=np.uint8)
    path = write_video(tmp_path / "gop.mp4", noise, fps=30, codec=codec, keyframe_interval=5)
    frames, times = decode_frames(path)
    for seed in range(4):
        clips = read_clip(path, num_frames=4, fps=8, num_clips=2, rng=np.random.default_rng(seed))
        indices = sample_indices(times, 4, fps=8, num_clips=2, rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(clips, frames[indices])
