"""Action anticipation: focal loss and mean-class recall by hand, context windows, predictor
features, annotation errors, synthetic events, and ``vjepa2 anticipate`` end to end."""

import json
import math

import numpy as np
import pytest
import torch

from vjepa2.cli import main
from vjepa2.data.annotations import read_annotations
from vjepa2.evals.anticipation import (
    AnticipationProbe,
    anticipation_tokens,
    context_times,
    load_anticipation_probe,
    mean_class_recall,
    sigmoid_focal_loss,
)
from vjepa2.evals.features import load_encoder
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.model import VJEPA2
from vjepa2.models.predictor import MaskPredictor, PredictorConfig, gather_tokens
from vjepa2.models.presets import V21_PREDICTOR
from vjepa2.worlds.events import scene_events


def test_focal_loss_by_hand():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    labels = torch.tensor([1, 0])

    def term(z, target, alpha=0.25, gamma=2.0):
        p = 1 / (1 + math.exp(-z))
        p_true = p if target else 1 - p
        weight = alpha if target else 1 - alpha
        return weight * (1 - p_true) ** gamma * -math.log(p_true)

    want = (term(0.0, 0) + term(2.0, 1) + term(1.0, 1) + term(-1.0, 0)) / 2  # sum classes, mean batch
    assert sigmoid_focal_loss(logits, labels).item() == pytest.approx(want, rel=1e-6)
    assert term(0.0, 0) == pytest.approx(0.75 * 0.25 * math.log(2))
    # gamma 0, alpha 0.5: half the binary cross-entropy
    bce = (
        torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.eye(2)[labels], reduction="sum")
        / 2
    )
    assert sigmoid_focal_loss(logits, labels, alpha=0.5, gamma=0.0).item() == pytest.approx(0.5 * bce.item())


def test_mean_class_recall_by_hand():
    scores = torch.tensor(
        [
            [0.9, 0.5, 0.1, 0.0],  # label 0: top-2 {0, 1} hit
            [0.1, 0.2, 0.9, 0.8],  # label 0: top-2 {2, 3} miss
            [0.3, 0.1, 0.2, 0.9],  # label 2: top-2 {3, 0} miss
            [0.0, 0.1, 0.5, 0.4],  # label 2: top-2 {2, 3} hit
            [0.0, 0.1, 0.2, 0.3],  # label 2: top-2 {3, 2} hit
            [0.9, 0.8, 0.0, 0.0],  # label 1: hit
        ]
    )
    labels = torch.tensor([0, 0, 2, 2, 2, 1])
    # per class: 0 -> 1/2, 1 -> 1, 2 -> 2/3; class 3 never occurs and is not averaged
    assert mean_class_recall(scores, labels, k=2) == pytest.approx(100 * (0.5 + 1 + 2 / 3) / 3)
    # top-1: class 0 -> 1/2, class 1 -> 0 (its sample ranks class 0 first), class 2 -> 1/3
    assert mean_class_recall(scores, labels, k=1) == pytest.approx(100 * (0.5 + 0 + 1 / 3) / 3)
    assert mean_class_recall(scores, labels, k=10) == pytest.approx(100.0)  # k capped at C


def test_context_ends_before_the_action():
    assert context_times(3.0, 1.0, 4, 2.0).tolist() == [0.0, 0.5, 1.0, 1.5]
    assert context_times(1.0, 0.5, 3, 2.0).tolist() == [0.0, 0.0, 0.0]  # before the start: frame 0


def test_predictor_features_target_the_anticipated_tubelet():
    model = load_encoder("random:tiny")
    clips = torch.randn(2, 4, 3, 32, 32)  # grid (2, 2, 2)
    tokens = anticipation_tokens(model, clips, future_steps=1, use_predictor=True, dtype="fp32")
    assert tokens.shape == (2, 8 + 4, 192)
    with torch.no_grad():
        context = model.encode(clips)
        ctx_idx = torch.arange(8).expand(2, -1)
        tgt_idx = torch.arange(12, 16).expand(2, -1)  # time step 2 + 1 = 3 on a (4, 2, 2) grid
        want = model.predictor(gather_tokens(context, ctx_idx), ctx_idx, tgt_idx, (4, 2, 2))
    assert torch.allclose(tokens[:, :8], context, atol=1e-5)
    assert torch.allclose(tokens[:, 8:], want, atol=1e-5)
    alone = anticipation_tokens(model, clips, future_steps=1, use_predictor=False, dtype="fp32")
    assert alone.shape == (2, 8, 192)


