"""LeRobot datasets (issue 36): v3.0 and v2.1 written and read back (two cameras, h264 and AV1),
the converter's round trip, bit-identical training data, hub ids offline, and the errors that
name the episode and the field."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vjepa2.cli import main
from vjepa2.data.episodes import read_episode, read_index, write_episode, write_index
from vjepa2.data.lerobot import hub
from vjepa2.data.lerobot.format import LeRobotError, open_layout
from vjepa2.data.lerobot.read import read_columns
from vjepa2.data.lerobot.trajectories import read_lerobot
from vjepa2.data.lerobot.write import LeRobotEpisode, write_dataset
from vjepa2.data.trajectories import read_trajectories
from vjepa2.errors import MissingPathError, UnknownKeyError, UserError


def square_frames(xy: np.ndarray, size: int = 32, colour=(255, 255, 255)) -> np.ndarray:
    """A 6 px square at each (x, y) of xy (T, 2): smooth enough for lossy codecs to keep."""
    frames = np.full((len(xy), size, size, 3), 40, dtype=np.uint8)
    for t, (x, y) in enumerate(np.clip(xy, 0, size - 6).astype(int)):
        frames[t, y : y + 6, x : x + 6] = colour
    return frames


def two_camera_episodes(n: int = 3) -> list[LeRobotEpisode]:
    rng = np.random.default_rng(1)
    episodes = []
    for i in range(n):
        T = 6 + i
        states = np.cumsum(rng.uniform(-2, 2, (T, 2)), axis=0).astype(np.float32) + 12
        frames = {
            "observation.images.top": square_frames(states),
            "observation.images.wrist": square_frames(states[:, ::-1], size=24, colour=(255, 0, 0)),
        }
        action = rng.uniform(-1, 1, (T, 2)).astype(np.float32)
        extras = {"next.reward": rng.standard_normal(T).astype(np.float32), "success": rng.random(T) > 0.5}
        episodes.append(LeRobotEpisode(frames, states, action, f"task {i % 2}", extras, {"seed": i}))
    return episodes


@pytest.mark.parametrize("version", ["v3.0", "v2.1"])
@pytest.mark.parametrize("codec", ["h264", "av1"])
def test_a_written_dataset_reads_back(tmp_path, version, codec):
    episodes = two_camera_episodes()
    root = write_dataset(tmp_path / "ds", episodes, fps=10, version=version, codec=codec)
    layout = open_layout(root)
    assert layout.version == version and layout.video_keys == list(episodes[0].frames)
    assert [e.length for e in layout.episodes] == [6, 7, 8]
    for camera in layout.video_keys:
        trajectories, stats = read_lerobot(str(root), camera=camera, fps=0)
        for t, e in zip(trajectories, episodes):
            assert np.array_equal(t.states, e.state) and np.array_equal(t.actions, e.action[:-1])
            error = np.abs(t.frames.astype(int) - e.frames[camera]).mean()
            assert t.frames.shape == e.frames[camera].shape and error < 6, (camera, error)
    all_actions = np.concatenate([e.action for e in episodes]).astype(np.float64)
    np.testing.assert_allclose(stats.action_mean, all_actions.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.action_std, all_actions.std(0), rtol=1e-6)
    # extras keep their values and dtypes
    columns = read_columns(layout, layout.episodes[2], ["success", "next.reward"])
    assert columns["success"].dtype == bool and np.array_equal(
        columns["success"], episodes[2].extras["success"]
    )
    # the per-episode stats pooled equal meta/stats.json
    (root / "meta/stats.json").unlink()
    _, pooled = read_lerobot(str(root), fps=0)
    np.testing.assert_allclose(pooled.action_std, stats.action_std, rtol=1e-6)
    np.testing.assert_allclose(pooled.state_mean, stats.state_mean, rtol=1e-6)


def test_frames_are_kept_at_the_model_rate(tmp_path):
    root = write_dataset(tmp_path / "ds", two_camera_episodes(), fps=10, codec="lossless")
    full, _ = read_lerobot(str(root), fps=0)
    four, _ = read_lerobot(str(root), fps=4)  # every ceil(10 / 4) = 3rd frame
    for a, b in zip(full, four):
        assert np.array_equal(b.frames, a.frames[::3]) and np.array_equal(b.states, a.states[::3])
        assert b.meta["fps"] == pytest.approx(10 / 3)
    summed, stats = read_lerobot(str(root), fps=4, action="sum")  # delta actions over 3 frames
    for a, b in zip(full, summed):
        moves = np.concatenate([a.actions, np.zeros((1, 2), np.float32)])  # the last row is unused
        expected = [moves[k : k + 3].sum(0) for k in range(0, len(a.frames), 3)][:-1]
        np.testing.assert_allclose(b.actions, expected, rtol=1e-6)
    assert stats is None  # the dataset's stats describe single-frame actions


def test_end_effector_deltas_need_seven_dim_states(tmp_path):
    root = write_dataset(tmp_path / "ds", two_camera_episodes(), fps=10, codec="h264")
    with pytest.raises(LeRobotError, match="episode 0.*7-D observation.state"):
        read_lerobot(str(root), action="ee-delta")


@pytest.fixture(scope="module")
def our_episodes(tmp_path_factory):
    """Four episodes in our format, lossless, with the extras `worlds collect` writes."""
    root = tmp_path_factory.mktemp("ours")
    rng = np.random.default_rng(0)
    folders = []
    for i in range(4):
        states = np.cumsum(rng.uniform(-2, 2, (7, 2)), axis=0).astype(np.float32) + 12
        actions = rng.uniform(-1, 1, (7, 2)).astype(np.float32)
        extras = {
            "sim_states": rng.standard_normal((7, 4)),
            "rewards": rng.standard_normal(7),
            "success": rng.random(7) > 0.5,
        }
        meta = {"env": "reach", "seed": i, "goal": [0.1, 0.2], "action_names": ["dx", "dy"]}
        folders.append(
            write_episode(
                root / f"episode_{i:06d}",
                square_frames(states),
                actions,
                states,
                fps=10,
                meta=meta,
                extras=extras,
                lossless=True,
            )
        )
    write_index(root, folders)
    return root


@pytest.mark.parametrize("version", ["v3.0", "v2.1"])
def test_the_converter_round_trips(our_episodes, tmp_path, version):
    lerobot, back = tmp_path / "lerobot", tmp_path / "back"
    args = ["--codec", "lossless", "--version", version, "--out", str(lerobot)]
    assert main(["episodes", "to-lerobot", str(our_episodes), *args]) == 0
    assert main(["episodes", "from-lerobot", str(lerobot), "--lossless", "true", "--out", str(back)]) == 0
    for a, b in zip(read_index(our_episodes), read_index(back), strict=True):
        x, y = read_episode(a), read_episode(b)
        assert np.array_equal(x.frames, y.frames) and np.array_equal(x.actions, y.actions)
        assert np.array_equal(x.states, y.states)
        assert sorted(x.extras) == sorted(y.extras)
        for name in x.extras:
            assert x.extras[name].dtype == y.extras[name].dtype and np.array_equal(
                x.extras[name], y.extras[name]
            )
        assert {k: y.meta[k] for k in x.meta} == x.meta  # every fact, plus where it came from
    info = json.loads((lerobot / "meta/info.json").read_text())
    assert info["codebase_version"] == version and info["features"]["action"]["names"] == ["dx", "dy"]


def test_both_sources_give_bit_identical_training_data(our_episodes, tmp_path):
    main(["episodes", "to-lerobot", str(our_episodes), "--codec", "lossless", "--out", str(tmp_path / "lr")])
    ours = read_trajectories([str(our_episodes)])
    theirs, _ = read_lerobot(f"lerobot:{tmp_path / 'lr'}", fps=0)
    for a, b in zip(ours, theirs, strict=True):
        for name in ("frames", "actions", "states"):
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype and np.array_equal(x, y), name


def test_a_hub_id_goes_through_snapshot_download(tmp_path, monkeypatch):
    root = write_dataset(tmp_path / "snapshot", two_camera_episodes(2), fps=10, codec="h264")
    calls = []

    def fake_download(repo_id, repo_type=None, revision=None):
        calls.append((repo_id, repo_type, revision))
        return str(root)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    monkeypatch.chdir(tmp_path)
    trajectories, _ = read_lerobot("lerobot:someone/pick-cube@v3.0", fps=0)
    assert calls == [("someone/pick-cube", "dataset", "v3.0")] and len(trajectories) == 2


def test_offline_without_the_dataset_in_the_cache_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        MissingPathError, match="no such folder, and as a hub id not in the Hugging Face cache"
    ):
        hub.resolve("lerobot:nobody/no-such-set")


@pytest.fixture
def dataset(tmp_path):
    return write_dataset(tmp_path / "ds", two_camera_episodes(), fps=10, codec="h264")


def test_a_missing_video_file_is_named(dataset):
    (dataset / "videos/observation.images.top/chunk-000/file-000.mp4").unlink()
    with pytest.raises(
        MissingPathError, match=r"episode 0, observation.images.top\): the video file is missing"
    ):
        read_lerobot(str(dataset), fps=0)


def test_timestamps_off_the_video_frames_are_named(dataset):
    path = next((dataset / "data").rglob("*.parquet"))
    table = pq.read_table(path)
    shifted = pa.array(table["timestamp"].to_numpy() + np.float32(0.04))  # between two frames
    pq.write_table(table.set_column(table.column_names.index("timestamp"), "timestamp", shifted), path)
    with pytest.raises(
        LeRobotError, match=r"episode 0, observation.images.top\): 6 timestamps have no video frame"
    ):
        read_lerobot(str(dataset), fps=0)


def test_an_unknown_camera_is_named(dataset):
    with pytest.raises(UnknownKeyError, match="no camera 'observation.images.side'; its cameras"):
        read_lerobot(str(dataset), camera="observation.images.side")


def test_a_name_from_info_json_stays_inside_the_dataset(dataset):
    info = json.loads((dataset / "meta/info.json").read_text())
    info["data_path"] = "../../etc/{chunk_index}-{file_index}.parquet"
    (dataset / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(LeRobotError, match="meta/info.json"):
        open_layout(dataset)


def test_episodes_of_another_action_width_are_refused(dataset, our_episodes):
    from vjepa2.train.ac import ACDataConfig, read_sources

    wide = dataset.parent / "wide"
    episodes = two_camera_episodes()
    for e in episodes:
        e.action = np.concatenate([e.action, e.action], axis=1)
    write_dataset(wide, episodes, fps=10, codec="h264")
    cfg = ACDataConfig(source=[f"lerobot:{wide}", str(our_episodes)], fps=0, camera="observation.images.top")
    with pytest.raises(
        UserError, match=r"actions/states of width \(2, 2\), .* has \(4, 2\): one model takes one width"
    ):
        read_sources(cfg)


def test_train_ac_learns_the_same_weights_from_both_sources(our_episodes, tmp_path):
    from safetensors.torch import load_file

    main(["episodes", "to-lerobot", str(our_episodes), "--codec", "lossless", "--out", str(tmp_path / "lr")])
    tiny = ["--model.encoder-overrides", "{depth: 1}", "--model.dim", "32", "--model.depth", "1"]
    tiny += ["--model.heads", "1", "--data.num-frames", "3", "--run.batch-size", "4", "--run.dtype", "fp32"]
    tiny += ["--run.steps", "3", "--schedule.warmup-steps", "1", "data.fps=0", "data.stats=train"]
    sources = {"ours": str(our_episodes), "lerobot": f"lerobot:{tmp_path / 'lr'}"}
    for name, source in sources.items():
        assert (
            main(["train-ac", "--data.source", f"[{source}]", "--run.out", str(tmp_path / name), *tiny]) == 0
        )
    ours, theirs = (load_file(tmp_path / name / "model" / "model.safetensors") for name in sources)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key].equal(theirs[key]), key


def test_a_v30_dataset_split_over_several_files_reads_back(tmp_path):
    """Published v3.0 sets span data/, video and episode-table files: episode 2 moves to file-001."""
    episodes = two_camera_episodes()
    root = write_dataset(tmp_path / "a", episodes[:2], fps=10, codec="lossless")
    other = write_dataset(tmp_path / "b", episodes[2:], fps=10, codec="lossless")
    table = pq.read_table(other / "data/chunk-000/file-000.parquet")
    moved = table.set_column(table.column_names.index("episode_index"), "episode_index", pa.array([2] * 8))
    pq.write_table(moved, root / "data/chunk-000/file-001.parquet")
    for key in episodes[0].frames:
        (other / f"videos/{key}/chunk-000/file-000.mp4").rename(root / f"videos/{key}/chunk-000/file-001.mp4")
    row = pq.read_table(other / "meta/episodes/chunk-000/file-000.parquet").to_pylist()[0]
    row.update({"episode_index": 2, "data/file_index": 1, "dataset_from_index": 13, "dataset_to_index": 21})
    row.update({f"videos/{key}/file_index": 1 for key in episodes[0].frames})
    pq.write_table(pa.Table.from_pylist([row]), root / "meta/episodes/chunk-000/file-001.parquet")
    (root / "meta/stats.json").unlink()  # pooled from the per-episode stats of both tables
    trajectories, stats = read_lerobot(str(root), camera="observation.images.wrist", fps=0)
    for t, e in zip(trajectories, episodes, strict=True):
        assert np.array_equal(t.frames, e.frames["observation.images.wrist"]) and np.array_equal(
            t.states, e.state
        )
    all_states = np.concatenate([e.state for e in episodes]).astype(np.float64)
    np.testing.assert_allclose(stats.state_std, all_states.std(0), rtol=1e-6)


def test_from_lerobot_keeps_a_camera_at_a_rate_with_every_other_feature(tmp_path):
    episodes = two_camera_episodes()
    root = write_dataset(tmp_path / "ds", episodes, fps=10, version="v2.1", codec="lossless")
    args = ["--camera", "observation.images.wrist", "--fps", "5", "--lossless", "true"]
    assert main(["episodes", "from-lerobot", str(root), *args, "--out", str(tmp_path / "eps")]) == 0
    for folder, e in zip(read_index(tmp_path / "eps"), episodes, strict=True):
        got = read_episode(folder)
        assert np.array_equal(got.frames, e.frames["observation.images.wrist"][::2])
        assert np.array_equal(got.actions, e.action[::2]) and np.array_equal(got.states, e.state[::2])
        assert np.array_equal(got.extras["success"], e.extras["success"][::2])
        assert got.meta["fps"] == 5 and got.meta["task"] == e.task and got.meta["seed"] == e.meta["seed"]
