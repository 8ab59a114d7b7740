"""The episode format: round trips, the index, and clear errors that name the file."""

import json

import numpy as np
import pytest

from vjepa2.data.episodes import EpisodeError, read_episode, read_index, write_episode, write_index


def make_arrays(length=5, size=16, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (length, size, size, 3), dtype=np.uint8)
    return frames, rng.normal(size=(length, 7)), rng.normal(size=(length, 3))


def test_lossless_round_trip_and_unpacking(tmp_path):
    frames, actions, states = make_arrays()
    extras = {"sim_states": np.arange(10.0).reshape(5, 2), "success": np.zeros(5, dtype=bool)}
    write_episode(
        tmp_path / "ep", frames, actions, states, fps=10, meta={"robot": "arm"}, extras=extras, lossless=True
    )
    episode = read_episode(tmp_path / "ep")
    got_frames, got_actions, got_states, meta = episode
    assert np.array_equal(got_frames, frames) and len(episode) == 5
    assert got_actions.dtype == got_states.dtype == np.float32
    np.testing.assert_allclose(got_actions, actions, rtol=1e-6)
    np.testing.assert_allclose(got_states, states, rtol=1e-6)
    assert meta["robot"] == "arm" and meta["fps"] == 10 and meta["action_dim"] == 7 and meta["state_dim"] == 3
    assert np.array_equal(episode.extras["sim_states"], extras["sim_states"])
    assert episode.extras["success"].dtype == bool


def test_video_round_trip_and_lazy_frames(tmp_path):
    frames = np.zeros((6, 32, 32, 3), dtype=np.uint8)
    frames[:, 8:24, 8:24] = (200, 60, 30)
    write_episode(tmp_path / "ep", frames, np.zeros((6, 2)), np.ones((6, 2)), fps=4)
    assert (tmp_path / "ep" / "frames.mp4").is_file()
    episode = read_episode(tmp_path / "ep")
    assert episode.frames.shape == frames.shape and np.abs(episode.frames.astype(float) - frames).mean() < 3
    lazy = read_episode(tmp_path / "ep", load_frames=False)
    assert lazy.frames is None and len(lazy) == 6


def test_index_resolves_relative_folders(tmp_path):
    for i in range(2):
        write_episode(tmp_path / f"episode_{i}", *make_arrays(3, 8, i), fps=5, lossless=True)
    index = write_index(tmp_path, [tmp_path / "episode_0", tmp_path / "episode_1"], [3, 3])
    assert index.read_text().splitlines() == ["episode_0 3", "episode_1 3"]
    assert read_index(tmp_path) == [tmp_path / "episode_0", tmp_path / "episode_1"]
    (tmp_path / "mine.csv").write_text("# my robot\nepisode_1\n\n")
    assert read_index(tmp_path / "mine.csv") == [tmp_path / "episode_1"]


def test_index_of_folders_given_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_episode("data/ep", *make_arrays(3, 8), fps=5, lossless=True)
    write_index("data", ["data/ep"])
    assert (tmp_path / "data" / "index.csv").read_text() == "ep\n"
    assert [p.resolve() for p in read_index("data")] == [tmp_path / "data" / "ep"]


def test_write_refuses_mismatched_lengths(tmp_path):
    frames, actions, states = make_arrays()
    with pytest.raises(EpisodeError, match="actions has 4 rows but the episode has 5 frames"):
        write_episode(tmp_path / "ep", frames, actions[:4], states, fps=5)
    with pytest.raises(EpisodeError, match="frames must be uint8"):
        write_episode(tmp_path / "ep", frames.astype(np.float32), actions, states, fps=5)
    with pytest.raises(EpisodeError, match="NaN"):
        write_episode(tmp_path / "ep", frames, np.full_like(actions, np.nan), states, fps=5)


@pytest.fixture
def episode_dir(tmp_path):
    return write_episode(tmp_path / "ep", *make_arrays(), fps=5, lossless=True)


def test_missing_and_broken_meta(episode_dir):
    (episode_dir / "meta.json").write_text("{not json")
    with pytest.raises(EpisodeError, match=r"meta\.json: not valid JSON"):
        read_episode(episode_dir)
    (episode_dir / "meta.json").write_text(json.dumps({"format": "vjepa2-episode"}))
    with pytest.raises(EpisodeError, match="'fps' must be a positive number"):
        read_episode(episode_dir)
    (episode_dir / "meta.json").unlink()
    with pytest.raises(EpisodeError, match=r"meta\.json: missing"):
        read_episode(episode_dir)


def test_frame_count_mismatch_names_the_frames_file(episode_dir):
    frames, actions, states = make_arrays()
    np.savez(episode_dir / "data.npz", actions=actions[:4], states=states[:4])
    with pytest.raises(EpisodeError, match=r"frames\.npy: 5 frames but data\.npz has 4 rows"):
        read_episode(episode_dir)


def test_bad_arrays_name_the_npz(episode_dir):
    frames, actions, states = make_arrays()
    np.savez(episode_dir / "data.npz", actions=actions)
    with pytest.raises(EpisodeError, match=r"data\.npz: has no 'states' array"):
        read_episode(episode_dir)
    np.savez(
        episode_dir / "data.npz", actions=actions, states=states, notes=np.array([{"a": 1}] * 5, dtype=object)
    )
    with pytest.raises(EpisodeError, match=r"data\.npz: not a readable npz file"):
        read_episode(episode_dir)  # object arrays would need pickle: refused
    np.savez(episode_dir / "data.npz", actions=actions[:, 0], states=states)
    with pytest.raises(EpisodeError, match="actions must be 2-D"):
        read_episode(episode_dir)


def test_frames_files_are_checked(episode_dir):
    (episode_dir / "frames.mp4").write_bytes(b"")
    with pytest.raises(EpisodeError, match="both frames.mp4 and frames.npy"):
        read_episode(episode_dir)
    (episode_dir / "frames.npy").unlink()
    with pytest.raises(EpisodeError, match=r"frames\.mp4: empty file"):
        read_episode(episode_dir)


def test_index_errors(tmp_path):
    with pytest.raises(EpisodeError, match="index file not found"):
        read_index(tmp_path)
    (tmp_path / "index.csv").write_text("ep_0 five\n")
    with pytest.raises(EpisodeError, match="line 1: expected 'folder \\[num_frames\\]'"):
        read_index(tmp_path)
    (tmp_path / "index.csv").write_text("# nothing\n")
    with pytest.raises(EpisodeError, match="lists no episodes"):
        read_index(tmp_path)
    with pytest.raises(EpisodeError, match="episode folder not found"):
        read_episode(tmp_path / "nowhere")
