"""``probe train`` and ``anticipate`` run on the training scaffold: a run killed (SIGKILL) after an
epoch's checkpoint and run again gives the heads, the log and the results of one uninterrupted run."""

import json

import pytest
from test_kill_resume import kill_after
from test_probe_train import write_colour_videos

from vjepa2.cli import main

METRICS = "metrics.jsonl"


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    folder = tmp_path_factory.mktemp("colours")
    return write_colour_videos(folder, [0, 1, 2] * 4, "train", seed=0), write_colour_videos(
        folder, [0, 1, 2, 2, 1, 0], "val", seed=1
    )


def probe_args(colours, out):
    train, val = colours
    cache = out.parent / "cache"  # shared: the encoder runs once for the three runs
    return ["probe", "train", "--train", str(train), "--val", str(val), "--out", str(out), "--num-frames", "4",
            "--cache-dir", str(cache),
            "--crop", "32", "--epochs", "4", "--probe-depth", "1", "--batch-size", "4", "--workers", "0",
            "--dtype", "fp32", "lrs=[1e-3,3e-3]", "wds=[0.01]"]  # fmt: skip


def anticipate_args(out):
    data = out.parent / "full" / "data"  # made by the first run, read by the others
    given = ["--train", str(data / "annotations_train.csv"), "--val", str(data / "annotations_val.csv")]
    return ["anticipate", *(given if data.is_dir() else ["synthetic=6"]), "--out", str(out), "--num-frames", "4", "--fps", "4",
            "--anticipation-sec", "0.5", "--crop", "32", "--epochs", "3", "--probe-depth", "1", "--batch-size", "4",
            "lrs=[1e-3,3e-3]", "wds=[0.01]", "--top-k", "3", "--dtype", "fp32"]  # fmt: skip


def results(out) -> tuple[list, dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("seconds", None)
        row.pop("encoder_calls", None)  # the resumed run encodes only what it needs
    heads = json.loads((out / "heads.json").read_text())
    heads.pop("config")
    return rows, heads


@pytest.mark.parametrize("command", ["probe", "anticipate"])
def test_killed_and_rerun_equals_one_run(command, colours, tmp_path):
    args = (lambda out: probe_args(colours, out)) if command == "probe" else anticipate_args
    assert main(args(tmp_path / "full")) == 0
    kill_after(
        args(tmp_path / "split")[0:], tmp_path / "split", 2 * steps_per_epoch(tmp_path / "full"), METRICS
    )
    assert not (tmp_path / "split" / "heads.json").exists()
    assert main(args(tmp_path / "split")) == 0
    # the child ran its epochs with its own thread count: float sums may round differently (as in
    # test_pretrain's SIGKILL test), so numbers agree to 1e-6, everything else exactly
    got, want = leaves(results(tmp_path / "split")), leaves(results(tmp_path / "full"))
    assert [path for path, _ in got] == [path for path, _ in want]
    for (path, a), (_, b) in zip(got, want):
        assert a == (pytest.approx(b, rel=1e-5, abs=1e-6) if isinstance(b, float) else b), path


def leaves(value, path: str = "") -> list[tuple[str, object]]:
    """(path, value) of every number, string and None in nested lists and dicts, in order."""
    if isinstance(value, dict):
        return [leaf for key in value for leaf in leaves(value[key], f"{path}.{key}")]
    if isinstance(value, (list, tuple)):
        return [leaf for i, item in enumerate(value) for leaf in leaves(item, f"{path}[{i}]")]
    return [(path, value)]


def steps_per_epoch(out) -> int:
    return json.loads((out / METRICS).read_text().splitlines()[0])["step"]
