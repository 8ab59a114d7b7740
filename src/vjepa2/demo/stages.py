"""The demo's chain: one row per run of one of the project's own commands.

A stage is ``vjepa2 <command> --config configs/demo/<profile>/<config>.yaml`` plus the
``key=value`` overrides that wire it to the folders of the stages before it (``runs/demo/<name>/``).
The configs hold the sizes (quick or full); this file holds only the wiring, so the demo never
re-implements a command. ``seconds`` are the expected wall times on an idle 2-core CPU (quick,
full; quick from the CPU seconds measured in BENCHMARKS.md, full scaled from them by the work):
they weight the progress bar and its time left, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROFILES = ("quick", "full")
# <out>/demo.json: every stage's status and the run's timings, written by the runner once the
# chain has run, read by the report.
STATUS_FILE = "demo.json"
# Probe runs, per profile: the synthetic world's tasks and the feature sources compared on each.
PROBE_TASKS = {"quick": ("direction",), "full": ("direction", "collision", "hidden")}
PROBE_SOURCES = {"quick": ("pretrained", "random"), "full": ("pretrained", "random")}


@dataclass(frozen=True)
class Stage:
    """One command run: its folder is ``<out>/<name>``, its sizes ``<configs>/<config>.yaml``."""

    name: str
    section: str  # the report's chapter: watch, understand, predict, plan
    command: tuple[str, ...]  # CLI words, e.g. ("worlds", "make-videos")
    config: str  # config file stem under configs/demo/<profile>/
    wiring: Callable[[Callable[[str], Path]], list[str]]  # folder of a stage -> free args and overrides
    needs: tuple[str, ...] = ()
    seconds: tuple[float, float] = (10.0, 60.0)
    requires: tuple[str, ...] = ()  # Python packages the command imports beyond torch's stack

    def argv(self, folder_of: Callable[[str], Path], configs: Path) -> list[str]:
        """The command line after ``vjepa2``."""
        return [*self.command, "--config", str(configs / f"{self.config}.yaml"), *self.wiring(folder_of)]

    def display(self, folder_of: Callable[[str], Path], configs: Path) -> str:
        return "vjepa2 " + " ".join(self.argv(folder_of, configs))


def _checkpoint(d: Callable[[str], Path]) -> str:
    return str(d("pretrain") / "latest.pt")


def _probe_stage(task: str, source: str) -> Stage:
    def wiring(d):
        videos = d("videos")
        encoder = f"random:{_checkpoint(d)}" if source == "random" else _checkpoint(d)
        args = [
            f"train={videos / f'{task}_train.csv'}",
            f"val={videos / f'{task}_val.csv'}",
            f"encoder={encoder}",
            f"out={d(f'probe-{task}-{source}')}",
            # One cache per encoder: the three tasks read the same clips.
            f"cache_dir={d('probe-features') if source != 'random' else d('probe-features-random')}",
        ]
        return args + (["single_frame=true"] if source == "single-frame" else [])

    return Stage(
        f"probe-{task}-{source}",
        "understand",
        ("probe", "train"),
        "probe",
        wiring,
        needs=("videos", "pretrain"),
        seconds=(12.0, 40.0),
    )


def _ac_stage(encoder: str) -> Stage:
    def wiring(d):
        checkpoint = _checkpoint(d)
        return [
            f"data.source=[{d('collect-random')},{d('collect-expert')}]",
            f"model.encoder={checkpoint if encoder == 'pretrained' else 'random:' + checkpoint}",
            f"run.out={d(f'ac-{encoder}')}",
        ]

    needs = ("collect-random", "collect-expert", "pretrain")
    return Stage(f"ac-{encoder}", "plan", ("train-ac",), "train-ac", wiring, needs, seconds=(14.0, 120.0))


def _plan_stage(encoder: str) -> Stage:
    def wiring(d):
        args = [f"model={d(f'ac-{encoder}') / 'model'}", f"out={d(f'plan-{encoder}')}"]
        # The baselines (random actions, the simulator oracle) do not depend on the encoder:
        # they run once, beside the pretrained encoder's world model.
        return args + ([] if encoder == "pretrained" else ["methods=[world_model]"])

    return Stage(
        f"plan-{encoder}", "plan", ("plan-eval",), "plan-eval", wiring, (f"ac-{encoder}",), (9.0, 70.0)
    )


def _maker(name: str, section: str, command: tuple[str, ...], seconds: tuple[float, float]) -> Stage:
    """A stage that makes data: its config is named after it, and it writes into its folder."""
    return Stage(name, section, command, name, lambda d: [f"out={d(name)}"], seconds=seconds)


def chain(profile: str) -> list[Stage]:
    """Every stage of the demo, in running order (a stage only needs stages before it)."""
    stages = [
        _maker("videos", "watch", ("worlds", "make-videos"), (12.0, 45.0)),
        Stage(
            "pretrain",
            "watch",
            ("pretrain",),
            "pretrain",
            lambda d: [str(d("videos") / "videos"), f"run.out={d('pretrain')}"],
            needs=("videos",),
            seconds=(20.0, 240.0),
        ),
    ]
    stages += [_probe_stage(t, s) for t in PROBE_TASKS[profile] for s in PROBE_SOURCES[profile]]
    stages += [
        _maker("pairs", "predict", ("worlds", "make-physics-pairs"), (4.0, 20.0)),
        Stage(
            "physics",
            "predict",
            ("physics-eval",),
            "physics",
            lambda d: [str(d("pairs")), f"encoder={_checkpoint(d)}", f"out={d('physics')}"],
            needs=("pairs", "pretrain"),
            seconds=(9.0, 60.0),
        ),
        _maker("vqa-set", "understand", ("worlds", "make-vqa"), (6.0, 30.0)),
        Stage(
            "vqa",
            "understand",
            ("vqa", "train"),
            "vqa",
            lambda d: [
                f"train={d('vqa-set') / 'train.jsonl'}",
                f"val={d('vqa-set') / 'val.jsonl'}",
                f"encoder={_checkpoint(d)}",
                f"run.out={d('vqa')}",
            ],
            needs=("vqa-set", "pretrain"),
            seconds=(15.0, 130.0),
            requires=("transformers", "tokenizers"),
        ),
        _maker("collect-random", "plan", ("worlds", "collect"), (3.0, 12.0)),
        _maker("collect-expert", "plan", ("worlds", "collect"), (3.0, 12.0)),
    ]
    stages += [_ac_stage("pretrained"), _ac_stage("random")]
    stages += [_plan_stage("pretrained"), _plan_stage("random")]
    return stages
