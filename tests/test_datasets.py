"""Index reading, clip data sets (with corrupt files), weighted mixtures and the resumable sampler."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vjepa2.data.datasets import (
    MixtureDataset,
    VideoDataset,
    WeightedDistributedSampler,
    balanced_subset,
    collate_skip_bad,
    read_index,
)
from vjepa2.data.video import write_video

NUM_FRAMES, CROP = 4, 32


def noise_video(path, seed, num_frames=12):
    frames = np.random.default_rng(seed).integers(0, 256, (num_frames, 36, 44, 3), dtype=np.uint8)
    return write_video(path, frames, fps=8)


@pytest.fixture
def tiny_set(tmp_path):
    """Two classes of videos, an image, a corrupt file; indexed by a space-separated CSV."""
    root = tmp_path / "data"
    for label, name in enumerate(["cat", "dog"]):
        (root / name).mkdir(parents=True)
        for k in range(2):
            noise_video(root / name / f"v{k}.mp4", seed=10 * label + k)
    image = np.random.default_rng(5).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(image).save(root / "dog" / "still.png")
    (root / "cat" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    lines = ["# path label", "cat/v0.mp4 0", "cat/v1.mp4 0", "dog/v0.mp4 1", "", "dog/v1.mp4 1"]
    lines += ["dog/still.png 1", "cat/broken.mp4 0"]
    (root / "index.csv").write_text("\n".join(lines) + "\n")
    return root


def make_dataset(source, **kw):
    kw = {"num_frames": NUM_FRAMES, "fps": 4, "crop": CROP, **kw}
    return VideoDataset(source, **kw)


def test_csv_index_resolves_paths_and_accepts_commas(tmp_path, tiny_set):
    samples = read_index(tiny_set / "index.csv")
    assert [(p.relative_to(tiny_set).as_posix(), y) for p, y in samples][:3] == [
        ("cat/v0.mp4", 0),
        ("cat/v1.mp4", 0),
        ("dog/v0.mp4", 1),
    ]
    assert len(samples) == 6
    (tmp_path / "commas.txt").write_text(f"{tiny_set}/cat/v0.mp4,3\nmy clip.mp4 2\n")
    assert read_index(tmp_path / "commas.txt") == [
        (tiny_set / "cat/v0.mp4", 3),
        (tmp_path / "my clip.mp4", 2),
    ]


def test_malformed_csv_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a.mp4 0\nb.mp4 zero\n")
    with pytest.raises(ValueError, match=r"bad\.csv:2: expected 'path label'"):
        read_index(bad)
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        read_index(tmp_path / "nowhere.csv")


def test_folder_index_labels_by_sorted_class_folder(tmp_path, tiny_set):
    samples = read_index(tiny_set)
    names = {p.relative_to(tiny_set).as_posix(): y for p, y in samples}
    assert names == {
        "cat/broken.mp4": 0,
        "cat/v0.mp4": 0,
        "cat/v1.mp4": 0,
        "dog/still.png": 1,
        "dog/v0.mp4": 1,
        "dog/v1.mp4": 1,
    }  # index.csv is not media
    flat = tmp_path / "flat"
    flat.mkdir()
    noise_video(flat / "a.mp4", 0)
    assert read_index(flat) == [(flat / "a.mp4", 0)]
    (flat / "sub").mkdir()
    noise_video(flat / "sub" / "b.mp4", 1)
    with pytest.raises(ValueError, match="loose files"):
        read_index(flat)


def test_train_items_are_keyed_by_draw(tiny_set):
    data = make_dataset(tiny_set / "index.csv", train=True, seed=3)
    item = data[(0, 7)]
    assert item["clip"].shape == (NUM_FRAMES, 3, CROP, CROP) and item["clip"].dtype == torch.float32
    assert (item["label"], item["index"]) == (0, 0) and item["path"].endswith("cat/v0.mp4")
    torch.testing.assert_close(data[(0, 7)]["clip"], item["clip"])  # same key, same clip
    assert not torch.equal(data[(0, 8)]["clip"], item["clip"])  # another draw, another crop
    assert not torch.equal(make_dataset(tiny_set / "index.csv", seed=4)[(0, 7)]["clip"], item["clip"])


def test_images_become_still_clips(tiny_set):
    for train in (True, False):
        clip = make_dataset(tiny_set / "index.csv", train=train)[4]["clip"]
        assert clip.shape == (NUM_FRAMES, 3, CROP, CROP)
        assert all(torch.equal(frame, clip[0]) for frame in clip)


def test_eval_multi_clip(tiny_set):
    data = make_dataset(tiny_set / "index.csv", train=False, num_clips=2, frame_step=1)
    clips = data[2]["clip"]
    assert clips.shape == (2, NUM_FRAMES, 3, CROP, CROP)
    torch.testing.assert_close(clips, data[2]["clip"])
    assert not torch.equal(clips[0], clips[1])  # different windows of the video


def test_corrupt_file_is_skipped_and_counted(tiny_set, caplog):
    data = make_dataset(tiny_set / "index.csv")
    with caplog.at_level(logging.WARNING, logger="vjepa2.data.datasets"):
        assert data[5] is None
    assert "broken.mp4" in caplog.text
    batch = collate_skip_bad([data[0], data[5], data[4]])
    assert batch["num_skipped"] == 1 and batch["clip"].shape == (2, NUM_FRAMES, 3, CROP, CROP)
    assert batch["label"].tolist() == [0, 1] and batch["index"].tolist() == [0, 4]
    empty = collate_skip_bad([None, None])
    assert empty["clip"] is None and empty["num_skipped"] == 2 and len(empty["label"]) == 0


def test_dataloader_workers_skip_bad_files_deterministically(tiny_set):
    data = make_dataset(tiny_set / "index.csv")
    weights = np.ones(len(data))
    weights[5] = 3.0  # draw the broken file often

    def run(num_workers):
        sampler = WeightedDistributedSampler(weights, num_samples=12, seed=1)
        loader = torch.utils.data.DataLoader(
            data, batch_size=4, sampler=sampler, num_workers=num_workers, collate_fn=collate_skip_bad
        )
        return list(loader), sampler

    batches, sampler = run(2)
    expected_bad = sum(index == 5 for index, _ in sampler)
    assert expected_bad > 0
    assert sum(b["num_skipped"] for b in batches) == expected_bad
    assert sum(len(b["index"]) for b in batches) == 12 - expected_bad
    serial, _ = run(0)
    for a, b in zip(batches, serial):
        assert a["index"].tolist() == b["index"].tolist()
        if a["clip"] is not None:
            torch.testing.assert_close(a["clip"], b["clip"])


def test_mixture_weights_split_over_samples(tiny_set, tmp_path):
    videos = make_dataset(tiny_set / "index.csv")
    other = tmp_path / "other"
    other.mkdir()
    noise_video(other / "x.mp4", 9)
    noise_video(other / "y.mp4", 8)
    mixture = MixtureDataset([videos, make_dataset(other)], weights=[0.25, 0.75])
    assert len(mixture) == 8
    np.testing.assert_allclose(mixture.sample_weights, [0.25 / 6] * 6 + [0.75 / 2] * 2)
    item = mixture[(7, 3)]
    assert item["dataset"] == 1 and item["index"] == 1 and item["path"].endswith("y.mp4")
    torch.testing.assert_close(item["clip"], mixture.datasets[1][(1, 3)]["clip"])
    assert mixture[5] is None  # the broken file of the first data set
    counts = np.bincount(
        [i for i, _ in WeightedDistributedSampler(mixture.sample_weights, 4000)], minlength=8
    )
    assert abs(counts[6:].sum() / 4000 - 0.75) < 0.03
    with pytest.raises(ValueError, match="one weight per data set"):
        MixtureDataset([videos], weights=[0.5, 0.5])


def test_sampler_ranks_share_one_stream_and_resume():
    weights = np.arange(1, 11, dtype=float)
    ranks = [list(WeightedDistributedSampler(weights, 103, rank=r, world_size=4, seed=7)) for r in range(4)]
    assert all(len(keys) == 25 for keys in ranks)
    draws = sorted(d for keys in ranks for _, d in keys)
    assert draws == list(range(100))  # disjoint slices of one global stream
    stream = WeightedDistributedSampler(weights, 103, seed=7).global_stream(0)
    assert all(index == stream[draw] for keys in ranks for index, draw in keys)

    sampler = WeightedDistributedSampler(weights, 103, rank=1, world_size=4, seed=7)
    sampler.set_epoch(2)
    epoch2 = list(sampler)
    assert epoch2 != ranks[1] and epoch2[0][1] == 2 * 103 + 1
    sampler.set_epoch(2, start_index=10)
    assert len(sampler) == 15 and list(sampler) == epoch2[10:]
    with pytest.raises(ValueError, match="rank"):
        WeightedDistributedSampler(weights, 10, rank=4, world_size=4)


def test_sampler_follows_weights():
    weights = np.array([1.0, 0.0, 3.0])
    counts = np.bincount([i for i, _ in WeightedDistributedSampler(weights, 8000, seed=0)], minlength=3)
    assert counts[1] == 0 and abs(counts[2] / 8000 - 0.75) < 0.02


def test_balanced_subset_is_balanced_seeded_and_checked():
    samples = [(Path(f"clip{i}.mp4"), label) for i, label in enumerate([0] * 10 + [1] * 6 + [2] * 2)]
    subset = balanced_subset(samples, 9, seed=3)
    assert sorted(np.bincount([label for _, label in subset])) == [2, 3, 4]  # class 2 gives all it has
    assert len(set(subset)) == 9 and set(subset) <= set(samples)
    assert balanced_subset(samples, 9, seed=3) == subset
    assert balanced_subset(samples, 9, seed=4) != subset
    assert np.bincount([label for _, label in balanced_subset(samples, 6, seed=0)]).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="19 clips of 18"):
        balanced_subset(samples, 19, seed=0)
