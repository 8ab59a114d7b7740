"""Probe evaluation and classification: metrics on hand-checkable cases, multi-clip x multi-view
reading, ``vjepa2 probe eval`` / ``vjepa2 classify`` through the CLI, transformers checkpoints."""

import json

import numpy as np
import pytest
import torch
from test_probe_train import write_colour_videos

import vjepa2
from vjepa2.cli import main
from vjepa2.data.transforms import normalize
from vjepa2.data.video import write_video
from vjepa2.evals.classification import classification_metrics
from vjepa2.evals.commands.probe_train import ProbeTrainConfig
from vjepa2.evals.features import ClipDataset, load_encoder, spatial_views
from vjepa2.evals.probes import FEATURES_FILE, clip_dataset, feature_spec
from vjepa2.models.probe import AttentiveClassifier, ProbeConfig


def test_classification_metrics_by_hand():
    probs = torch.tensor(
        [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.5, 0.1]]
    )
    labels = torch.tensor([0, 1, 1, 2, 2])
    m = classification_metrics(probs, labels, ["a", "b", "c"])
    # predictions 0, 1, 0, 2, 1: right on samples 0, 1, 3
    assert m["top1"] == pytest.approx(60.0)
    assert m["top5"] == pytest.approx(100.0)  # k = 3 classes
    assert m["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert m["per_class"] == {
        "a": {"accuracy": 100.0, "count": 1},
        "b": {"accuracy": 50.0, "count": 2},
        "c": {"accuracy": 50.0, "count": 2},
    }
    assert m["mean_class_accuracy"] == pytest.approx(200.0 / 3)


def test_spatial_views_slide_along_the_long_side():
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 32, 64, 3), dtype=np.uint8)
    views = spatial_views(frames, crop=32, num_views=3)  # short side already 32: no resize
    assert views.shape == (3, 2, 3, 32, 32)
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2)
    for i, left in enumerate((0, 16, 32)):
        assert torch.allclose(views[i], normalize(clip[..., left : left + 32]), atol=1e-5)


def test_multi_clip_multi_view_reading(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, size=(16, 32, 48, 3), dtype=np.uint8)
    write_video(tmp_path / "wide.mp4", frames, fps=4)
    data = ClipDataset(
        [(tmp_path / "wide.mp4", 0)], num_frames=4, crop=32, num_segments=2, num_clips=2, num_views=3
    )
    assert data[0]["clip"].shape == (6, 2, 4, 3, 32, 32)  # (clips x views, segments, T, C, H, W)
    train = ClipDataset([(tmp_path / "wide.mp4", 0)], num_frames=4, crop=32, num_segments=2, train=True)
    assert train[0]["clip"].shape == (1, 2, 4, 3, 32, 32)
    with pytest.raises(ValueError, match="one clip and one view"):
        ClipDataset([(tmp_path / "wide.mp4", 0)], train=True, num_views=3)


@pytest.fixture(scope="module")
def constant_probe(tmp_path_factory):
    """A saved probe that always answers class 1 ('dog'), with its features.json."""
    folder = tmp_path_factory.mktemp("eval")
    data = write_colour_videos(folder, [0, 1, 1, 0, 1], "data")
    model = load_encoder("random:tiny")
    probe = AttentiveClassifier(ProbeConfig(dim=192, heads=4, depth=2, num_classes=2))
    with torch.no_grad():
        probe.linear.weight.zero_()
        probe.linear.bias.copy_(torch.tensor([0.0, 1.0]))
    probe_dir = folder / "probe"
    vjepa2.save_probe(probe, probe_dir, ["cat", "dog"])
    spec = feature_spec(ProbeTrainConfig(encoder="random:tiny", num_frames=4, dtype="fp32"), model, crop=32)
    (probe_dir / FEATURES_FILE).write_text(json.dumps(spec))
    return folder, data, probe_dir


def test_probe_eval_cli_writes_metrics_and_confusion(constant_probe, tmp_path):
    folder, data, probe_dir = constant_probe
    out = tmp_path / "eval"
    args = ["probe", "eval", "--probe", str(probe_dir), "--data", str(data), "--out", str(out)]
    assert main(args + ["--workers", "0", "--num-clips", "2", "--num-views", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_samples"] == 5 and metrics["num_clips"] == 2
    assert metrics["top1"] == pytest.approx(60.0)  # always 'dog'; 3 of 5 are dogs
    assert metrics["confusion"] == [[0, 2], [0, 3]]
    assert metrics["per_class"]["cat"]["accuracy"] == 0.0 and metrics["per_class"]["dog"]["accuracy"] == 100.0
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "predictions.csv").read_text().splitlines()) == 6


