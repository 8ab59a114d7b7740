"""``vjepa2 demo``: the whole system on the built-in world, one stage after another, then a report.

Each stage runs the project's own command in a child process (``python -m vjepa2 ...``, its
output in ``<out>/<stage>/demo.log``), so a crash or a missing command costs that stage only.
``<out>/<stage>/stage.json`` says how a stage ended; it is written atomically, and a stage whose
marker says ``done`` with the same command line is not run again: an interrupted demo, run again,
goes on where it stopped (and the commands resume their own runs from ``latest.pt``). A marker
with another command line (another ``--configs``) clears that stage's folder first.

A run folder holds one profile (quick or full), the one its markers name. ``--quick`` not given
means that profile, so ``stages=[x] --redo`` and ``--report-only`` act on what made the folder;
the other profile asked for in it is refused before anything is touched (``choose_profile``).

Exit status: 1 when a stage failed (its command crashed); a stage that cannot run here (a missing
package, a command this version lacks, a stage it needs that did not finish) is skipped with its
reason, in the report and on the console, and makes the exit status 1 only with ``--strict``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from vjepa2.atomic import atomic_write_json
from vjepa2.config import opt
from vjepa2.demo.stages import PROFILES, STATUS_FILE, Stage, chain
from vjepa2.errors import MissingPathError, UserError

MARKER = "stage.json"
LOG = "demo.log"


@dataclass
class DemoConfig:
    quick: bool | None = opt(
        None,
        help="small settings: about 3 minutes on a 2-core CPU (full: about 20); not given: the profile "
        "of the stages already in --out, else full",
    )
    out: str = opt("runs/demo", help="output folder: one folder per stage, report/index.html")
    configs: str = opt(
        "",
        help="folder of the stage configs (default: configs/demo/quick or configs/demo/full of this checkout)",
    )
    stages: list[str] = opt([], help="run only these stages (the others keep what they have); empty: all")
    redo: bool = opt(False, help="run the chosen stages again even when they are finished")
    report_only: bool = opt(False, help="run no stage; rebuild the report from what the stages left")
    strict: bool = opt(
        False,
        help="exit with status 1 when any stage did not finish, skipped ones included; without it "
        "only a failed stage does",
    )


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def configs_folder(cfg: DemoConfig, profile: str) -> Path:
    """``configs/demo/<profile>`` in the current folder, else in the checkout this package is in."""
    if cfg.configs:
        folder = Path(cfg.configs)
    else:
        here = Path("configs/demo") / profile
        folder = here if here.is_dir() else Path(__file__).resolve().parents[3] / "configs/demo" / profile
    if not folder.is_dir():
        raise MissingPathError(f"demo: no stage configs in {folder} (give --configs FOLDER)")
    return folder


def read_marker(folder: Path) -> dict:
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return {}


def last_error(log: Path) -> str:
    """The line of a child's output that says what went wrong (its error line or last line)."""
    lines = [line.strip() for line in log.read_text(errors="replace").replace("\r", "\n").splitlines()]
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if ": error: " in line or line.split(":")[0].endswith(("Error", "Exception")):
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def last_line(log: Path) -> str:
    """The child's latest progress line (tqdm redraws with carriage returns)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - 600))
            tail = fh.read().decode(errors="replace")
    except OSError:
        return ""
    parts = [p.strip() for p in tail.replace("\r", "\n").split("\n") if p.strip()]
    return parts[-1][:70] if parts else ""


def marker_profiles(out: Path) -> dict[str, list[str]]:
    """Profile -> the stages in ``out`` whose markers that profile wrote."""
    found: dict[str, list[str]] = {}
    for marker in sorted(out.glob(f"*/{MARKER}")):
        profile = read_marker(marker.parent).get("profile")
        if profile in PROFILES:
            found.setdefault(profile, []).append(marker.parent.name)
    return found


def choose_profile(cfg: DemoConfig) -> str:
    """The profile this run acts on: the folder's when ``--quick`` is not given, else the one asked
    for, which must be the folder's. Running the other profile in a folder would replace its
    stages one at a time and leave a mix no report can describe; it is refused rather than kept
    apart in subfolders so that every stage stays in ``<out>/<stage>``, where README and the
    report say it is."""
    out = Path(cfg.out)
    found = marker_profiles(out)
    wanted = None if cfg.quick is None else ("quick" if cfg.quick else "full")
    if len(found) > 1:  # left by a version that let profiles replace each other's stages
        mixed = "; ".join(f"{profile}: {', '.join(names)}" for profile, names in found.items())
        raise UserError(
            f"demo: {out} holds stages of both profiles ({mixed}); remove it or give another --out"
        )
    if not found:
        return wanted or "full"
    held, stages = next(iter(found.items()))
    if wanted is not None and wanted != held:
        raise UserError(
            f"demo: {out} holds the {held} demo ({len(stages)} stages), which the {wanted} demo would "
            f"replace; give it another folder (--out {out}-{wanted}) or remove {out}"
        )
    if wanted is None and held != "full":
        print(f"demo: {out} holds the {held} demo; going on with it", file=sys.stderr)
    return held


def missing_packages(stage: Stage) -> str:
    """Why a stage cannot run in this environment (a Python package its command needs), or ''."""
    missing = [name for name in stage.requires if importlib.util.find_spec(name) is None]
    if not missing:
        return ""
    return f"needs the Python package(s) {', '.join(missing)}, not installed here: pip install {' '.join(missing)}"


class Chain:
    """The stages of one profile, their folders and their markers."""

    def __init__(self, cfg: DemoConfig, profile: str):
        self.profile = profile
        self.out = Path(cfg.out)
        self.configs = configs_folder(cfg, self.profile)
        self.stages = chain(self.profile)
        names = [s.name for s in self.stages]
        unknown = [name for name in cfg.stages if name not in names]
        if unknown:
            raise UserError(f"demo: unknown stages {unknown}; the {self.profile} demo has {names}")
        self.chosen = [s for s in self.stages if not cfg.stages or s.name in cfg.stages]
        missing = [str(self.configs / f"{s.config}.yaml") for s in self.chosen]
        missing = [path for path in missing if not Path(path).is_file()]
        if missing:
            raise MissingPathError(f"demo: stage configs not found: {', '.join(missing)}")
        self.status: dict[str, dict] = {}

    def folder(self, name: str) -> Path:
        return self.out / name

    def argv(self, stage: Stage) -> list[str]:
        return stage.argv(self.folder, self.configs)

    def seconds(self, stage: Stage) -> float:
        return stage.seconds[PROFILES.index(self.profile)]

    def finished(self, stage: Stage) -> bool:
        marker = read_marker(self.folder(stage.name))
        return marker.get("status") == "done" and marker.get("argv") == self.argv(stage)

    def blocked(self, stage: Stage) -> str:
        """Why a stage cannot run (a stage it needs did not finish), or ''."""
        for need in stage.needs:
            state = self.status.get(need, {})  # this run's, or a finished marker of this profile
            if state.get("status") != "done":
                return f"needs stage {need}, which {'did not run' if not state else state['status']}"
        return ""

    def record(self, stage: Stage, status: str, seconds: float, reason: str = "", cpu: float = 0.0) -> dict:
        entry = {
            "status": status,
            "argv": self.argv(stage),
            "command": stage.display(self.folder, self.configs),
            "section": stage.section,
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "reason": reason,
            "profile": self.profile,
            "finished": now(),
        }
        self.status[stage.name] = entry
        atomic_write_json(self.folder(stage.name) / MARKER, entry)
        return entry

    def run_stage(self, stage: Stage, tick) -> dict:
        """Run one stage's command to its end; ``tick(elapsed_s, last_line)`` is called twice a second."""
        folder = self.folder(stage.name)
        marker = read_marker(folder)
        if marker and marker.get("argv") != self.argv(stage):
            shutil.rmtree(folder)  # another profile's run: its checkpoints must not be resumed
        folder.mkdir(parents=True, exist_ok=True)
        # The profile from the start: an interrupted stage's folder still says whose it is.
        running = {"status": "running", "argv": self.argv(stage), "profile": self.profile, "started": now()}
        atomic_write_json(folder / MARKER, running)
        env = dict(os.environ, MPLBACKEND="Agg", SDL_VIDEODRIVER="dummy", PYTHONUNBUFFERED="1")
        start, cpu = time.monotonic(), cpu_seconds()
        with open(folder / LOG, "wb") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "vjepa2", *self.argv(stage)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            try:
                while child.poll() is None:
                    tick(time.monotonic() - start, last_line(folder / LOG))
                    time.sleep(0.5)
            finally:
                if child.poll() is None:  # interrupted: stop the child, leave the stage unfinished
                    child.terminate()
                    child.wait(timeout=30)
        seconds, cpu = time.monotonic() - start, cpu_seconds() - cpu
        if child.returncode == 0:
            return self.record(stage, "done", seconds, cpu=cpu)
        reason = last_error(folder / LOG)
        if child.returncode == 2 and "unknown command" in reason:
            reason = f"`vjepa2 {' '.join(stage.command)}` does not exist in this version"
            return self.record(stage, "skipped", seconds, reason, cpu)
        return self.record(stage, "failed", seconds, f"exit status {child.returncode}: {reason}", cpu)


