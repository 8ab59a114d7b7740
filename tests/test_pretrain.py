import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import vjepa2
from vjepa2.checkpoints.training import load_checkpoint
from vjepa2.cli import _load_command, main, parse
from vjepa2.config import load_config
from vjepa2.data.video import write_video
from vjepa2.train.jepa import Student, ema_update, jepa_loss, param_groups
from vjepa2.train.pretrain import PretrainConfig, build_models, phases, run_pretrain

REPO = Path(__file__).resolve().parents[1]

# A tiny model on 4-frame 32 px clips; 6 steps: warmup 2, constant 2, cooldown 2 on 8 frames.
TINY = [
    "model.encoder_preset=tiny",
    "model.predictor_preset=tiny",
    "model.encoder_overrides={depth: 2}",
    "model.predictor_overrides={depth: 1}",
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
    """Eight short clips of a moving square."""
    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    for i in range(8):
        frames = np.zeros((8, 40, 40, 3), np.uint8)
        y, x = rng.integers(0, 20, 2)
        for t in range(8):
            frames[t, y + t : y + t + 10, x + 2 * t : x + 2 * t + 10] = rng.integers(60, 255, 3)
        write_video(folder / f"clip{i}.mp4", frames, fps=4)
    return str(folder)


def config(videos: str, out, *extra: str) -> PretrainConfig:
    _, cfg = parse(["pretrain", videos, *TINY, f"run.out={out}", *extra])
    return cfg


def tiny_model():
    return parse(["pretrain", *TINY])[1].model


def losses(out) -> list[tuple[int, float]]:
    return [(row["step"], row["loss"]) for row in map(json.loads, open(os.path.join(out, "log.jsonl")))]


@pytest.fixture(scope="module")
def reference_run(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    run_pretrain(config(videos, out))
    return out


def test_loss_falls_and_the_log_has_diagnostics(reference_run):
    rows = [json.loads(line) for line in open(reference_run / "log.jsonl")]
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert rows[-1]["loss"] < rows[0]["loss"]
    # Warmup-constant-decay, and the cooldown switching to 8 frames.
    assert [r["frames"] for r in rows] == [4] * 4 + [8] * 2
    assert rows[1]["lr"] == pytest.approx(5.25e-4) and rows[-1]["lr"] == pytest.approx(1e-6)
    assert all(r["skipped"] == 0 for r in rows)
    assert {r["dtype"] for r in rows} == {"fp32"} and "dtype: fp32" in (
        reference_run / "config.yaml"
    ).read_text()
    for key in ("ema", "grad_norm", "clips_per_s", "std_tokens", "std_batch"):
        assert all(np.isfinite(r[key]) for r in rows), key


def test_resume_after_sigkill_gives_the_same_losses(videos, reference_run, tmp_path):
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "vjepa2", "pretrain", videos, *TINY, f"run.out={out}"]
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= 3:  # past the checkpoint at step 2
            break
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    killed_at = load_checkpoint(out / "latest.pt")["step"]
    assert 2 <= killed_at < 6, "the run must be killed part way"
    run_pretrain(config(videos, out))
    got, want = losses(out), losses(reference_run)
    assert [s for s, _ in got] == [s for s, _ in want]
    np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=0, atol=1e-6)


def test_gradient_accumulation_matches_the_full_batch(videos, reference_run, tmp_path):
    run_pretrain(config(videos, tmp_path, "run.batch_size=2", "run.accum=2", "run.steps=3"))
    got, want = losses(tmp_path), losses(reference_run)[:3]
    np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=0, atol=1e-5)


def test_checkpoint_holds_the_run_and_loads_with_vjepa2_load(reference_run):
    state = load_checkpoint(reference_run / "latest.pt")
    for key in ("encoder", "predictor", "target_encoder", "optimizer", "step", "rng", "config", "run_config"):
        assert key in state, key
    assert (state["schema"], state["command"], state["step"]) == (2, "pretrain", 6)
    assert state["config"]["encoder"]["depth"] == 2 and state["run_config"]["run"]["batch_size"] == 4
    assert state["metrics"]["loss"] == losses(reference_run)[-1][1]
    model = vjepa2.load(reference_run / "latest.pt")
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, state["target_encoder"][name]), name
    # The online encoder moved away from the EMA target, which trails it.
    assert not torch.equal(
        state["encoder"]["blocks.0.attn.qkv.weight"], state["target_encoder"]["blocks.0.attn.qkv.weight"]
    )
    clips = torch.randn(1, 4, 3, 32, 32)
    assert model.encode(clips).shape == (1, 2 * 2 * 2, 192)


