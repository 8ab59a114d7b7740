"""The V-JEPA 2.1 pretraining recipe (loss.recipe=2.1): its loss against its definition, and runs."""

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import vjepa2
from vjepa2.checkpoints.training import load_checkpoint
from vjepa2.cli import _load_command, main, parse
from vjepa2.config import load_config
from vjepa2.data.video import write_video
from vjepa2.errors import UserError
from vjepa2.train.jepa import JepaObjective, Student, View, jepa_loss
from vjepa2.train.jepa21 import (
    DenseObjective,
    DenseStudent,
    LossConfig,
    check_recipe,
    context_weight,
    distance_weights,
    make_objective,
)
from vjepa2.train.pretrain import PretrainConfig, build_models, check, model_configs
from vjepa2.train.schedules import LRScheduleConfig

# tiny-2.1 cut to 2 blocks (levels: blocks 0 and 1) on 4-frame 32 px clips and 32 px images;
# 6 steps: warmup 2, constant 2, cooldown 2 on 8 frames with more images; lambda ramps over 1..3.
REPO = Path(__file__).resolve().parents[1]
TINY21 = [
    "model.encoder_preset=tiny-2.1",
    "model.predictor_preset=tiny-2.1",
    "model.encoder_overrides={depth: 2}",
    "model.predictor_overrides={depth: 1}",
    "loss.recipe=2.1",
    "loss.ramp_start=1",
    "loss.ramp_end=3",
    "images.batch_size=3",
    "cooldown.image_batch_size=4",
    "data.num_frames=4",
    "data.crop=32",
    "data.workers=0",
    "run.batch_size=4",
    "run.dtype=fp32",
    "schedule.warmup_steps=2",
    "schedule.constant_steps=2",
    "schedule.cooldown_steps=2",
    "cooldown.num_frames=8",
    "run.checkpoint_every=2",
]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> str:
    """Six short clips of a square crossing a grey background."""
    folder = tmp_path_factory.mktemp("videos21")
    rng = np.random.default_rng(1)
    for i in range(6):
        frames = np.full((8, 40, 40, 3), 40, np.uint8)
        y, x = rng.integers(0, 20, 2)
        for t in range(8):
            frames[t, y + t : y + t + 12, x + 2 * t : x + 2 * t + 12] = rng.integers(80, 255, 3)
        write_video(folder / f"clip{i}.mp4", frames, fps=4)
    return str(folder)


def cli(videos: str, out, *extra: str) -> int:
    return main(["pretrain", videos, *TINY21, f"run.out={out}", *extra])


def rows(out) -> list[dict]:
    return [json.loads(line) for line in open(out / "log.jsonl")]


