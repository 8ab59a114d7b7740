"""``vjepa2 demo``: the report a person opens (in headless Chromium when installed), and the chain's
markers, skips and resume.

The report tests build a tiny fixture run in the stages' own file formats (the real figures are
drawn by the planning plots); a full ``vjepa2 demo --quick`` is timed in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from vjepa2.demo import runner
from vjepa2.demo.report import build_report, lookup, shown
from vjepa2.demo.runner import DemoConfig, run_demo
from vjepa2.demo.stages import Stage
from vjepa2.evals.intervals import newcombe, wilson
from vjepa2.planning.plots import save_landscape, save_strip_gif, save_strips

# Names that hold a digit and are no measurement; every other number must come from metrics.json.
NAMES = ("vjepa2", "V-JEPA 2-AC", "V-JEPA 2", "L1")


def _jsonl(file: Path, rows: list[dict]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _json(file: Path, data: dict) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(data))


def _stage(status: str, seconds: float, reason: str = "") -> dict:
    entry = {"status": status, "seconds": seconds, "cpu_seconds": 2 * seconds, "reason": reason}
    return {**entry, "command": "vjepa2 x", "section": "watch"}


def fixture_run(out: Path) -> None:
    """What a quick demo leaves, small: vqa failed, plan-random skipped."""
    order = ["videos", "pretrain", "probe-direction-pretrained", "probe-direction-random", "pairs", "physics"]
    order += ["vqa-set", "vqa", "collect-random", "collect-expert", "ac-pretrained", "ac-random"]
    order += ["plan-pretrained", "plan-random"]
    stages = {name: _stage("done", 3.25) for name in order}
    stages["vqa"] = _stage("failed", 1.5, "exit status 1: RuntimeError: out of memory at step 7")
    stages["plan-random"] = _stage("skipped", 0.0, "needs stage ac-random, which failed")
    machine = {"cpu": "Test CPU 9000", "cores": 2, "load_1min_at_start": 1.234, "python": "3.11.7"}
    run = {
        "profile": "quick",
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:02:30+00:00",
    }
    _json(
        out / "demo.json",
        {"run": {**run, "machine": machine, "seconds": 150.04}, "stages": stages, "order": order},
    )
    _jsonl(
        out / "pretrain" / "log.jsonl",
        [
            {
                "step": s,
                "loss": 0.8 - 0.01 * s,
                "std_tokens": 0.75,
                "std_batch": 0.2,
                "rank": 6.0 - 0.05 * s,
                "dtype": "bf16",
            }
            for s in range(1, 31)
        ],  # fmt: skip
    )
    _json(out / "videos" / "labels.json", {"tasks": {"direction": {"chance": 0.125}}})
    (out / "videos" / "direction_val.csv").write_text(
        "".join(f"videos/clip_{i}.mp4 {i % 8}\n" for i in range(12))
    )
    for source, top1 in (("pretrained", 61.25), ("random", 16.666666)):
        _json(
            out / f"probe-direction-{source}" / "heads.json",
            {"metric": "val_top1", "best": {"val_top1": top1}},
        )
    videos, metrics = {}, {}
    for k, kind in enumerate(("permanence", "shape", "overall")):
        rel = {"value": 0.5 + 0.1 * k, "low": 0.25, "high": 0.875}
        metrics[kind] = {
            "pairs": 6,
            "mean": {"relative_accuracy_ties_half": rel},
            "max": {"relative_accuracy_ties_half": rel},
        }
        for pair in range(3 if kind != "overall" else 0):
            for possible in (True, False):
                curve = [0.7 + 0.01 * t * (0 if possible else 1) for t in range(5)]
                times = [4, 6, 8, 10, 12]
                videos[f"{kind}/{pair}/{possible}.mp4"] = {
                    "pair": f"{kind}/scene_{pair}",
                    "kind": kind,
                    "possible": possible,
                    "curve": curve,
                    "times": times,
                }
    sources = {s: {"metrics": metrics, "videos": videos} for s in ("model", "random", "pixels")}
    _json(out / "physics" / "results.json", {"sources": sources, "skipped": {}})
    for encoder in ("pretrained", "random"):
        _jsonl(
            out / f"ac-{encoder}" / "log.jsonl",
            [
                {"step": 60, "loss": 0.5, "teacher": 0.25},
                {"step": 60, "val_teacher": 0.3, "val_rollout": 0.32},
            ],
        )
    methods = {
        m: {"success_rate": r, "final_distance": 0.1234, "time_per_action_s": 0.0567}
        for m, r in (("world_model", 2 / 3), ("random", 0.0), ("oracle", 1.0))
    }
    plan = out / "plan-pretrained"
    _json(plan / "results.json", {"env": "reach", "episodes": 3, "max_steps": 20, "methods": methods})
    rng = np.random.default_rng(0)
    episodes = [([rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(n)], np.zeros((16, 16, 3), np.uint8), n < 4)
                for n in (3, 5)]  # fmt: skip
    save_strips(plan / "strip_world_model.png", episodes, columns=3)
    save_strip_gif(plan / "strip_world_model.gif", episodes)
    axis = np.linspace(-1, 1, 5)
    save_landscape(
        plan / "energy_landscape.png", axis, {"model": rng.random((5, 5)), "simulator": rng.random((5, 5))}
    )


class Numbers(HTMLParser):
    """The page's ``data-metric`` spans (path, digits, text), its images, and its other text."""

    def __init__(self):
        super().__init__()
        self.metrics, self.images, self.other, self.stack = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
            return
        self.stack.append((tag, attrs.get("data-metric"), attrs.get("data-digits"), []))

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1][0] == tag:
            _, path, digits, text = self.stack.pop()
            if path:
                self.metrics.append((path, digits, "".join(text)))

    def handle_data(self, data):
        inside = [entry for entry in self.stack if entry[1] or entry[0] in ("code", "style", "title")]
        if inside:
            inside[-1][3].append(data)
        else:
            self.other.append(data)


