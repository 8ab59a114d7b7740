"""Every command of the CLI, given a bad value, stops before any work: exit status 2 and one line
naming the option and what it must be (no traceback, no silent wrong run)."""

import pytest

from vjepa2.cli import COMMANDS, main

# command -> [(arguments, words the one line must hold)]
BAD = {
    "pretrain": [
        (["schedule.lr=nan"], "schedule.lr: must be a finite number, got nan"),
        (["schedule.lr=-1"], "schedule.lr: must be 0 or more, got -1.0"),
        (["ema.start=2"], "ema.start: must be 1 or less, got 2.0"),
        (["data.fps=-1"], "data.fps: must be more than 0, got -1.0"),
        (["data.fps=0"], "data.fps: must be more than 0, got 0.0"),
        (["data.num_frames=0"], "data.num_frames: must be 1 or more, got 0"),
        (["data.crop=15"], "data.crop: 15 px is not a whole number of 16 px patches"),
        (["data.num_frames=5"], "data.num_frames: 5 is not a whole number of 2-frame tubelets"),
        (["run.device=tpu"], "run.device: unknown device 'tpu'"),
        (["run.dtype=fp16"], "run.dtype: unknown dtype 'fp16'"),
        (
            ["--run.batch-size", "2", "run.batch_size=3"],
            "run.batch_size is given twice, as --run.batch-size 2 and run.batch_size=3",
        ),
        (["run.batch_size=0"], "run.batch_size: must be 1 or more, got 0"),
    ],
    "train-ac": [
        (["schedule.lr=nan"], "schedule.lr: must be a finite number, got nan"),
        (["model.depth=0"], "model.depth: must be 1 or more, got 0"),
        (["--run.device", "tpu"], "run.device: unknown device 'tpu'"),
        (["data.fps=-1"], "data.fps: must be 0 or more, got -1.0"),
    ],
    "vqa train": [(["schedule.lr=inf"], "schedule.lr: must be a finite number, got inf")],
    "extract": [
        (["--num-frames", "0"], "num_frames: must be 1 or more, got 0"),
        (["--num-clips", "0"], "num_clips: must be 1 or more, got 0"),
        (["--device", "tpu"], "device: unknown device 'tpu'"),
    ],
    "shards make": [
        (["--shard-size-mb", "nan"], "shard_size_mb: must be a finite number, got nan"),
        (["--shard-size-mb", "0"], "shard_size_mb: must be more than 0"),
        (["--weights", "[-1]"], "weights: must be 0 or more, got -1.0"),
    ],
    "worlds make-videos": [
        (["--size", "0"], "size: must be 8 or more, got 0"),
        (["fps=0"], "fps: must be more"),
    ],
    "worlds make-physics-pairs": [
        (["--size", "0"], "size: must be 8 or more, got 0"),
        (["--violations", "[gravity]"], "violations must be 'all' or a comma-separated subset"),
    ],
    "worlds make-vqa": [(["--num-frames", "0"], "num_frames: must be 1 or more, got 0")],
    "worlds collect": [(["--fps", "0"], "fps: must be more than 0")],
    "episodes to-clips": [(["fps=-1"], "fps: must be 0 or more, got -1.0")],
    "episodes to-lerobot": [
        (["codec=mp3"], "codec must be one of ['av1', 'h264', 'lossless'], got 'mp3'"),
        (["version=v1.6"], "version must be one of ['v2.1', 'v3.0'], got 'v1.6'"),
    ],
    "episodes from-lerobot": [(["fps=-1"], "fps: must be 0 or more, got -1.0")],
    "probe train": [
        (["--epochs", "0"], "epochs: must be 1 or more, got 0"),
        (["--device", "cuda:x"], "device: unknown device 'cuda:x'"),
        (["--num-frames", "0"], "num_frames: must be 1 or more, got 0"),
        (["--lrs", "[nan]"], "lrs: must be a finite number, got nan"),
    ],
    "probe eval": [(["--device", "tpu"], "device: unknown device 'tpu'")],
    "classify": [(["--device", "tpu"], "device: unknown device 'tpu'")],
    "anticipate": [(["--fps", "0"], "fps: must be more than 0, got 0.0")],
    "physics-eval": [(["--device", "tpu"], "device: unknown device 'tpu'")],
    "plan-eval": [(["planner.device=tpu"], "planner.device: unknown device 'tpu'")],
    "plan": [(["planner.device=tpu"], "planner.device: unknown device 'tpu'")],
    "vqa eval": [(["--device", "tpu"], "device: unknown device 'tpu'")],
    "vqa ask": [(["--device", "tpu"], "device: unknown device 'tpu'")],
    "convert": [(["nowhere.pt"], "nowhere.pt")],
    "plot-log": [(["nowhere.jsonl"], "log file not found: nowhere.jsonl")],
    "demo": [(["stages=[nothing]"], "nothing")],
    "bench": [
        (["--repeats", "0"], "repeats: must be 1 or more, got 0"),
        (["--device", "tpu"], "device: unknown device 'tpu'"),
    ],
    "weights list": [(["--kind", "nothing"], "nothing")],
    "weights download": [(["no-such-model"], "no-such-model")],
    "weights path": [(["no-such-model"], "no-such-model")],
    "weights verify": [(["no-such-model"], "no-such-model")],
}

CASES = [(command, args, words) for command, cases in BAD.items() for args, words in cases]


def test_the_table_covers_every_command():
    assert set(BAD) == set(COMMANDS), set(COMMANDS) ^ set(BAD)


@pytest.mark.parametrize("command, args, words", CASES, ids=[f"{c}:{' '.join(a)}" for c, a, _ in CASES])
def test_a_bad_value_is_one_line_and_exit_2(command, args, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a command would write lands here
    assert main([*command.split(), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"vjepa2 {command}: error: ") and words in err[0], err
