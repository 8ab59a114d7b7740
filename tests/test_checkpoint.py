import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from vjepa2.checkpoints import files
from vjepa2.checkpoints.training import (
    CheckpointError,
    find_latest,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def small_state(step: int) -> dict:
    model = torch.nn.Linear(4, 3)
    optim = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    optim.step()
    return {"model": model.state_dict(), "opt": optim.state_dict(), "step": step, "rng": rng_state()}


def test_round_trip_and_step_files(tmp_path):
    for step in range(1, 7):
        save_checkpoint(small_state(step), tmp_path, step, save_every=3)
    assert find_latest(tmp_path) == tmp_path / "latest.pt"
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 6
    assert sorted(p.name for p in tmp_path.glob("step_*.pt")) == ["step_000003.pt", "step_000006.pt"]
    # A kept step file is not changed by later saves of latest.pt.
    assert load_checkpoint(tmp_path / "step_000003.pt")["step"] == 3
    assert not list(tmp_path.glob(".*tmp*")), "no temporary files are left behind"
    state = load_checkpoint(tmp_path / "latest.pt")
    model = torch.nn.Linear(4, 3)
    model.load_state_dict(state["model"])
    torch.optim.AdamW(model.parameters()).load_state_dict(state["opt"])


def test_crash_during_write_keeps_previous_latest(tmp_path, monkeypatch):
    save_checkpoint({"step": 1, "w": torch.ones(3)}, tmp_path, 1)

    def crashing_save(obj, fh):
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(files.torch, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2, "w": torch.zeros(3)}, tmp_path, 2)
    monkeypatch.undo()
    state = load_checkpoint(tmp_path / "latest.pt")
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_sigkill_while_saving_leaves_a_loadable_latest(tmp_path):
    # A child process saves a 16 MB checkpoint over and over; we kill it at an arbitrary moment.
    script = textwrap.dedent(
        f"""
        import torch
        from vjepa2.checkpoints.training import save_checkpoint
        weights = torch.arange(4_000_000, dtype=torch.float32)
        for step in range(1, 10_000):
            save_checkpoint({{"step": step, "w": weights + step}}, {str(tmp_path)!r}, step)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 60
        while not (tmp_path / "latest.pt").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.7)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    state = load_checkpoint(tmp_path / "latest.pt")
    assert state["step"] >= 1
    assert torch.equal(state["w"], torch.arange(4_000_000, dtype=torch.float32) + state["step"])


def test_truncated_or_foreign_file_names_the_file(tmp_path):
    path = save_checkpoint({"w": torch.randn(1000)}, tmp_path, 1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="latest.pt.*truncated"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    # Arbitrary pickled objects are refused (weights_only=True).
    foreign = tmp_path / "foreign.pt"
    torch.save({"obj": ValueError("x")}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt"):
        load_checkpoint(foreign)
    listed = tmp_path / "list.pt"
    torch.save([torch.ones(1)], listed)
    with pytest.raises(CheckpointError, match="expected a checkpoint dict"):
        load_checkpoint(listed)


def draw() -> tuple:
    return random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_rng_state_round_trip_through_a_file(tmp_path):
    random.gauss(0, 1)  # leaves a cached gaussian in python's state
    np.random.randn()  # and one in numpy's
    save_checkpoint({"rng": rng_state()}, tmp_path, 0)
    expected = draw()
    draw()
    set_rng_state(load_checkpoint(tmp_path / "latest.pt")["rng"])
    assert draw() == expected