def check_numbers(metrics: dict, spans: list[tuple[str, str | None, str]], other_text: str) -> None:
    assert spans, "the page shows no metric"
    for path, digits, text in spans:
        value = lookup(metrics, path)
        assert value is not None, f"{path} is shown but not in metrics.json"
        assert text == shown(value, int(digits) if digits else None), (path, text, value)
    for name in NAMES:
        other_text = other_text.replace(name, "")
    stray = re.findall(r"\d[\d.,]*", other_text)
    assert not stray, f"numbers on the page that are not from metrics.json: {stray}"


@pytest.fixture
def report(tmp_path):
    fixture_run(tmp_path)
    page = build_report(tmp_path)
    return page, json.loads((tmp_path / "report" / "metrics.json").read_text())


def _wilson(percent: float, n: int) -> dict:
    low, high = wilson(percent / 100, n)
    return {"value": round(percent, 1), "low": round(100 * low, 1), "high": round(100 * high, 1)}


def test_metrics_json_holds_the_stages_results(report):
    _, m = report
    direction = m["probe"]["direction"]
    assert direction["chance"] == 12.5 and direction["val_clips"] == 12
    assert direction["accuracy"]["pretrained"] == {**_wilson(61.25, 12), "vs_chance": "above"}
    assert direction["accuracy"]["random"] == {**_wilson(16.666666, 12), "vs_chance": "within"}
    low, high = newcombe(0.6125, 12, 0.16666666, 12)
    assert direction["difference"] == {
        "value": 44.6, "low": round(100 * low, 1), "high": round(100 * high, 1), "within_noise": False
    }  # fmt: skip
    # a share of 6 pairs: Wilson's interval (physics-eval's own bootstrap one is not read)
    assert m["physics"]["model"]["shape"] == {**_wilson(60.0, 6), "vs_chance": "within"}
    assert list(m["physics"]["pairs"]) == ["overall", "permanence", "shape"]  # overall first
    assert m["physics"]["difference"]["random"]["shape"]["within_noise"] is True
    plan = m["planning"]
    assert plan["world_model_pretrained"]["success"] == _wilson(100 * 2 / 3, 3)
    assert plan["oracle"]["success"] == _wilson(100.0, 3) and plan["oracle"]["success"]["low"] < 50
    assert plan["difference"]["random_actions"]["within_noise"] is True  # 2 of 3 against 0 of 3
    assert plan["oracle"]["final_distance"] == {"value": 0.123}  # no episodes.jsonl: no interval
    assert "world_model_random" not in m["planning"] and m["vqa"] == {}  # those stages left nothing
    assert m["pretrain"] == {"steps": 30, "loss_first": 0.79, "loss_last": 0.5, "std_tokens_last": 0.75,
                             "rank_first": 5.95, "rank_last": 4.5, "dtype": "bf16"}  # fmt: skip
    assert m["stages"]["vqa"]["status"] == "failed" and m["run"]["stage_seconds"] == 40.5
    assert m["run"]["stage_cpu_seconds"] == 81.0


def test_report_numbers_come_from_metrics_json(report):
    page, metrics = report
    parser = Numbers()
    parser.feed(page.read_text())
    check_numbers(metrics, parser.metrics, " ".join(parser.other))
    paths = {path for path, _, _ in parser.metrics}
    expected = {"probe.direction.accuracy.pretrained.value", "probe.direction.accuracy.pretrained.low"}
    expected |= {"planning.oracle.success.high", "stages.vqa.reason", "intervals.level"}
    assert expected <= paths
    assert "Not measured" in page.read_text()  # the failed vqa stage is said, with its reason
    figures = {Path(src).name for src in parser.images}
    expected = {"pretrain_loss.png", "pretrain_collapse.png", "probe_bars.png", "surprise_curves.png"}
    expected |= {
        "physics_bars.png",
        "rollouts_pretrained.gif",
        "energy_pretrained.png",
        "planning_success.png",
    }
    assert expected <= figures
    assert all((page.parent / src).is_file() for src in parser.images)


def chromium():
    from browser import find_chromium

    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI must run the browser test (.ci/run installs it)")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); CI runs this test")
    return executable


