"""kill -9 part way, run again: train-ac and vqa train (killed after its warm start) end with the
losses of a run in one go (pretrain has its own such test in test_pretrain.py; probe train and
anticipate checkpoint per epoch: test_resume_heads.py)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import test_train_ac
import test_vqa_answer_probe

from vjepa2.cli import main


def losses(out, log: str = "log.jsonl") -> list:
    rows = map(json.loads, (out / log).read_text().splitlines())
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def kill_after(args: list[str], out, step: int, log: str = "log.jsonl") -> None:
    """Run ``vjepa2 args`` in a child and SIGKILL it once its ``log`` has reached ``step``."""
    child = subprocess.Popen([sys.executable, "-m", "vjepa2", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        if (out / log).is_file() and any(row[0] >= step for row in steps_so_far(out, log)):
            break
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert (out / "latest.pt").is_file(), "killed before its first checkpoint"


def steps_so_far(out, log: str) -> list:
    try:
        return [(r["step"],) for r in map(json.loads, (out / log).read_text().splitlines())]
    except json.JSONDecodeError:  # a line being written as we read
        return []


def vqa_args(qa_file, out) -> list[str]:
    return [
        "vqa",
        "train",
        *test_vqa_answer_probe.overrides(qa_file, out, "run.log_every=1", "run.checkpoint_every=1"),
    ]


def ac_args(episodes, out) -> list[str]:
    return test_train_ac._args(episodes, out, "--run.steps", "6", "--run.checkpoint-every", "1")


# command -> (its arguments for an output folder, its fixture, the step to kill it after)
RUNS = {
    "train-ac": (ac_args, "episodes", 3),
    "vqa train": (vqa_args, "qa_file", 6),  # the warm start ends at step 4: killed in the LM's phase
}


@pytest.mark.parametrize("command", RUNS)
def test_killed_and_rerun_equals_one_run(command, tmp_path, request):
    make_args, fixture, kill_at = RUNS[command]
    data = request.getfixturevalue(fixture)
    assert main(make_args(data, tmp_path / "full")) == 0
    kill_after(make_args(data, tmp_path / "killed"), tmp_path / "killed", kill_at)
    assert main(make_args(data, tmp_path / "killed")) == 0
    got, want = losses(tmp_path / "killed"), losses(tmp_path / "full")
    assert [step for step, _ in got] == [step for step, _ in want]
    # the killed child computed the first steps in another process: its float sums may round
    # differently (thread count), as in test_pretrain's SIGKILL test
    np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=0, atol=1e-6)


episodes = test_train_ac.episodes
qa_file = test_vqa_answer_probe.qa_file
