"""Training checkpoints written by older versions (tests/data/old-checkpoints) still resume exactly.

Each folder holds a run stopped at step 2 of 6 and the log of the same run never interrupted, both
written by the old code; resumed by today's code, the run must log the same losses.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import torch

import vjepa2
from vjepa2.cli import main

OLD = Path(__file__).parent / "data" / "old-checkpoints"


def rows(path: Path, key: str) -> list[tuple[int, float]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["step"], r[key]) for r in lines if key in r]


def resumed_copy(name: str, tmp_path: Path) -> Path:
    out = tmp_path / name
    shutil.copytree(OLD / name, out)
    return out


def assert_same_log(out: Path, *keys: str) -> None:
    for key in keys:
        got, want = rows(out / "log.jsonl", key), rows(out / "full-log.jsonl", key)
        assert [s for s, _ in got] == [s for s, _ in want], key
        np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=0, atol=1e-6)


def test_old_pretraining_checkpoint_resumes_exactly(tmp_path):
    out = resumed_copy("pretrain", tmp_path)
    old = vjepa2.load(out / "latest.pt")  # the EMA target encoder, as before
    state = torch.load(out / "latest.pt", weights_only=True)
    assert state["step"] == 2 and "opt" in state and "pretrain_config" in state
    for name, value in old.encoder.state_dict().items():
        assert torch.equal(value, state["target_encoder"][name]), name
    args = ["pretrain", str(OLD / "videos"), "--config", str(out / "config.yaml"), f"run.out={out}"]
    assert main([*args, "run.stop_after=0"]) == 0
    assert_same_log(out, "loss", "grad_norm")
    assert vjepa2.load(out / "latest.pt").encoder.cfg == old.encoder.cfg


def test_old_world_model_checkpoint_resumes_exactly(tmp_path):
    out = resumed_copy("ac", tmp_path)
    old = vjepa2.load(out / "latest.pt")
    state = torch.load(out / "latest.pt", weights_only=True)
    assert state["step"] == 2 and "optimizer" in state and "train_config" in state
    assert old.ac_predictor is not None and old.ac_predictor.cfg.dim == 16
    args = ["train-ac", "--config", str(out / "config.yaml"), "--data.source", str(OLD / "episodes")]
    assert main([*args, "--run.out", str(out), "--run.stop-after", "0"]) == 0
    assert_same_log(out, "loss", "teacher", "rollout", "val_teacher")
    for written in (out / "model", out / "latest.pt"):  # today's folder and today's schema
        assert vjepa2.load(written).ac_predictor.cfg == old.ac_predictor.cfg