PAGE_STATE = """(() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('[data-metric], code').forEach(e => e.remove());
  return {
    images: [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]),
    metrics: [...document.querySelectorAll('[data-metric]')].map(e => [e.dataset.metric, e.dataset.digits || null, e.textContent]),
    other: body.textContent,
  };
})()"""


def test_report_in_headless_chromium(report):
    from browser import Browser

    page, metrics = report
    browser = Browser(chromium())
    try:
        browser.open(page.resolve().as_uri())
        state = browser.evaluate(PAGE_STATE)
        errors = browser.errors()
    finally:
        browser.close()
    assert not errors, errors
    assert len(state["images"]) >= 8
    broken = [src for src, complete, width in state["images"] if not complete or width == 0]
    assert not broken, f"images not loaded or not decoded: {broken}"
    check_numbers(metrics, [tuple(x) for x in state["metrics"]], state["other"])


def test_chain_skips_finished_stages_and_records_failures(tmp_path, monkeypatch):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "videos.yaml").write_text("num_videos: 2\nnum_frames: 4\nsize: 32\nworkers: 1\n")
    (configs / "broken.yaml").write_text("num_videos: -3\n")
    (configs / "nothing.yaml").write_text("{}\n")
    stages = [
        Stage("videos", "watch", ("worlds", "make-videos"), "videos", lambda d: [f"out={d('videos')}"]),
        Stage("missing", "plan", ("no-such-command",), "nothing", lambda d: []),
        Stage(
            "after",
            "plan",
            ("worlds", "make-videos"),
            "videos",
            lambda d: [f"out={d('after')}"],
            ("missing",),
        ),
        Stage("broken", "plan", ("worlds", "make-videos"), "broken", lambda d: [f"out={d('broken')}"]),
    ]
    monkeypatch.setattr(runner, "chain", lambda profile: stages)
    cfg = DemoConfig(quick=True, out=str(tmp_path / "demo"), configs=str(configs))
    assert run_demo(cfg) == 1
    status = json.loads((tmp_path / "demo" / "demo.json").read_text())["stages"]
    assert status["videos"]["status"] == "done" and (tmp_path / "demo" / "videos" / "labels.json").is_file()
    assert status["missing"]["status"] == "skipped" and "does not exist" in status["missing"]["reason"]
    assert status["after"] == {
        **status["after"],
        "status": "skipped",
        "reason": "needs stage missing, which skipped",
    }
    assert status["broken"]["status"] == "failed" and "num_videos" in status["broken"]["reason"]
    assert (tmp_path / "demo" / "report" / "index.html").is_file()

    marker = tmp_path / "demo" / "videos" / "stage.json"
    finished = json.loads(marker.read_text())["finished"]
    assert run_demo(cfg) == 1  # the finished stage is kept, the others are tried again
    assert json.loads(marker.read_text())["finished"] == finished
    # An interrupted stage (its marker still says running) runs again.
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "status": "running"}))
    assert run_demo(DemoConfig(**{**vars(cfg), "stages": ["videos"]})) == 1
    assert json.loads(marker.read_text())["status"] == "done"


def test_readme_quickstart_is_what_ci_runs():
    root = Path(__file__).resolve().parents[1]
    block = (root / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    install, tests = (line.split("#")[0].strip() for line in block.strip().splitlines())
    assert install.endswith("&& vjepa2 demo") and "pytest" in tests
    ci = [line.strip() for line in (root / ".ci" / "run").read_text().splitlines()]
    assert tests in ci, f".ci/run must run README's test command as written: {tests}"


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_every_stage_command_line_parses(profile, tmp_path):
    """Each stage's config and wiring is accepted by its command (nothing runs)."""
    from vjepa2.cli import parse
    from vjepa2.demo.stages import chain

    configs = Path(__file__).resolve().parents[1] / "configs" / "demo" / profile
    stages = chain(profile)
    assert len({s.name for s in stages}) == len(stages)
    for i, stage in enumerate(stages):
        assert all(need in [s.name for s in stages[:i]] for need in stage.needs), stage.name
        command, cfg = parse(stage.argv(lambda name: tmp_path / name, configs))
        assert command == " ".join(stage.command)


def test_a_stage_output_in_another_format_is_named_not_fatal(tmp_path):
    fixture_run(tmp_path)
    _json(tmp_path / "plan-pretrained" / "results.json", {"methods": {"world_model": {"success": 1}}})
    page = build_report(tmp_path)
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["planning"] == {} and "KeyError" in metrics["unreadable"]["planning"]
    parser = Numbers()
    parser.feed(page.read_text())
    assert ("unreadable.planning", None, metrics["unreadable"]["planning"]) in parser.metrics
    check_numbers(metrics, parser.metrics, " ".join(parser.other))


def test_a_bare_yes_no_flag_means_yes():
    from vjepa2.cli import parse

    assert parse(["demo", "--quick"])[1].quick is True
    _, cfg = parse(["demo", "--quick", "stages=[videos]", "--redo"])
    assert cfg.quick and cfg.redo and cfg.stages == ["videos"]
    assert parse(["demo", "--quick", "false"])[1].quick is False
