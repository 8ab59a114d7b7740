"""README's commands and Python blocks run as written (issue 33, item 3).

Every ```bash and ```python block of README.md is a row of ``BLOCKS``, keyed by its first line:
either it runs, in README's order in one scratch folder (each block may use what an earlier one
made, as a reader following the page would), or it is listed as not run with the reason. A block
that runs keeps its text; only its sizes shrink: ``tiny`` gives, per command, the options that
make it small (they replace the same options where the block gives them), and ``subs`` the few
words a block must have changed to run here (each says why). Released weights come from a mirror
folder (``VJEPA2_MIRROR``, downloads off) holding a tiny checkpoint written in the released
``vitl.pt`` layout, so ``vjepa2.load("vitl")`` and ``--encoder vitl`` go the whole way a real
name goes: table, mirror, cache, SHA-256, loader.

Lines that cannot run here are never skipped silently: a ``torchrun`` line (it asks for 8 GPUs) is
parsed by the command line's own parser (every option, value and config file checked), and a
block marked ``parse`` (the demo: minutes of CPU) is parsed line by line. The quickstart block is
what ``.ci/run`` runs (``tests/test_demo_report.py::test_readme_quickstart_is_what_ci_runs``).

CONTRIBUTING.md's example of a training command is run too, stopped and resumed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from release_server import reference_checkpoint

from vjepa2.cli import main, parse

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


@dataclass(frozen=True)
class Block:
    """How the test treats one README block: ``run`` (the default), ``parse`` (each command
    parsed by the CLI, not run) or ``skip``; ``reason`` says why a block is not run."""

    mode: str = "run"
    reason: str = ""
    tiny: dict[str, str] = field(default_factory=dict)  # command -> options that make it small
    subs: tuple[tuple[str, str, str], ...] = ()  # (old, new, why) in the block's text


TINY_PLAN = (
    "episodes=1 max_steps=2 planner.cem.samples=8 planner.cem.iterations=1 planner.cem.elites=2 "
    "oracle.cem.samples=8 oracle.cem.iterations=1 oracle.cem.elites=2 strips=0 landscape=0"
)

BLOCKS: dict[str, Block] = {
    "pip install torch==2.13.0 && pip install -e . && vjepa2 demo                            # install, run the whole system, write the report": Block(
        "skip",
        "installs packages into the environment; its first line is the full demo (18 min), its "
        "second the test suite itself, which .ci/run runs as written "
        "(test_demo_report.py::test_readme_quickstart_is_what_ci_runs)",
    ),
    "vjepa2 weights list                  # every release and the names that load it": Block(),
    "import torch": Block(
        subs=(('"."', repr(str(ROOT)), "the checkout is the repository root, the test runs elsewhere"),),
    ),
    "import numpy as np": Block(),
    "vjepa2 worlds make-videos --out data/worlds                          # labelled synthetic videos, no data set needed": Block(
        tiny={"worlds make-videos": "--num-videos 12 --workers 1", "extract": "--num-frames 8"},
    ),
    "vjepa2 pretrain --config configs/pretrain/tiny-cpu.yaml       # ~4 min in fp32 on a 2-core AVX2 EPYC (2 min on an AMX Xeon)": Block(
        tiny={
            "pretrain": "run.steps=2 run.batch_size=2 data.workers=0 data.synthetic_videos=4 "
            "schedule.warmup_steps=1 schedule.constant_steps=1 schedule.cooldown_steps=0"
        },
    ),
    "vjepa2 probe train --config configs/probe/tiny-cpu.yaml --train data/worlds/direction_train.csv \\": Block(
        tiny={"probe train": "epochs=1 workers=0"},
    ),
    "vjepa2 worlds make-vqa --out data/vqa                 # questions about synthetic videos, held out by scene": Block(
        tiny={
            "worlds make-vqa": "--num-scenes 6 --num-pairs 1 --workers 1",
            "vqa train": "run.steps=2 model.probe_steps=1 clip.workers=0",
            "vqa ask": "--max-new-tokens 4",
        },
    ),
    "vjepa2 worlds make-physics-pairs --out data/physics --num-pairs 200      # 800 IntPhys-style quadruplets": Block(
        tiny={
            "worlds make-physics-pairs": "--num-pairs 1 --workers 1 --violations permanence",
            "physics-eval": "--resamples 10 --plot-pairs 0",
        },
    ),
    "vjepa2 worlds collect --env reach --policy random --episodes 200 --steps 30 --seed 1 --lossless true --out runs/reach-random": Block(
        tiny={
            "worlds collect": "--episodes 3 --steps 5",
            "train-ac": "run.steps=2 run.eval_every=1 schedule.warmup_steps=1",
            "plan-eval": TINY_PLAN,
        },
    ),
    "vjepa2 demo --quick                      # every stage at small settings, then the report": Block(
        "parse",
        "the quick demo takes about 2 minutes of CPU (BENCHMARKS.md); its stages are the commands "
        "run above, and tests/test_demo_report.py runs the chain and parses every stage's command",
    ),
}

COMMANDS = sorted(
    {
        "weights list", "weights download", "weights path", "weights verify", "worlds make-videos",
        "worlds make-physics-pairs", "worlds make-vqa", "worlds collect", "extract", "pretrain",
        "plot-log", "probe train", "probe eval", "classify", "vqa train", "vqa eval", "vqa ask",
        "physics-eval", "train-ac", "plan-eval", "plan", "demo",
    },
    key=len,
    reverse=True,
)  # fmt: skip


def readme_blocks() -> list[tuple[str, str]]:
    """(language, text) of every ```bash and ```python block of README.md, in order."""
    text = README.read_text()
    return [(m[1], m[2]) for m in re.finditer(r"^```(bash|python)\n(.*?)^```", text, re.M | re.S)]


def commands(text: str) -> list[list[str]]:
    """The command lines of a bash block as words: continuation lines joined, comments dropped."""
    joined = text.replace("\\\n", " ")
    return [words for line in joined.splitlines() if (words := shlex.split(line, comments=True))]


def command_name(argv: list[str]) -> str:
    words = " ".join(argv[:2])
    name = next((c for c in COMMANDS if words == c or words.startswith(c + " ")), None)
    assert name is not None, f"README runs a vjepa2 command this test does not know: {argv}"
    return name


def shrink(argv: list[str], extra: str) -> list[str]:
    """``argv`` with ``extra``'s options: one given already takes the new value, others are added."""
    argv, words = list(argv), shlex.split(extra)
    pairs = []
    while words:
        word = words.pop(0)
        pairs.append((word, words.pop(0)) if word.startswith("--") else (word, None))
    for word, value in pairs:
        if value is not None:  # --name value
            if word in argv:
                argv[argv.index(word) + 1] = value
            else:
                argv += [word, value]
        else:  # key=value
            key = word.split("=", 1)[0]
            argv = [a for a in argv if a.split("=", 1)[0] != key and a != f"--{key}"] + [word]
    return argv