def cpu_seconds() -> float:
    """CPU time (user + system) of the finished child processes: unlike wall time, it does not
    grow when other programs share the machine, so it says what a stage costs on an idle one."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict:
    """What the timings were taken on: they are only comparable on the same load."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_1min_at_start": load,
        "python": platform.python_version(),
    }


def previous_run(out: Path, profile: str) -> dict:
    """The ``run`` entry of the last demo in ``out`` if it was this profile's, else {}."""
    try:
        run = json.loads((out / STATUS_FILE).read_text()).get("run", {})
    except (OSError, ValueError):
        return {}
    return run if run.get("profile") == profile else {}


def run_demo(cfg: DemoConfig) -> int:
    """Run the chain (what is finished is kept), then write ``<out>/report``; returns 1 when a
    stage failed, or with ``strict`` when any stage did not finish, else 0 (the report and the
    console say which stages did not finish and why)."""
    from vjepa2.demo.progress import ChainProgress
    from vjepa2.demo.report import build_report

    demo = Chain(cfg, choose_profile(cfg))
    started, start, host = now(), time.monotonic(), machine()
    todo = [] if cfg.report_only else [s for s in demo.chosen if cfg.redo or not demo.finished(s)]
    for stage in demo.stages:
        if stage not in todo:
            marker = read_marker(demo.folder(stage.name))
            if marker.get("status") in ("done", "failed", "skipped") and marker.get("argv") == demo.argv(
                stage
            ):
                demo.status[stage.name] = marker
    progress = ChainProgress([(s.name, demo.seconds(s)) for s in todo], demo.profile)
    try:
        with progress:
            for stage in todo:
                progress.begin(stage.name)
                reason = demo.blocked(stage) or missing_packages(stage)
                entry = (
                    demo.record(stage, "skipped", 0.0, reason)
                    if reason
                    else demo.run_stage(stage, progress.tick)
                )
                progress.end(stage.name, entry)
    except KeyboardInterrupt:
        print(
            f"demo: interrupted; run the same command again to go on from {progress.current}", file=sys.stderr
        )
        return 130
    run = {"profile": demo.profile, "started": started, "finished": now(), "machine": host}
    run["seconds"] = round(time.monotonic() - start, 1)
    if cfg.report_only:  # nothing ran: the header keeps the timings of the run that made the stages
        run = previous_run(demo.out, demo.profile) or {"profile": demo.profile, "machine": host}
    status = {"run": run, "stages": demo.status, "order": [s.name for s in demo.stages]}
    atomic_write_json(demo.out / STATUS_FILE, status)
    index = build_report(demo.out)
    bad = [name for name, e in demo.status.items() if e.get("status") != "done"]
    failed = [name for name in bad if demo.status[name].get("status") == "failed"]
    print(f"demo: report in {index}" + (f" ({len(bad)} stages not done: {', '.join(bad)})" if bad else ""))
    return 1 if failed or (cfg.strict and bad) else 0