def test_read_annotations_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("video,start,verb,noun\na.mp4,1,open,door\n")
    with pytest.raises(ValueError, match="bad.csv: missing columns"):
        read_annotations(bad)
    bad.write_text("video,start_sec,end_sec,verb,noun\na.mp4,2.0,1.0,open,door\n")
    with pytest.raises(ValueError, match="bad.csv:2: end_sec"):
        read_annotations(bad)
    good = tmp_path / "good.csv"
    good.write_text("video,start_sec,end_sec,verb,noun\nv/a.mp4,1.5,2,open,door\n")
    (row,) = read_annotations(good)
    assert row.video == tmp_path / "v" / "a.mp4" and (row.start_sec, row.verb, row.noun) == (
        1.5,
        "open",
        "door",
    )


def test_scene_events_by_hand():
    # Object 0 moves right, bounces off the right wall between frames 2 and 3; object 1 falls,
    # bounces on the floor between frames 1 and 2; at frame 4 object 1 touches object 0 (faster).
    fps, radii = 4.0, np.array([0.05, 0.05])
    vel = np.zeros((5, 2, 2))
    pos = np.full((5, 2, 2), 0.5)
    vel[:, 0, 0] = [0.4, 0.4, 0.4, -0.4, -0.4]
    pos[:, 0, 0] = [0.75, 0.85, 0.94, 0.88, 0.78]
    vel[:, 1, 1] = [0.2, 0.2, -0.2, -0.1, -0.1]
    pos[:, 1, 1] = [0.90, 0.94, 0.92, 0.90, 0.88]
    contacts = np.zeros((5, 2, 2), dtype=bool)
    contacts[4, 0, 1] = contacts[4, 1, 0] = True
    events = scene_events(pos, vel, contacts, radii, fps)
    assert events == [(2, "floor", 1), (3, "right-wall", 0), (4, "collide", 0)]


