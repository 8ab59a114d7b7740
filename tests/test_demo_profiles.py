"""``vjepa2 demo``: a run folder keeps the profile that made it (quick or full), a stage that cannot
run says why, and the console prints reasons as written.

No command runs here: the stages' markers are written as a finished demo leaves them and
``Chain.run_stage`` is replaced by a stand-in that records which stage ran on which profile
(test_demo_report.py runs real commands).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vjepa2.atomic import atomic_write_json
from vjepa2.demo import runner
from vjepa2.demo.progress import ChainProgress
from vjepa2.demo.runner import STATUS_FILE, Chain, DemoConfig, run_demo
from vjepa2.demo.stages import Stage
from vjepa2.errors import UserError


@pytest.fixture
def ran(monkeypatch):
    """The (profile, stage) of every stage the demo runs; each one finishes at once."""
    calls = []

    def run_stage(self, stage, tick):
        calls.append((self.profile, stage.name))
        return self.record(stage, "done", 0.5)

    monkeypatch.setattr(Chain, "run_stage", run_stage)
    return calls


def finished_demo(out: Path, profile: str) -> dict[str, bytes]:
    """Every stage of ``profile`` done in ``out``, and its demo.json; returns the markers' bytes."""
    demo = Chain(DemoConfig(out=str(out)), profile)
    for stage in demo.stages:
        demo.record(stage, "done", 2.0)
    run = {"profile": profile, "started": "2026-01-01T00:00:00+00:00", "seconds": 123.4}
    atomic_write_json(out / STATUS_FILE, {"run": run, "stages": demo.status})
    return markers(out)


def markers(out: Path) -> dict[str, bytes]:
    return {m.parent.name: m.read_bytes() for m in sorted(out.glob(f"*/{runner.MARKER}"))}


def test_redo_of_one_stage_acts_on_the_folders_profile(tmp_path, ran, capsys):
    out = tmp_path / "demo"
    before = finished_demo(out, "quick")
    assert run_demo(DemoConfig(out=str(out), stages=["physics"], redo=True)) == 0
    assert ran == [("quick", "physics")]
    assert "holds the quick demo; going on with it" in capsys.readouterr().err
    after = markers(out)
    assert {k: v for k, v in after.items() if k != "physics"} == {
        k: v for k, v in before.items() if k != "physics"
    }
    assert json.loads(after["physics"])["profile"] == "quick"
    status = json.loads((out / STATUS_FILE).read_text())
    assert status["run"]["profile"] == "quick"
    assert {e["status"] for e in status["stages"].values()} == {"done"} and len(status["stages"]) == len(
        before
    )


def test_report_only_reads_the_run_that_made_the_folder(tmp_path, ran):
    out = tmp_path / "demo"
    before = finished_demo(out, "quick")
    assert run_demo(DemoConfig(out=str(out), report_only=True)) == 0
    assert ran == [] and markers(out) == before
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["run"]["profile"] == "quick" and metrics["run"]["seconds"] == 123.4
    assert set(metrics["stages"]) == set(before) and metrics["run"]["stage_seconds"] == 2.0 * len(before)


def test_the_other_profile_is_refused_and_nothing_is_touched(tmp_path, ran, user_error):
    out = tmp_path / "demo"
    before = finished_demo(out, "quick")
    line = user_error(["demo", "--quick", "false", "--out", str(out)])
    assert "holds the quick demo" in line and f"--out {out}-full" in line
    assert ran == [] and markers(out) == before
    assert run_demo(DemoConfig(out=str(out), quick=True)) == 0  # its own profile, named: fine
    # a folder an older version left with both profiles' stages is refused whatever is asked
    full = Chain(DemoConfig(out=str(out)), "full")
    full.record(full.stages[0], "done", 1.0)
    with pytest.raises(UserError, match="holds stages of both profiles"):
        run_demo(DemoConfig(out=str(out), report_only=True))


def test_a_fresh_folder_is_full_unless_quick_is_asked(tmp_path, ran):
    assert runner.choose_profile(DemoConfig(out=str(tmp_path / "a"))) == "full"
    assert runner.choose_profile(DemoConfig(out=str(tmp_path / "a"), quick=True)) == "quick"


def test_a_stage_that_cannot_run_says_why_and_strict_decides_the_exit(tmp_path, monkeypatch, ran, capsys):
    stages = [
        Stage("videos", "watch", ("worlds", "make-videos"), "videos", lambda d: []),
        Stage("vqa", "understand", ("vqa", "train"), "vqa", lambda d: [], requires=("no_such_module_q7",)),
    ]
    monkeypatch.setattr(runner, "chain", lambda profile: stages)
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("videos", "vqa"):
        (configs / f"{name}.yaml").write_text("{}\n")
    cfg = DemoConfig(quick=True, out=str(tmp_path / "demo"), configs=str(configs))
    assert run_demo(cfg) == 0
    assert ran == [("quick", "videos")]
    status = json.loads((tmp_path / "demo" / STATUS_FILE).read_text())["stages"]
    reason = (
        "needs the Python package(s) no_such_module_q7, not installed here: pip install no_such_module_q7"
    )
    assert status["vqa"]["status"] == "skipped" and status["vqa"]["reason"] == reason
    assert "no_such_module_q7" in capsys.readouterr().err
    assert run_demo(DemoConfig(**{**vars(cfg), "strict": True})) == 1


def test_reasons_keep_their_brackets_on_the_console(capsys):
    """rich reads ``[vqa]`` as a style tag; the console must print it."""
    progress = ChainProgress([("vqa[x]", 1.0)], "quick")
    with progress:
        progress.begin("vqa[x]")
        progress.tick(0.1, "step [bold] 3")
        entry = {"status": "failed", "seconds": 1.0, "reason": "pip install 'vjepa2[vqa]'"}
        progress.end("vqa[x]", entry)
    err = capsys.readouterr().err
    assert "vqa[x] (1 s): pip install 'vjepa2[vqa]'" in err
