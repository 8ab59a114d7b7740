"""Trajectories for the AC world model: episodes, windows, normalization stats and the DROID layout."""

import json
import sys

import numpy as np
import pytest
import torch

from vjepa2.data import trajectories as tj
from vjepa2.data.episodes import write_episode, write_index
from vjepa2.data.video import write_video


def _episode(T=6, A=2, S=3, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (T, 16, 16, 3), dtype=np.uint8)
    return frames, rng.normal(size=(T, A)).astype(np.float32), rng.normal(size=(T, S)).astype(np.float32)


def test_trajectory_drops_the_unused_last_action_and_checks_lengths():
    frames, actions, states = _episode()
    traj = tj.Trajectory(frames, actions, states)
    assert traj.actions.shape == (5, 2) and np.array_equal(traj.actions, actions[:-1])
    with pytest.raises(ValueError, match="6 frames need 6 states"):
        tj.Trajectory(frames, actions, states[:4], {"path": "ep"})


def test_norm_stats_roundtrip_and_constant_dims(tmp_path):
    actions = [np.array([[1.0, 5.0], [3.0, 5.0]]), np.array([[5.0, 5.0]])]
    states = [np.array([[0.0], [2.0]]), np.array([[4.0]])]
    stats = tj.NormStats.compute(actions, states)
    assert stats.action_mean == [3.0, 5.0] and stats.action_std[1] == 1.0  # constant dim keeps its scale
    np.testing.assert_allclose(stats.action_std[0], np.std([1, 3, 5]))
    stats.save(tmp_path / "stats.json")
    loaded = tj.NormStats.load(tmp_path / "stats.json")
    assert loaded == stats
    normed = loaded.normalize_actions(torch.tensor([[3.0, 6.0]]))
    torch.testing.assert_close(normed, torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="actions have 3 dims"):
        loaded.normalize_actions(torch.zeros(1, 3))
    (tmp_path / "bad.json").write_text(json.dumps({"action_mean": [0.0]}))
    with pytest.raises(ValueError, match="bad.json"):
        tj.NormStats.load(tmp_path / "bad.json")


def test_window_index():
    rows = tj.window_index([5, 2, 4], 3)
    assert rows.tolist() == [[0, 0], [0, 1], [0, 2], [2, 0], [2, 1]]
    with pytest.raises(ValueError, match="no trajectory has 9 frames"):
        tj.window_index([5, 2], 9)


def test_read_episodes_from_an_index(tmp_path):
    folders = []
    for i in range(2):
        frames, actions, states = _episode(T=5 + i, seed=i)
        folders.append(write_episode(tmp_path / f"ep{i}", frames, actions, states, fps=10, lossless=True))
    write_index(tmp_path, folders)
    trajs = tj.read_episodes(tmp_path)
    assert [len(t.frames) for t in trajs] == [5, 6] and trajs[1].actions.shape == (5, 2)
    assert trajs[0].meta["path"].endswith("ep0") and trajs[0].meta["fps"] == 10


def test_euler_roundtrip_and_pose_actions():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-1.2, 1.2, (20, 3))
    mats = tj.euler_xyz_to_matrix(angles)
    np.testing.assert_allclose(
        mats @ np.swapaxes(mats, -1, -2), np.broadcast_to(np.eye(3), mats.shape), atol=1e-12
    )
    np.testing.assert_allclose(tj.matrix_to_euler_xyz(mats), angles, atol=1e-10)
    # a yaw that grows by 0.1 per step, a moving hand and a closing gripper
    states = np.zeros((4, 7))
    states[:, 5] = 0.3 + 0.1 * np.arange(4)
    states[:, 0] = np.arange(4) * 0.02
    states[:, 6] = [0.0, 0.5, 0.5, 1.0]
    actions = tj.poses_to_actions(states)
    assert actions.shape == (3, 7)
    np.testing.assert_allclose(actions[:, 0], 0.02, atol=1e-7)
    np.testing.assert_allclose(actions[:, 3:6], np.tile([0.0, 0.0, 0.1], (3, 1)), atol=1e-6)
    np.testing.assert_allclose(actions[:, 6], [0.5, 0.0, 0.5])


def test_euler_matches_scipy_when_available():
    rotation = pytest.importorskip("scipy.spatial.transform").Rotation
    angles = np.random.default_rng(1).uniform(-1.5, 1.5, (10, 3))
    np.testing.assert_allclose(
        tj.euler_xyz_to_matrix(angles), rotation.from_euler("xyz", angles).as_matrix(), atol=1e-12
    )


def _droid_folder(root, num_frames=12, fps=12):
    folder = root / "traj0"
    (folder / "recordings" / "MP4").mkdir(parents=True)
    frames = np.zeros((num_frames, 32, 48, 3), dtype=np.uint8)
    frames[:, :, :, 0] = (np.arange(num_frames) * 20)[:, None, None]  # brightness encodes the index
    write_video(folder / "recordings" / "MP4" / "cam1.mp4", frames, fps=fps)
    meta = {"left_mp4_path": "/data/droid/traj0/recordings/MP4/cam1.mp4"}
    (folder / "metadata_traj0.json").write_text(json.dumps(meta))
    (root / "droid.csv").write_text("traj0 0\n")
    return folder


def test_droid_reader_samples_frames_and_states_together(tmp_path, monkeypatch):
    _droid_folder(tmp_path)
    states = np.zeros((12, 7))
    states[:, 0] = np.arange(12)  # x encodes the frame index
    monkeypatch.setattr(tj, "_droid_states", lambda path: states)
    (traj,) = tj.read_droid(tmp_path / "droid.csv", fps=4.0, size=16)
    # 12 fps -> 4 fps keeps every 3rd frame: 0, 3, 6, 9
    assert traj.frames.shape == (4, 16, 16, 3)
    np.testing.assert_array_equal(traj.states[:, 0], [0, 3, 6, 9])
    np.testing.assert_allclose(traj.actions[:, 0], 3.0)
    np.testing.assert_allclose(traj.frames[:, 8, 8, 0], [0, 60, 120, 180], atol=8)
    assert traj.meta["fps"] == pytest.approx(4.0)


def test_droid_without_h5py_says_so(tmp_path, monkeypatch):
    folder = _droid_folder(tmp_path)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match="needs h5py"):
        tj.read_droid_trajectory(folder)
    with pytest.raises(KeyError, match="no camera 'right_mp4_path'"):
        tj.read_droid_trajectory(folder, camera="right_mp4_path")


def test_droid_h5_layout(tmp_path):
    h5py = pytest.importorskip("h5py")
    folder = _droid_folder(tmp_path)
    with h5py.File(folder / "trajectory.h5", "w") as h5:
        robot = h5.create_group("observation/robot_state")
        robot["cartesian_position"] = np.tile(np.arange(12.0)[:, None], (1, 6)) * 0.01
        robot["gripper_position"] = np.linspace(0, 1, 12)
    traj = tj.read_droid_trajectory(folder, fps=4.0, size=16)
    assert traj.states.shape == (4, 7) and traj.actions.shape == (3, 7)
    np.testing.assert_allclose(traj.states[:, 6], np.linspace(0, 1, 12)[::3], atol=1e-6)