def test_ema_update_and_parameter_groups():
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = target.weight.detach().clone()
    ema_update(target, online, 0.9)
    torch.testing.assert_close(target.weight, 0.9 * before + 0.1 * online.weight.detach())
    encoder, predictor = build_models(tiny_model())
    groups = param_groups(Student(encoder, predictor), weight_decay=0.04)
    assert groups[0]["weight_decay"] == 0.04 and groups[1]["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in groups[0]["params"]) and all(p.ndim == 1 for p in groups[1]["params"])
    count = sum(p.numel() for g in groups for p in g["params"])
    assert count == sum(p.numel() for p in Student(encoder, predictor).parameters())


def test_jepa_loss_is_the_mean_l1_over_generators():
    torch.manual_seed(0)
    encoder, predictor = build_models(tiny_model())
    student, target = Student(encoder, predictor), build_models(tiny_model())[0]
    clips = torch.randn(2, 4, 3, 32, 32)  # grid (2, 2, 2): 8 tokens
    context_idx = [torch.tensor([[0, 1, 2], [3, 4, 5]]), torch.tensor([[0], [7]])]
    target_idx = [torch.tensor([[3, 4], [0, 1]]), torch.tensor([[2, 5], [1, 6]])]
    loss, features = jepa_loss(student, target, clips, context_idx, target_idx)
    normed = torch.nn.functional.layer_norm(target(clips), (192,))
    preds = student(clips, context_idx, target_idx)
    manual = [
        (p - torch.stack([normed[b, t[b]] for b in range(2)])).abs().mean() for p, t in zip(preds, target_idx)
    ]
    torch.testing.assert_close(loss, (manual[0] + manual[1]) / 2)
    assert features.shape == (2, 8, 192)


def test_unreadable_files_are_skipped_and_counted(videos, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    index = tmp_path / "broken.csv"
    index.write_text("broken.mp4 0\n")
    # Half of the draws come from an index whose only file cannot be decoded.
    cfg = config(videos, tmp_path / "run", "run.steps=2", "data.weights=[1, 1]")
    cfg.sources.append(str(index))
    run_pretrain(cfg)
    rows = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl")]
    assert sum(r["skipped"] for r in rows) > 0 and all(np.isfinite(r["loss"]) for r in rows)


def test_phases_and_bad_configs(videos, tmp_path):
    cfg = config(videos, tmp_path)
    plan = phases(cfg)
    assert [(p.start, p.end, p.frames) for p in plan] == [(0, 4, 4), (4, 6, 8)]
    with pytest.raises(ValueError, match="run.dtype"):
        run_pretrain(config(videos, tmp_path, "run.dtype=fp16"))
    with pytest.raises(ValueError, match="encoder_overrides"):
        run_pretrain(config(videos, tmp_path, "model.encoder_overrides={width: 3}"))
    with pytest.raises(ValueError, match="weights"):
        run_pretrain(config(videos, tmp_path, "data.weights=[1, 2]"))


def test_no_data_argument_makes_synthetic_videos(tmp_path, capsys):
    args = [arg for arg in TINY if not arg.startswith(("cooldown", "schedule"))]
    cache = tmp_path / "cache"
    assert (
        main(
            [
                "pretrain",
                *args,
                "run.steps=1",
                f"run.out={tmp_path / 'run'}",
                f"data.synthetic_dir={cache}",
                "data.synthetic_videos=4",
                "data.crop=32",
            ]
        )
        == 0
    )
    assert len(list((cache / "videos").glob("*.mp4"))) == 4
    assert losses(tmp_path / "run")[0][0] == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]  # it says where it wrote
    assert (
        last
        == f"pretrain: done at step 1 of 1; wrote latest.pt, log.jsonl, config.yaml in {tmp_path / 'run'}"
    )


@pytest.mark.slow
def test_torchrun_two_processes_match_one(videos, reference_run, tmp_path):
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun not on PATH")
    args = ["torchrun", "--standalone", "--nproc_per_node=2", "-m", "vjepa2", "pretrain", videos, *TINY]
    subprocess.run(
        [*args, "run.batch_size=2", "run.steps=3", f"run.out={tmp_path}"], check=True, capture_output=True
    )
    got, want = losses(tmp_path), losses(reference_run)[:3]
    np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=0, atol=1e-5)


CONFIG_COMMANDS = {
    "pretrain": "pretrain",
    "cooldown": "pretrain",
    "probe": "probe train",
    "ac": "train-ac",
    "plan": "plan-eval",
}


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*/*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    command = "anticipate" if path.stem.startswith("anticipation") else CONFIG_COMMANDS[path.parent.name]
    cfg = load_config(_load_command(command)[0], path)
    if isinstance(cfg, PretrainConfig) and cfg.model.encoder_preset == "tiny":
        _, predictor = build_models(cfg.model)  # the preset and its overrides fit together
        assert len(predictor.blocks) == cfg.model.predictor_overrides.get("depth", len(predictor.blocks))