def test_anticipate_end_to_end_on_synthetic_events(tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = [
        "anticipate", "synthetic=8", "--out", str(out), "--num-frames", "4", "--fps", "4",
        "--anticipation-sec", "0.5", "--crop", "32", "--epochs", "3", "--probe-depth", "2",
        "lrs=[1e-3,3e-3]", "wds=[0.01]", "--top-k", "3", "--dtype", "fp32",
    ]  # fmt: skip
    assert main(args) == 0
    assert (out / "data" / "annotations_train.csv").is_file()
    summary = json.loads((out / "heads.json").read_text())
    assert summary["split"] == "val" and len(summary["heads"]) == 2
    for name in ("verb", "noun", "action"):
        assert 0.0 <= summary["best"][f"{name}_recall@3"] <= 100.0
    best = summary["heads"][summary["best"]["index"]]["action_recall@3"]
    assert best == max(h["action_recall@3"] for h in summary["heads"])
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3

    probe, classes, spec = load_anticipation_probe(out / "probe")
    assert isinstance(probe, AnticipationProbe) and spec["anticipation_sec"] == 0.5
    tokens = torch.randn(2, 8 + 4, 192)
    logits = probe(tokens)
    assert logits["verb"].shape == (2, len(classes.verb)) and logits["action"].shape == (
        2,
        len(classes.action),
    )

    # The features are cached: a second run with the same settings skips the encoder.
    def refuse(*args, **kwargs):
        raise AssertionError("the feature cache should have been used")

    monkeypatch.setattr(VideoEncoder, "forward", refuse)
    data = [
        "--train",
        str(out / "data" / "annotations_train.csv"),
        "--val",
        str(out / "data" / "annotations_val.csv"),
    ]
    assert main(args[:1] + data + args[2:]) == 0
    assert json.loads((out / "heads.json").read_text())["best"] == summary["best"]


def test_v21_level_predictor_is_fed_four_levels_and_probed_on_the_last():
    model = load_encoder("random:tiny-2.1")
    assert model.predictor.cfg.embed_hidden > 0  # tiny-2.1 pairs with a level predictor (as g/G)
    clips = torch.randn(2, 4, 3, 32, 32)  # grid (2, 2, 2)
    tokens = anticipation_tokens(model, clips, future_steps=1, use_predictor=True, dtype="fp32")
    assert tokens.shape == (2, 8 + 4, 192)
    with torch.no_grad():
        four = model.encode(clips, levels=True)  # (2, 8, 4 * 192)
        ctx_idx, tgt_idx = torch.arange(8).expand(2, -1), torch.arange(12, 16).expand(2, -1)
        want = model.predictor(four, ctx_idx, tgt_idx, (4, 2, 2))  # 4 levels predicted
        plain = model.encode(clips)
    assert want.shape == (2, 4, 4 * 192)
    torch.testing.assert_close(tokens[:, :8], plain, atol=1e-5, rtol=0)
    torch.testing.assert_close(tokens[:, 8:], want[..., -192:], atol=1e-5, rtol=0)


def test_anticipate_with_v21(tmp_path, user_error):
    args = [
        "anticipate", "synthetic=6", "--num-frames", "4", "--fps", "4", "--anticipation-sec", "0.5",
        "--crop", "32", "--epochs", "1", "--probe-depth", "1", "lrs=[1e-3]", "wds=[0.01]", "--top-k", "3",
        "--dtype", "fp32",
    ]  # fmt: skip
    model = load_encoder("random:tiny-2.1", seed=1)
    model.save(tmp_path / "g")
    assert main([*args, "--out", str(tmp_path / "g_run"), "--encoder", str(tmp_path / "g")]) == 0
    _, _, spec = load_anticipation_probe(tmp_path / "g_run" / "probe")
    assert spec["version"] == "2.1" and spec["levels"] is True
    # a distilled B/L-like predictor: reads D, predicts another (the teacher's) width
    cfg = PredictorConfig(
        enc_dim=192, dim=96, depth=1, heads=3, num_mask_tokens=8, out_dim=320, **V21_PREDICTOR
    )
    VJEPA2(model.encoder, MaskPredictor(cfg)).save(tmp_path / "distilled")
    line = user_error([*args, "--out", str(tmp_path / "d_run"), "--encoder", str(tmp_path / "distilled")])
    assert "predicts 320 features per token, not the encoder's 192" in line and "use_predictor=false" in line
    assert not (tmp_path / "d_run" / "data").exists()  # refused before any data is made


def test_anticipate_holds_its_frozen_encoder_and_predictor_in_bf16(tmp_path, monkeypatch):
    """--dtype bf16: the frozen encoder and predictor hold bf16 weights; the heads train in fp32."""
    from vjepa2.evals.commands import anticipate as command
    from vjepa2.models.held import held_dtype

    seen, real = [], command.anticipation_tokens

    def spy(model, clips, future_steps, use_predictor, dtype):
        seen.append((held_dtype(model.encoder), held_dtype(model.predictor), use_predictor, dtype))
        tokens = real(model, clips, future_steps, use_predictor, dtype)
        assert tokens.dtype == torch.float32  # the heads and the cache see fp32 features
        return tokens

    monkeypatch.setattr(command, "anticipation_tokens", spy)
    out = tmp_path / "run"
    args = ["anticipate", "synthetic=6", "--out", str(out), "--num-frames", "4", "--fps", "4",
            "--anticipation-sec", "0.5", "--crop", "32", "--epochs", "1", "--probe-depth", "1",
            "lrs=[1e-3]", "wds=[0.01]", "--top-k", "3", "--dtype", "bf16", "--cache", "false"]  # fmt: skip
    assert main(args) == 0
    assert seen and all(s == ("bf16", "bf16", True, "bf16") for s in seen)
    probe, _, spec = load_anticipation_probe(out / "probe")
    assert spec["dtype"] == "bf16" and all(p.dtype == torch.float32 for p in probe.parameters())
