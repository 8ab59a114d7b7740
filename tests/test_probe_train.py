"""Probe training: the head grid, the cosine schedule, features (layers, single frame, random
encoders), the feature cache, and ``vjepa2 probe train`` end to end on generated videos."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vjepa2.cli import main
from vjepa2.data.video import write_video
from vjepa2.errors import UserError
from vjepa2.evals import features
from vjepa2.evals.features import FeatureCache, FeatureExtractor, load_encoder, read_layers, single_frame
from vjepa2.evals.head_grid import (
    best_head,
    cosine_factor,
    heads_step,
    make_heads,
    make_optimizer,
    set_head_lrs,
)
from vjepa2.evals.probes import label_names
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.presets import encoder_config
from vjepa2.models.probe import AttentiveClassifier, ProbeConfig

COLOURS = {0: (200, 40, 40), 1: (40, 60, 200), 2: (40, 190, 60)}


def write_colour_videos(folder, labels, name, size=32, frames=8, seed=0):
    """Noisy videos whose label is their dominant colour; returns the 'path label' CSV."""
    rng = np.random.default_rng(seed)
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, label in enumerate(labels):
        clip = rng.integers(0, 60, size=(frames, size, size, 3)) + np.array(COLOURS[label])
        path = f"videos/{name}_{i}.mp4"
        write_video(folder / path, np.clip(clip, 0, 255).astype(np.uint8), fps=4)
        lines.append(f"{path} {label}\n")
    index = folder / f"{name}.csv"
    index.write_text("".join(lines))
    return index


def test_cosine_factor():
    assert cosine_factor(0, 100) == 1.0
    assert cosine_factor(50, 100) == pytest.approx(0.5)
    assert cosine_factor(100, 100) == pytest.approx(0.0)
    assert cosine_factor(0, 100, warmup=10) == pytest.approx(0.1)
    assert cosine_factor(9, 100, warmup=10) == pytest.approx(1.0)
    assert cosine_factor(55, 100, warmup=10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_head_grid_learns_a_token_task_and_picks_the_best():
    # Class c raises feature c of every token: clearly learnable from the frozen tokens.
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (256,), generator=g)
    tokens = torch.randn(256, 6, 16, generator=g)
    tokens[:, :, :4] += 2.0 * F.one_hot(labels, 4)[:, None]
    cfg = ProbeConfig(dim=16, heads=2, depth=2, num_classes=4)
    heads = make_heads(lambda: AttentiveClassifier(cfg), lrs=[0.0, 1e-2], wds=[0.01], seed=0)
    assert [(h.lr, h.wd) for h in heads] == [(0.0, 0.01), (1e-2, 0.01)]
    optimizer = make_optimizer(heads)
    steps = 40
    for step in range(steps):
        batch = torch.randint(0, 192, (32,), generator=g)
        set_head_lrs(optimizer, heads, cosine_factor(step, steps))

        def loss_of(module, batch=batch):
            logits = module(tokens[batch])
            return F.cross_entropy(logits, labels[batch]), logits

        losses, outputs = heads_step(optimizer, heads, loss_of)
        assert len(losses) == 2 and outputs[1].shape == (32, 4)
    with torch.no_grad():
        acc = [(h.module(tokens[192:]).argmax(-1) == labels[192:]).float().mean().item() for h in heads]
    assert acc[1] >= 0.95, acc  # held-out samples
    assert acc[0] < 0.7  # lr 0: the head never moved
    assert best_head(acc) == 1
    assert best_head([50.0, 50.0, 10.0]) == 0  # ties go to the first


def test_random_encoder_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = load_encoder("random:tiny", seed=0), load_encoder("random:tiny", seed=0)
    assert torch.equal(torch.rand(1), before)
    c = load_encoder("random:tiny", seed=1)
    w = "patch_embed.proj.weight"
    assert torch.equal(a.encoder.state_dict()[w], b.encoder.state_dict()[w])
    assert not torch.equal(a.encoder.state_dict()[w], c.encoder.state_dict()[w])
    assert a.predictor is not None and not any(p.requires_grad for p in a.parameters())
    with pytest.raises(KeyError, match="unknown encoder preset"):
        load_encoder("random:nope")


def test_random_twin_of_a_checkpoint_has_its_shape_and_fresh_weights(tmp_path):
    trained = load_encoder("random:tiny", seed=5)
    trained.encoder = VideoEncoder(encoder_config("tiny", depth=2, patch=8))
    trained.save(tmp_path / "ckpt")
    twin = load_encoder(f"random:{tmp_path / 'ckpt'}", seed=0)
    assert twin.encoder.cfg == trained.encoder.cfg and twin.predictor.cfg == trained.predictor.cfg
    w = "patch_embed.proj.weight"
    assert not torch.equal(twin.encoder.state_dict()[w], trained.encoder.state_dict()[w])


def test_layers_concatenate_along_tokens_or_features():
    model = load_encoder("random:tiny")
    views = torch.randn(2, 1, 1, 4, 3, 32, 32)  # (B, M, S, T, C, H, W): 2 x 2 x 2 = 8 tokens
    last = FeatureExtractor(model, dtype="fp32").encode(views)
    assert last.shape == (2, 1, 8, 192)
    same = FeatureExtractor(model, layers=[-1], dtype="fp32").encode(views)
    assert torch.allclose(same, last, atol=1e-5)
    by_tokens = FeatureExtractor(model, layers=[2, -1], dtype="fp32")
    by_features = FeatureExtractor(model, layers=[2, -1], concat="features", dtype="fp32")
    assert by_tokens.encode(views).shape == (2, 1, 16, 192) and by_tokens.dim == 192
    assert by_features.encode(views).shape == (2, 1, 8, 384) and by_features.dim == 384
    two_segments = torch.randn(2, 1, 2, 4, 3, 32, 32)
    assert FeatureExtractor(model, dtype="fp32").encode(two_segments).shape == (2, 1, 16, 192)


def test_single_frame_repeats_the_middle_frame():
    views = torch.randn(2, 1, 1, 6, 3, 4, 4)
    still = single_frame(views)
    assert still.shape == views.shape
    for t in range(6):
        assert torch.equal(still[..., t, :, :, :], views[..., 3, :, :, :])


def test_label_names(tmp_path):
    (tmp_path / "labels.json").write_text(
        json.dumps({"tasks": {"hidden": {"classes": ["r", "g", "b", "y"]}}})
    )
    assert label_names(str(tmp_path / "hidden_train.csv")) == ["r", "g", "b", "y"]
    assert label_names(str(tmp_path / "other.csv")) is None
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n")
    assert label_names("", str(names), 2) == ["cat", "dog"]
    with pytest.raises(ValueError, match="2 label names for 3 classes"):
        label_names("", str(names), 3)


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("colours")
    train = write_colour_videos(folder, [0, 1, 2] * 4, "train", seed=0)
    val = write_colour_videos(folder, [0, 1, 2, 2, 1, 0], "val", seed=1)
    return folder, train, val


def train_args(colour_data, out, cache_dir):
    _, train, val = colour_data
    return [
        "probe", "train", "--train", str(train), "--val", str(val), "--out", str(out),
        "--cache-dir", str(cache_dir), "--num-frames", "4", "--crop", "32", "--epochs", "6", "--probe-depth", "2",
        "--batch-size", "4", "--workers", "0", "--dtype", "fp32", "lrs=[1e-3,3e-3]", "wds=[0.01]",
    ]  # fmt: skip


def test_probe_train_end_to_end_and_cache(colour_data, tmp_path, monkeypatch, capsys, user_error):
    cache = tmp_path / "cache"
    assert main(train_args(colour_data, tmp_path / "run1", cache)) == 0
    results = json.loads((tmp_path / "run1" / "heads.json").read_text())
    assert len(results["heads"]) == 2 and results["metric"] == "val_top1"
    assert results["best"]["val_top1"] == max(h["val_top1"] for h in results["heads"])
    assert results["best"]["val_top1"] >= 80.0  # colour is easy even for a random encoder
    probe_dir = tmp_path / "run1" / "probe"
    assert (probe_dir / "model.safetensors").is_file() and (probe_dir / "features.json").is_file()
    rows = [json.loads(line) for line in (tmp_path / "run1" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and rows[-1]["encoder_calls"] == rows[0]["encoder_calls"]  # encoded once

    # Round trip: the saved probe, evaluated afresh (encoder rerun), scores what training reported.
    _, _, val = colour_data
    args = ["probe", "eval", "--probe", str(probe_dir), "--data", str(val), "--out", str(tmp_path / "eval")]
    assert main(args + ["--workers", "0", "--dtype", "fp32"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["top1"] == pytest.approx(results["best"]["val_top1"])

    # Second run: every clip comes from the cache; neither the encoder nor the decoder runs.
    def refuse(*args, **kwargs):
        raise AssertionError("the cache should have served this clip")

    monkeypatch.setattr(VideoEncoder, "forward", refuse)
    monkeypatch.setattr(features, "read_clip", refuse)
    assert main(train_args(colour_data, tmp_path / "run2", cache)) == 0
    again = json.loads((tmp_path / "run2" / "heads.json").read_text())
    assert [h["val_top1_per_epoch"] for h in again["heads"]] == [
        h["val_top1_per_epoch"] for h in results["heads"]
    ]

    # Low-shot: 6 of the 12 training clips, 2 per colour; still all from the cache. Validation
    # every 4 epochs and after the last one; the last picks the head.
    capsys.readouterr()
    run3 = tmp_path / "run3"
    assert main(train_args(colour_data, run3, cache) + ["--train-clips", "6", "--eval-every", "4"]) == 0
    assert "6 train / 6 val clips" in capsys.readouterr().out
    low = json.loads((run3 / "heads.json").read_text())
    assert low["evaluated_epochs"] == [4, 6]
    assert all(len(h["val_top1_per_epoch"]) == 2 for h in low["heads"])
    assert low["best"]["val_top1"] == max(h["val_top1_per_epoch"][-1] for h in low["heads"])
    rows = [json.loads(line) for line in (run3 / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_top1"] is not None for r in rows] == [False, False, False, True, False, True]
    assert "eval_every: must be 1 or more, got 0" in user_error(
        train_args(colour_data, tmp_path / "run4", cache) + ["--eval-every", "0"]
    )
    assert not (tmp_path / "run4").exists()


def test_probe_train_needs_a_training_index(user_error, tmp_path):
    assert "give a training index with --train" in user_error(["probe", "train"])
    missing = tmp_path / "missing.csv"
    line = user_error(["probe", "train", "--train", str(missing), "--out", str(tmp_path / "out")])
    assert line == f"vjepa2 probe train: error: data source not found: {missing}"
    assert not (tmp_path / "out").exists(), "a missing data file is found out before anything is written"


def test_feature_cache_misses_a_video_rewritten_in_place(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"first")
    cache = FeatureCache(tmp_path / "cache", {"encoder": "x"})
    cache.put(str(video), torch.ones(2, 3))
    assert torch.equal(cache.get(str(video)), torch.ones(2, 3))
    video.write_bytes(b"second, longer")
    assert cache.get(str(video)) is None


def test_levels_of_a_v21_encoder_read_each_through_its_norm():
    model = load_encoder("random:tiny-2.1")
    layers = read_layers(model, [], levels=True)
    assert layers == list(model.encoder.cfg.level_layers) == [1, 3, 5, 7]
    views = torch.randn(2, 1, 1, 4, 3, 32, 32)  # 8 tokens per clip
    by_features = FeatureExtractor(model, layers, concat="features", dtype="fp32")
    tokens = by_features.encode(views)
    assert tokens.shape == (2, 1, 8, 4 * 192) and by_features.dim == 4 * 192
    with torch.no_grad():
        four = model.encode(views.flatten(0, 2), levels=True)  # the 4-level output
    torch.testing.assert_close(tokens[:, 0], four, atol=1e-5, rtol=0)
    assert FeatureExtractor(model, layers, dtype="fp32").encode(views).shape == (2, 1, 4 * 8, 192)
    with pytest.raises(UserError, match="levels need a V-JEPA 2.1 encoder; this one is V-JEPA 2.0"):
        read_layers(load_encoder("random:tiny"), [], levels=True)
    with pytest.raises(UserError, match="not both"):
        read_layers(model, [1], levels=True)


def test_layers_must_be_blocks_of_the_encoder():
    model = load_encoder("random:tiny")  # 6 blocks: -6 .. 5, not wrapped around past the depth
    assert read_layers(model, [-6, 5]) == [-6, 5]
    with pytest.raises(UserError, match=r"layers \[6\]: the encoder has 6 blocks"):
        read_layers(model, [1, 6])


def test_probe_train_on_v21_levels(colour_data, tmp_path, user_error):
    load_encoder("random:tiny-2.1", seed=2).save(tmp_path / "tiny21")
    cache = tmp_path / "cache"
    args = train_args(colour_data, tmp_path / "run21", cache) + ["--encoder", str(tmp_path / "tiny21")]
    assert main(args + ["--levels", "true", "--layer-concat", "features", "--epochs", "1"]) == 0
    spec = json.loads((tmp_path / "run21" / "probe" / "features.json").read_text())
    assert spec["version"] == "2.1" and spec["levels"] is True and spec["layers"] == [1, 3, 5, 7]
    # 2.0 features of the same clips land in another cache folder: the key holds version and levels
    assert main(train_args(colour_data, tmp_path / "run20", cache) + ["--epochs", "1"]) == 0
    specs = [json.loads(f.read_text()) for f in cache.glob("*/spec.json")]
    assert sorted((s["version"], s["levels"]) for s in specs) == [("2.0", False), ("2.1", True)]
    # the saved probe reads the 4 levels again; a 2.0 encoder is refused
    _, _, val = colour_data
    probe = str(tmp_path / "run21" / "probe")
    eval_args = ["probe", "eval", "--probe", probe, "--data", str(val), "--workers", "0", "--dtype", "fp32"]
    assert main(eval_args + ["--out", str(tmp_path / "eval21")]) == 0
    line = user_error(eval_args + ["--out", str(tmp_path / "eval20"), "--encoder", "random:tiny"])
    assert "trained on V-JEPA 2.1 features; random:tiny is V-JEPA 2.0" in line