@pytest.fixture(scope="module")
def reference_run(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference21")
    assert cli(videos, out) == 0
    return out


# -- the loss, by hand ------------------------------------------------------------------------------
def test_lambda_ramps_from_start_to_end_and_is_constant_in_the_cooldown():
    cfg = LossConfig(recipe="2.1", context_weight=0.5, ramp_start=15_000, ramp_end=30_000)
    assert context_weight(cfg, 0, False) == 0.0
    assert context_weight(cfg, 15_000, False) == 0.0
    assert context_weight(cfg, 22_500, False) == 0.25
    assert context_weight(cfg, 30_000, False) == 0.5
    assert context_weight(cfg, 100_000, False) == 0.5
    assert context_weight(cfg, 0, True) == 0.5  # the cooldown: constant


def test_distance_weights_on_a_hand_made_mask():
    grid = (2, 4, 4)  # (t, row, col); index = t * 16 + row * 4 + col

    def index(t, r, c):
        return t * 16 + r * 4 + c

    # Sample 0: the targets are the 2 x 2 block at rows 1-2, cols 1-2 of the first time step only.
    # Sample 1: one target token in the corner (1, 3, 3).
    targets = torch.tensor([[index(0, r, c) for r in (1, 2) for c in (1, 2)], [index(1, 3, 3)] * 4])
    context = torch.tensor(
        [
            [index(0, 0, 0), index(1, 1, 1), index(1, 3, 3), index(0, 0, 3), index(0, 1, 3), index(1, 0, 0)],
            [index(1, 3, 2), index(0, 3, 3), index(0, 0, 0), index(1, 1, 1), index(0, 2, 1), index(1, 0, 3)],
        ]
    )
    distances = torch.tensor(
        [
            [2, 1, 3, 2, 1, 3],  # squared: (0,0,0)-(0,1,1), (1,1,1)-(0,1,1), (1,3,3)-(0,2,2), ...
            [1, 1, 1 + 9 + 9, 4 + 4, 1 + 1 + 4, 9],
        ],
        dtype=torch.float32,
    ).sqrt()
    torch.testing.assert_close(distance_weights(context, targets, grid), distances.rsqrt(), rtol=0, atol=1e-7)


def tiny21_models():
    cfg = parse(["pretrain", *TINY21])[1]
    return cfg, *build_models(cfg.model)


def level_normed(target, clips, levels, dim):
    """The definition: each level of the multi-level output through a parameter-free LayerNorm."""
    out = target(clips, levels=True)
    return torch.cat([F.layer_norm(out[..., k * dim : (k + 1) * dim], (dim,)) for k in range(levels)], -1)


def hand_weight(context_index, target_indices, grid):
    _, h, w = grid

    def coords(n):
        return n // (h * w), n % (h * w) // w, n % w

    return 1 / math.sqrt(min(math.dist(coords(context_index), coords(t)) for t in target_indices))


@pytest.mark.parametrize("step, lam, weighted", [(2, 0.25, True), (5, 0.5, False)], ids=["ramp", "cooldown"])
def test_dense_loss_is_its_definition(step, lam, weighted):
    torch.manual_seed(0)
    cfg, encoder, predictor = tiny21_models()
    target = build_models(cfg.model)[0]
    student = DenseStudent(encoder, predictor)
    video = View(
        torch.randn(2, 4, 3, 32, 32),  # grid (2, 2, 2): 8 tokens
        [torch.tensor([[0, 1, 2], [3, 4, 5]]), torch.tensor([[0], [7]])],
        [torch.tensor([[3, 4], [0, 1]]), torch.tensor([[2, 5], [1, 6]])],
    )
    image = View(
        torch.randn(2, 1, 3, 32, 32), [torch.tensor([[0, 1], [2, 3]])], [torch.tensor([[3], [0]])], "image"
    )
    objective = make_objective(cfg.loss, cfg.schedule, encoder)  # cooldown from step 4
    assert isinstance(objective, DenseObjective) and objective.scalars(step) == {"context_weight": lam}
    loss, stats, features = objective(student, target, [video, image], step)

    levels, dim = len(encoder.cfg.level_layers), encoder.dim
    view_losses = []
    for view, outputs in zip([video, image], student([video, image])):
        normed = level_normed(target, view.clips, levels, dim)  # (B, N, L*D)
        grid = encoder.grid(view.clips.shape)
        terms = []
        for (pred, ctx), c_idx, t_idx in zip(outputs, view.context_idx, view.target_idx):
            pred_term = torch.stack([(pred[b] - normed[b, t_idx[b]]).abs().mean() for b in range(2)]).mean()
            ctx_errors = []
            for b in range(2):
                for k, c in enumerate(c_idx[b].tolist()):
                    w = hand_weight(c, t_idx[b].tolist(), grid) if weighted else 1.0
                    ctx_errors.append(w * (ctx[b, k] - normed[b, c]).abs().mean())
            terms.append(pred_term + lam * torch.stack(ctx_errors).mean())  # the same count per sample
        view_losses.append(torch.stack(terms).mean())
    torch.testing.assert_close(loss, torch.stack(view_losses).mean())
    torch.testing.assert_close(stats["loss_image"], view_losses[1])
    torch.testing.assert_close(loss, stats["loss_pred"] + lam * stats["loss_context"])
    video_only, video_stats, _ = objective(student, target, [video], step)  # no image batch
    torch.testing.assert_close(video_only, view_losses[0])
    assert "loss_image" not in video_stats
    assert features.shape == (2, 8, dim)


def test_the_20_objective_is_jepa_loss():
    torch.manual_seed(0)
    tiny = ["model.encoder_preset=tiny", "model.predictor_preset=tiny", "model.encoder_overrides={depth: 2}"]
    encoder, predictor = build_models(parse(["pretrain", *tiny])[1].model)
    student = Student(encoder, predictor)
    objective = make_objective(LossConfig(), LRScheduleConfig(), encoder)
    assert isinstance(objective, JepaObjective) and objective.scalars(0) == {}
    clips = torch.randn(2, 4, 3, 32, 32)
    view = View(clips, [torch.tensor([[0, 1, 2], [3, 4, 5]])], [torch.tensor([[3, 4], [0, 1]])])
    loss, stats, features = objective(student, encoder, [view], 0)
    want, want_features = jepa_loss(student, encoder, clips, view.context_idx, view.target_idx)
    assert torch.equal(loss, want) and torch.equal(features, want_features) and stats == {}


def test_recipes_that_do_not_fit_the_models_are_user_errors(videos, tmp_path, user_error):
    line = user_error(
        ["pretrain", videos, *TINY21, "model.predictor_preset=2.1-distilled", f"run.out={tmp_path}"]
    )
    assert "distilled" in line and "1664" in line
    cfg = parse(["pretrain", *TINY21, "model.encoder_preset=tiny", "model.predictor_preset=tiny"])[1]
    with pytest.raises(UserError, match="V-JEPA 2.1 encoder"):
        check_recipe(cfg.loss, *model_configs(cfg.model), 0)
    assert "2.1 recipe" in user_error(["pretrain", videos, "images.batch_size=2", f"run.out={tmp_path}"])
    assert "loss.recipe" in user_error(["pretrain", videos, *TINY21, "loss.recipe=3", f"run.out={tmp_path}"])
    assert "loss.recipe=2.1" in user_error(
        ["pretrain", videos, *TINY21, "loss.recipe=2.0", f"run.out={tmp_path}"]
    )


@pytest.mark.parametrize("name", ["pretrain/tiny-cpu-2.1", "pretrain/vitl-2.1", "pretrain/vitg-2.1",
                                  "cooldown/vitl-2.1", "cooldown/vitg-2.1"])  # fmt: skip
def test_the_shipped_21_configs_fit_their_models(name):
    cfg = load_config(_load_command("pretrain")[0], REPO / "configs" / f"{name}.yaml")
    assert isinstance(cfg, PretrainConfig) and cfg.loss.recipe == "2.1" and cfg.images.batch_size > 0
    check(cfg)  # the recipe fits the encoder and predictor (no model is built)
    encoder, predictor = model_configs(cfg.model)
    assert predictor.pred_dim == len(encoder.level_layers) * encoder.dim


# -- runs -----------------------------------------------------------------------------------------
def test_a_21_run_logs_its_terms_and_loads_as_21(reference_run):
    log = rows(reference_run)
    assert [r["step"] for r in log] == list(range(1, 7))
    assert [r["context_weight"] for r in log] == [0.0, 0.0, 0.25, 0.5, 0.5, 0.5]
    assert [r["frames"] for r in log] == [4] * 4 + [8] * 2
    for key in ("loss", "loss_pred", "loss_context", "loss_image", "images_per_s", "rank"):
        assert all(np.isfinite(r[key]) for r in log), key
    state = load_checkpoint(reference_run / "latest.pt")
    assert state["step"] == 6 and state["run_config"]["loss"]["recipe"] == "2.1"
    assert state["run_config"]["images"]["batch_size"] == 3
    model = vjepa2.load(reference_run / "latest.pt")
    assert model.version == "2.1" and model.encoder.cfg.level_layers == (0, 1)
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, state["target_encoder"][name]), name
    # The image tokenizer trained: the online one moved away from its initial copy in the target.
    assert not torch.equal(
        state["encoder"]["image_patch_embed.proj.weight"],
        state["target_encoder"]["image_patch_embed.proj.weight"],
    )