def test_classify_prints_top_k_with_names(constant_probe, tmp_path, capsys):
    folder, _, probe_dir = constant_probe
    video = folder / "videos" / "data_0.mp4"
    out = tmp_path / "top.json"
    assert main(["classify", str(video), "--probe", str(probe_dir), "--top-k", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    p_dog = 1 / (1 + np.exp(-1.0))  # softmax of logits (0, 1)
    assert "1. dog" in printed and f"{p_dog:.3f}" in printed and "2. cat" in printed
    assert json.loads(out.read_text())[str(video)][0]["label"] == "dog"
    names = tmp_path / "names.txt"
    names.write_text("kitten\npuppy\n")
    assert main(["classify", str(video), "--probe", str(probe_dir), "--labels", str(names)]) == 0
    assert "1. puppy" in capsys.readouterr().out
    # README's spelling: the run folder of `probe train`, which holds the probe in probe/
    assert main(["classify", str(video), "--probe", str(folder)]) == 0
    assert "1. dog" in capsys.readouterr().out


def test_classify_with_a_transformers_classifier(tmp_path, capsys):
    import transformers

    cfg = transformers.VJEPA2Config(
        crop_size=32, frames_per_clip=4, hidden_size=64, num_attention_heads=2, num_hidden_layers=2,
        pred_hidden_size=32, pred_num_attention_heads=2, pred_num_hidden_layers=1, num_labels=3,
        id2label={0: "left", 1: "right", 2: "still"}, label2id={"left": 0, "right": 1, "still": 2},
    )  # fmt: skip
    torch.manual_seed(0)
    hf = transformers.VJEPA2ForVideoClassification(cfg).eval()
    with torch.no_grad():
        hf.classifier.weight.normal_(std=1.0)
    hf.save_pretrained(tmp_path / "hf")
    write_colour_videos(tmp_path, [2], "one")
    video = tmp_path / "videos" / "one_0.mp4"
    out = tmp_path / "top.json"
    args = [
        "classify",
        str(video),
        "--probe",
        str(tmp_path / "hf"),
        "--dtype",
        "fp32",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    got = json.loads(out.read_text())[str(video)]
    spec = {"num_frames": 4, "fps": 4.0, "frame_step": 0, "crop": 32, "num_segments": 1}
    clip = clip_dataset([(video, 0)], spec)[0]["clip"][0, 0]  # (T, C, H, W)
    with torch.no_grad():
        want = hf(pixel_values_videos=clip[None]).logits.softmax(-1)[0]
    assert got[0]["label"] == cfg.id2label[int(want.argmax())]
    assert got[0]["probability"] == pytest.approx(want.max().item(), abs=1e-4)


def test_probe_eval_errors(tmp_path, user_error):
    assert "give --probe" in user_error(["probe", "eval"])
    line = user_error(["probe", "eval", "--probe", str(tmp_path / "none"), "--data", str(tmp_path)])
    assert line.endswith(f"{tmp_path / 'none'}: probe folder not found")


@pytest.mark.parametrize("command", ["probe eval", "classify"])
def test_compile_option_reaches_torch_compile(constant_probe, tmp_path, monkeypatch, command):
    from test_extract import record_compile

    from vjepa2.cli import build_parser
    from vjepa2.models.encoder import VideoEncoder

    help_text = " ".join(build_parser(command).format_help().split())
    assert "--compile" in help_text and "pays only for long runs" in help_text
    folder, data, probe_dir = constant_probe
    calls = record_compile(monkeypatch)
    if command == "classify":
        args = ["classify", str(folder / "videos" / "data_0.mp4"), "--probe", str(probe_dir)]
    else:
        args = ["probe", "eval", "--probe", str(probe_dir), "--data", str(data), "--workers", "0"]
    out = tmp_path / ("top.json" if command == "classify" else "eval")
    assert main([*args, "--out", str(out), "--compile"]) == 0
    assert len(calls) == 1 and isinstance(calls[0], VideoEncoder)
