"""``vjepa2 episodes to-clips``: trajectory episodes written as videos that pretraining reads."""

import numpy as np

from vjepa2.cli import main
from vjepa2.data.datasets import VideoDataset, read_index
from vjepa2.data.episode_clips import clip_folders, export_clips
from vjepa2.data.episodes import write_episode, write_index
from vjepa2.data.video import decode_frames, probe_video


def _root(path, count, fps, lossless, seed):
    """``count`` episodes of 9 frames (a bright square walking right on grey, 24 px)."""
    rng = np.random.default_rng(seed)
    folders = []
    for i in range(count):
        frames = np.full((9, 24, 24, 3), 60, dtype=np.uint8)
        y = int(rng.integers(0, 16))
        for t in range(9):
            frames[t, y : y + 8, 2 * t : 2 * t + 8] = 230
        actions, states = np.zeros((9, 2), np.float32), np.zeros((9, 3), np.float32)
        folders.append(
            write_episode(path / f"episode_{i:06d}", frames, actions, states, fps=fps, lossless=lossless)
        )
    write_index(path, folders)
    return path


def test_clips_hold_the_episodes_frames_and_rate(tmp_path):
    a = _root(tmp_path / "a" / "push", 3, fps=10, lossless=True, seed=0)
    b = _root(tmp_path / "b" / "push", 2, fps=8, lossless=False, seed=1)  # same name, mp4 frames
    written = export_clips([a, b], tmp_path / "clips")
    assert [p.relative_to(tmp_path / "clips").as_posix() for p in written] == [
        "push/episode_000000.mp4", "push/episode_000001.mp4", "push/episode_000002.mp4",
        "push-1/episode_000000.mp4", "push-1/episode_000001.mp4",
    ]  # fmt: skip
    original = np.load(a / "episode_000001" / "frames.npy")
    decoded = decode_frames(written[1])[0]
    assert decoded.shape == original.shape  # every frame, the episode's size
    assert np.abs(decoded.astype(int) - original).mean() < 3  # H.264 4:4:4: close, not exact
    assert probe_video(written[0]).fps == 10 and probe_video(written[3]).fps == 8
    assert not list((tmp_path / "clips").rglob(".*"))  # no temporary files left
    # the folder is a pretraining source: one class per root, clips of frames that read back
    samples = read_index(tmp_path / "clips")
    assert len(samples) == 5 and sorted({label for _, label in samples}) == [0, 1]
    clip = VideoDataset(tmp_path / "clips", num_frames=4, fps=5.0, crop=16, train=True)[0]
    assert clip is not None and tuple(clip["clip"].shape[-2:]) == (16, 16)
    # fps overrides meta.json
    assert probe_video(export_clips([b], tmp_path / "slow", fps=4)[0]).fps == 4


def test_clip_folder_names_are_unique():
    assert clip_folders(["x/push", "y/push", "z/push", "w/reach"]) == ["push", "push-1", "push-2", "reach"]


def test_cli_and_errors(tmp_path, user_error, capsys):
    root = _root(tmp_path / "push", 2, fps=10, lossless=True, seed=0)
    assert main(["episodes", "to-clips", str(root), "--out", str(tmp_path / "clips")]) == 0
    assert "wrote 2 clips" in capsys.readouterr().out
    assert "give at least one episode root" in user_error(["episodes", "to-clips", "--out", str(tmp_path)])
    missing = tmp_path / "nowhere"
    assert f"{missing}: index file not found" in user_error(
        ["episodes", "to-clips", str(missing), "--out", str(tmp_path / "o")]
    )
    assert "fps: must be 0 or more, got -1.0" in user_error(
        ["episodes", "to-clips", str(root), "fps=-1", "--out", str(tmp_path)]
    )