def local(argv: list[str]) -> list[str]:
    """Shipped configs read from the checkout (the block runs in a scratch folder)."""
    return [str(ROOT / a) if a.startswith("configs/") else a for a in argv]


def run_bash(block: Block, text: str) -> list[str]:
    """Run (or parse) every command of a bash block; returns what was only parsed, with why."""
    parsed = []
    for words in commands(text):
        if words[0] == "torchrun":
            argv = local(words[words.index("-m") + 2 :])  # "-m vjepa2 <command> ..."
            parse(argv)
            parsed.append(f"{' '.join(words[:4])} ...: parsed (needs {words[2].split('=')[1]} GPUs)")
            continue
        assert words[0] == "vjepa2", f"README block runs something other than vjepa2: {words}"
        argv = local(words[1:])
        name = command_name(argv)
        if block.mode == "parse":
            parse(argv)
            parsed.append(f"vjepa2 {name}: parsed ({block.reason})")
            continue
        if name in block.tiny:
            argv = shrink(argv, block.tiny[name])
        assert main(argv) == 0, f"exit status not 0: vjepa2 {' '.join(argv)}"
    return parsed


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A scratch working folder; released names served from a mirror folder, downloads off."""
    mirror = tmp_path / "mirror"
    reference_checkpoint(mirror / "vitl.pt")  # a tiny model in the released vitl.pt layout
    monkeypatch.setenv("VJEPA2_MIRROR", str(mirror))
    monkeypatch.setenv("VJEPA2_OFFLINE", "1")
    monkeypatch.setenv("VJEPA2_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_every_block_is_run_or_listed_with_a_reason():
    firsts = [text.splitlines()[0] for _, text in readme_blocks()]
    assert len(firsts) == len(set(firsts)), "two README blocks begin alike: the table cannot tell them apart"
    missing = [line for line in firsts if line not in BLOCKS]
    stale = [line for line in BLOCKS if line not in firsts]
    assert not missing, f"README blocks neither run nor listed here with a reason: {missing}"
    assert not stale, f"rows of BLOCKS that match no README block (README changed?): {stale}"
    for line, block in BLOCKS.items():
        assert block.mode in ("run", "parse", "skip"), line
        assert block.mode == "run" or block.reason, f"a block not run needs its reason: {line}"


def test_readme_blocks_run_as_written(scratch, capsys):
    """Every block, in README's order, in one scratch folder (see the module docstring)."""
    report = []
    for language, text in readme_blocks():
        block = BLOCKS[text.splitlines()[0]]
        where = f"README block {text.splitlines()[0]!r}"
        if block.mode == "skip":
            report.append(f"not run: {where}: {block.reason}")
            continue
        for old, new, _why in block.subs:
            assert old in text, f"{where}: no {old!r} to substitute"
            text = text.replace(old, new)
        if language == "python":
            exec(compile(text, where, "exec", dont_inherit=True), {"__name__": "__readme__"})  # as pasted
        else:
            report += run_bash(block, text)
    with capsys.disabled():
        print("\n" + "\n".join(report))
    # What the blocks promise is there: the Python block's files, the commands' outputs.
    assert (scratch / "vitl-ours" / "model.safetensors").is_file()
    assert (scratch / "vitl-hf" / "config.json").is_file()
    assert sorted(p.name for p in (scratch / "feats").glob("*.npy"))
    for folder in (
        "runs/tiny-cpu",
        "runs/probe-direction",
        "runs/vqa/model",
        "runs/physics",
        "runs/ac-reach",
    ):
        assert (scratch / folder).is_dir(), folder


def test_contributing_training_command_example_runs_and_resumes(tmp_path, monkeypatch):
    """CONTRIBUTING's "Adding a training command" example is a whole command on today's scaffold:
    it runs, and stopped halfway then run again it logs the losses of an uninterrupted run."""
    import json

    text = (ROOT / "CONTRIBUTING.md").read_text()
    (code,) = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    space = {"__name__": "__contributing__"}
    exec(compile(code, "CONTRIBUTING.md example", "exec", dont_inherit=True), space)
    monkeypatch.chdir(tmp_path)

    def losses(out: str, stop_after: int = 0) -> list[float]:
        cfg = space["MyConfig"]()
        cfg.run.out, cfg.run.stop_after = out, stop_after
        assert space["run_my_command"](cfg) == 0
        return [json.loads(line)["loss"] for line in (tmp_path / out / "log.jsonl").read_text().splitlines()]

    whole = losses("whole")
    losses("resumed", stop_after=10)
    assert (tmp_path / "resumed" / "latest.pt").is_file()
    assert losses("resumed") == whole