def test_a_stopped_21_run_resumes_to_the_same_weights(videos, reference_run, tmp_path):
    assert cli(videos, tmp_path, "run.stop_after=3") == 0
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 3
    assert cli(videos, tmp_path) == 0
    got, want = load_checkpoint(tmp_path / "latest.pt"), load_checkpoint(reference_run / "latest.pt")
    for module in ("encoder", "predictor", "target_encoder"):
        for name, value in want[module].items():
            assert torch.equal(got[module][name], value), f"{module}.{name}"
    assert [r["loss"] for r in rows(tmp_path)] == [r["loss"] for r in rows(reference_run)]


def test_images_from_a_folder_of_images(videos, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(5):
        pixels = rng.integers(0, 255, (36, 44, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"image{i}.png")
    assert cli(videos, tmp_path / "run", f"images.sources=[{folder}]", "run.steps=2") == 0
    assert all(np.isfinite(r["loss_image"]) for r in rows(tmp_path / "run"))


@pytest.mark.slow
def test_torchrun_two_processes_match_one_in_21(videos, tmp_path):
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun not on PATH")
    # Two processes with half of the clips and half of the images draw what one process draws.
    two = [*TINY21, "run.steps=3", "run.batch_size=2", "images.batch_size=1", f"run.out={tmp_path / 'two'}"]
    args = ["torchrun", "--standalone", "--nproc_per_node=2", "-m", "vjepa2", "pretrain", videos, *two]
    subprocess.run(args, check=True, capture_output=True)
    assert cli(videos, tmp_path / "one", "run.steps=3", "images.batch_size=2") == 0
    got, want = rows(tmp_path / "two"), rows(tmp_path / "one")
    for key in ("loss", "loss_image"):
        np.testing.assert_allclose([r[key] for r in got], [r[key] for r in want], rtol=0, atol=1e-5)
