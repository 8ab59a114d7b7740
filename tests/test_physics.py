"""Intuitive physics from surprise: the surprise curve, the metrics, the readers, the command."""

import itertools
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from vjepa2.cli import main
from vjepa2.data.video import write_video
from vjepa2.errors import UserError
from vjepa2.evals.commands import physics_eval as physics_command
from vjepa2.evals.physics import metrics
from vjepa2.evals.physics.readers import read_pairs
from vjepa2.evals.physics.surprise import Windows, surprise_curves
from vjepa2.models.encoder import EncoderConfig, VideoEncoder, layer_norm_features
from vjepa2.models.model import VJEPA2
from vjepa2.models.predictor import PredictorConfig


# -- the surprise curve ---------------------------------------------------------------------------
class Persistence(torch.nn.Module):
    """A stand-in predictor that has learned a still scene: the future looks like the last seen
    time step (its layer-normed tokens, repeated)."""

    def __init__(self, dim: int):
        super().__init__()
        self.cfg = PredictorConfig(enc_dim=dim)

    def forward(self, context, context_idx, target_idx, grid, mask_index=0):
        per_step = grid[1] * grid[2]
        last = layer_norm_features(context[:, -per_step:])  # (B, per_step, D)
        return last.repeat(1, target_idx.shape[1] // per_step, 1)


def vanishing_clip(num_frames=16, vanish_at=8, size=64):
    """A still grey scene with a white square that is gone from frame ``vanish_at`` on."""
    frames = np.full((num_frames, size, size, 3), 90, dtype=np.uint8)
    frames[:vanish_at, 20:36, 20:36] = 255
    return frames


def test_surprise_rises_after_an_object_vanishes_and_not_before():
    torch.manual_seed(0)
    # No blocks: each token sees only its own tubelet, so encoding the context alone gives the
    # same tokens as encoding the whole window, and a still scene is perfectly predictable.
    encoder = VideoEncoder(EncoderConfig(dim=64, depth=0, heads=1, crop=64)).eval()
    model = VJEPA2(encoder, Persistence(64))
    windows = Windows(window=8, context=4, stride=2)
    curve = surprise_curves([vanishing_clip()], windows, crop=64, model=model)[0]
    times = windows.times(len(curve))  # first predicted frame of each window: 4, 6, ..., 12
    predicted_frames = [range(t, t + windows.window - windows.context) for t in times]
    sees_vanishing = np.array([8 in frames for frames in predicted_frames])
    assert sees_vanishing.any() and (~sees_vanishing).any()
    assert np.all(curve[~sees_vanishing] < 1e-4)  # nothing happens, nothing is surprising
    assert np.all(curve[sees_vanishing] > 0.05)
    # the pixel baseline sees the change too, and only there
    pixels = surprise_curves([vanishing_clip()], windows, crop=64)[0]
    assert np.all(pixels[~sees_vanishing] < 1e-6) and np.all(pixels[sees_vanishing] > 1e-3)


def test_windows_are_checked():
    with pytest.raises(UserError, match="multiples of 2"):
        Windows(window=8, context=3).check(2)
    with pytest.raises(UserError, match="between 0 and the window"):
        Windows(window=8, context=8).check(2)
    with pytest.raises(UserError, match="shorter than the window"):
        surprise_curves([vanishing_clip(num_frames=6)], Windows(), crop=64)


# -- the metrics against brute force --------------------------------------------------------------
def brute_auroc(negatives, positives):
    wins = [(p > n) + 0.5 * (p == n) for p, n in itertools.product(positives, negatives)]
    return np.mean(wins)


def brute_average_precision(negatives, positives):
    """Mean over positives of the precision among all videos scored at least as high (ties
    counted as ranked above it)."""
    scores = np.concatenate([negatives, positives])
    return np.mean([np.sum(positives >= p) / np.sum(scores >= p) for p in positives])


@pytest.mark.parametrize("seed", range(5))
def test_metrics_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    possible = rng.integers(0, 6, 12).astype(float)  # small integers: plenty of ties
    impossible = rng.integers(0, 8, 12).astype(float)
    want = np.mean([(p < i) + 0.5 * (p == i) for p, i in zip(possible, impossible)])
    assert metrics.relative_accuracy(possible, impossible) == pytest.approx(want)
    assert metrics.auroc(possible, impossible) == pytest.approx(brute_auroc(possible, impossible))
    distinct_p, distinct_i = rng.permutation(12).astype(float), rng.permutation(12).astype(float) + 0.5
    assert metrics.auprc(distinct_p, distinct_i) == pytest.approx(
        brute_average_precision(distinct_p, distinct_i)
    )
    threshold = np.sort(possible)[min(int(np.ceil(0.9 * 12)), 11)]
    right = np.sum(possible < threshold) + np.sum(impossible > threshold)
    assert metrics.absolute_accuracy(possible, impossible) == pytest.approx(right / 24)


def test_quadruplet_scores_against_brute_force():
    # (P, 2): a group wins when its two possible videos sum to less surprise than its two
    # impossible ones (IntPhys's relative score); single-video metrics read all 2P of each.
    rng = np.random.default_rng(7)
    possible, impossible = rng.integers(0, 6, (9, 2)).astype(float), rng.integers(0, 7, (9, 2)).astype(float)
    sums = [(p.sum(), i.sum()) for p, i in zip(possible, impossible)]
    want = np.mean([(p < i) + 0.5 * (p == i) for p, i in sums])
    scores = metrics.score_pairs(possible, impossible, resamples=50)
    assert scores["relative_accuracy_ties_half"]["value"] == pytest.approx(want)
    assert scores["auroc"]["value"] == pytest.approx(brute_auroc(possible.ravel(), impossible.ravel()))


def test_metric_extremes_and_intervals():
    possible, impossible = np.arange(10.0), np.arange(10.0) + 100
    scores = metrics.score_pairs(possible, impossible, resamples=200)
    for name in ("relative_accuracy_ties_half", "auroc", "average_precision_impossible"):
        assert scores[name]["value"] == 1.0 and scores[name]["low"] == 1.0
    flipped = metrics.score_pairs(impossible, possible, resamples=200)
    assert flipped["relative_accuracy_ties_half"]["value"] == 0.0 and flipped["auroc"]["value"] == 0.0
    noisy = metrics.score_pairs(*np.random.default_rng(0).normal(size=(2, 200)), resamples=300)
    for m in noisy.values():
        assert m["low"] <= m["value"] <= m["high"]
    assert noisy["auroc"]["low"] < 0.5 < noisy["auroc"]["high"]  # chance is inside the interval
    fpr, tpr = metrics.roc_curve(np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and np.trapezoid(tpr, fpr) == 1.0


# -- readers ------------------------------------------------------------------------------------
def small_clip(seed, num_frames=8):
    return np.random.default_rng(seed).integers(0, 255, (num_frames, 32, 32, 3), dtype=np.uint8)


def test_intphys2_layout(tmp_path):
    # The release's layout (facebookresearch/IntPhys2 IntPhys2_transformers.py): <split>/metadata.csv
    # whose `filename` names <split>/Videos/<filename>.mp4; a scene's pairs are type numbers 1 and 2.
    split = tmp_path / "Main"
    (split / "Videos").mkdir(parents=True)
    rows = ["SceneIndex,filename,type,condition,env,game_name"]
    for scene, condition in ((0, "permanence"), (1, "solidity")):
        for k, kind in enumerate(["1_Possible", "1_Impossible", "2_Possible", "2_Impossible"]):
            write_video(split / "Videos" / f"v{scene}{k}.mp4", small_clip(scene * 4 + k), codec="mpeg4")
            rows.append(f"{scene},v{scene}{k},{kind},{condition},BasicLevel_0,Box")
    (split / "metadata.csv").write_text("\n".join(rows) + "\n")
    videos = read_pairs(tmp_path)
    assert len(videos) == 8 and {v.kind for v in videos} == {"permanence", "solidity"}
    pair = [v for v in videos if v.pair == "permanence/0/2"]
    assert [(v.path.name, v.possible) for v in pair] == [("v02.mp4", True), ("v03.mp4", False)]
    assert pair[0].path.parent == split / "Videos" and pair[0].meta["filename"] == "v02"
    (split / "metadata.csv").write_text("filename,type\nv00,1_Possible\n")
    with pytest.raises(
        UserError, match=r"metadata.csv: labelled \(a type column\) but missing columns \['SceneIndex'\]"
    ):
        read_pairs(tmp_path)


def test_intphys_dev_layout(tmp_path):
    scene = tmp_path / "O1" / "01"
    base = small_clip(0)
    for movie, (possible, differ_at) in enumerate([(True, 8), (False, 5), (True, 8), (False, 3)], start=1):
        frames = base.copy()
        frames[differ_at:] = 255 - frames[differ_at:]  # 1 and 2 part at frame 5, 3 and 4 at 3
        folder = scene / str(movie) / "scene"
        folder.mkdir(parents=True)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / f"scene_{t:03d}.png")
        (scene / str(movie) / "status.json").write_text(json.dumps({"header": {"is_possible": possible}}))
    videos = read_pairs(tmp_path)
    events = {v.path.parent.name: v.event_frame for v in videos}
    assert {v.pair for v in videos} == {"O1/01"}  # the quadruplet is scored as one group
    assert events == {"1": 5, "2": 5, "3": 3, "4": 3}
    assert {v.kind for v in videos} == {"O1"}
    (scene / "4" / "status.json").write_text(json.dumps({"header": {}}))
    with pytest.raises(UserError, match=r"4/status.json: no header.is_possible"):
        read_pairs(tmp_path)


def test_csv_layout_and_mistakes(tmp_path):
    for i in range(2):
        write_video(tmp_path / f"c{i}.mp4", small_clip(i), codec="mpeg4")
    (tmp_path / "pairs.csv").write_text(
        "video,pair_id,possible,type\nc0.mp4,a,1,gravity\nc1.mp4,a,0,gravity\n"
    )
    videos = read_pairs(tmp_path / "pairs.csv")
    assert [(v.path.name, v.possible, v.kind) for v in videos] == [
        ("c0.mp4", True, "gravity"),
        ("c1.mp4", False, "gravity"),
    ]
    (tmp_path / "bad.csv").write_text("video,pair_id,possible\nc0.mp4,a,1\nc1.mp4,a,1\n")
    with pytest.raises(UserError, match=r"bad.csv: groups without as many possible as impossible"):
        read_pairs(tmp_path / "bad.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty: not a known physics data set"):
        read_pairs(tmp_path / "empty")


# -- the command ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_pairs(tmp_path_factory):
    out = tmp_path_factory.mktemp("pairs")
    args = ["worlds", "make-physics-pairs", "--out", str(out), "--num-pairs", "2", "--workers", "1"]
    assert main(args) == 0
    return out


def test_physics_eval_end_to_end_cache_and_a_broken_video(synthetic_pairs, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    shutil.copytree(synthetic_pairs, data)
    broken = sorted(data.glob("colour/scene_0000/*.mp4"))[0]
    broken.write_bytes(b"not a video")
    out = tmp_path / "out"
    args = ["physics-eval", str(data), "--encoder", "random:tiny", "--sources", "model,random,pixels",
            "--out", str(out), "--resamples", "50", "--dtype", "fp32"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| model | permanence | 2 |" in printed and "| pixels | overall | 7 |" in printed
    results = json.loads((out / "results.json").read_text())
    assert [s["pair"] for s in results["skipped"]["model"]] == ["colour/scene_0000"]
    model = results["sources"]["model"]
    assert model["metrics"]["colour"]["pairs"] == 1 and model["metrics"]["overall"]["pairs"] == 7
    video = next(iter(model["videos"].values()))
    assert len(video["curve"]) == 5 and video["max"] == max(video["curve"])  # 16 frames: 5 windows
    assert (out / "roc_model.png").is_file() and (out / "curves_pixels_permanence.png").is_file()
    # a rerun reads every curve from the cache: the model is never called
    monkeypatch.setattr(
        physics_command, "surprise_curves", lambda frames, *a, **k: [] if not frames else 1 / 0
    )
    assert main(args) == 0
    assert json.loads((out / "results.json").read_text())["sources"]["model"]["metrics"] == model["metrics"]


def test_physics_eval_user_mistakes(synthetic_pairs, tmp_path, user_error):
    line = user_error(["physics-eval", str(synthetic_pairs), "--sources", "model,oracle"])
    assert "--sources must be a comma-separated subset" in line
    line = user_error(["physics-eval", str(tmp_path / "missing")])
    assert "missing: no such file or folder" in line
    line = user_error(["physics-eval", str(synthetic_pairs), "--context", "3", "--out", str(tmp_path / "o")])
    assert "multiples of 2" in line


@pytest.mark.parametrize("dtype", ["bf16", "int8"])
def test_physics_eval_holds_its_model_in_the_asked_precision(synthetic_pairs, tmp_path, monkeypatch, dtype):
    """--dtype bf16 / int8: the encoder and predictor that score the videos hold bf16 weights or
    int8 Linear layers (fp32: the test above)."""
    from vjepa2.models.held import held_dtype

    data = tmp_path / "data"
    shutil.copytree(synthetic_pairs / "colour", data / "colour")  # one type, one pair: bf16 is slow here

    seen, real = [], physics_command.surprise_curves

    def spy(frames, windows, crop, model, *args):
        seen.append((held_dtype(model.encoder), held_dtype(model.predictor), args[1]))
        return real(frames, windows, crop, model, *args)

    monkeypatch.setattr(physics_command, "surprise_curves", spy)
    args = ["physics-eval", str(data), "--encoder", "random:tiny", "--sources", "model",
            "--out", str(tmp_path / "out"), "--resamples", "20", "--max-pairs", "1", "--videos-per-step", "8",
            "--dtype", dtype]  # fmt: skip
    assert main(args) == 0
    assert seen and all(s == (dtype, dtype, dtype) for s in seen)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["config"]["dtype"] == dtype
