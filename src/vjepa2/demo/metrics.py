"""``metrics.json``: every number the report shows, read off the files the stages' commands wrote.

Each reader takes the demo folder and returns its section, or nothing when the stage did not
leave its file (the report then says the stage did not run, never a made-up value). Values are
rounded here to the digits the report shows, so the page and this file say exactly the same.
"""

from __future__ import annotations

import json
from pathlib import Path

from vjepa2.demo.stages import PROBE_SOURCES, PROBE_TASKS
from vjepa2.train.log import read_log

PHYSICS_SOURCES = ("model", "random", "pixels")
PLAN_METHODS = {  # report key -> (plan stage, plan-eval method)
    "world_model_pretrained": ("plan-pretrained", "world_model"),
    "world_model_random": ("plan-random", "world_model"),
    "random_actions": ("plan-pretrained", "random"),
    "oracle": ("plan-pretrained", "oracle"),
}


def _json(file: Path) -> dict | None:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return None


def _r(value: float, digits: int = 1) -> float:
    return round(float(value), digits)


def _rows(file: Path, key: str) -> list[dict]:
    return [row for row in read_log(file) if key in row] if file.is_file() else []


def pretrain(out: Path) -> dict:
    rows = _rows(out / "pretrain" / "log.jsonl", "loss")
    if not rows:
        return {}
    first, last = rows[0], rows[-1]
    return {
        "steps": int(last["step"]),
        "loss_first": _r(first["loss"], 3),
        "loss_last": _r(last["loss"], 3),
        "std_tokens_last": _r(last.get("std_tokens", float("nan")), 3),
        "rank_first": _r(first.get("rank", float("nan")), 2),
        "rank_last": _r(last.get("rank", float("nan")), 2),
        "dtype": str(last.get("dtype", "")),
    }


def probe(out: Path, profile: str) -> dict:
    labels = _json(out / "videos" / "labels.json") or {}
    section = {}
    for task in PROBE_TASKS[profile]:
        entry = {}
        for source in PROBE_SOURCES[profile]:
            heads = _json(out / f"probe-{task}-{source}" / "heads.json")
            if heads and "best" in heads:
                entry[source] = _r(heads["best"][heads.get("metric", "val_top1")])
        if not entry:
            continue
        chance = labels.get("tasks", {}).get(task, {}).get("chance")
        if chance is not None:
            entry["chance"] = _r(100 * chance)
        val = out / "videos" / f"{task}_val.csv"
        if val.is_file():
            entry["val_clips"] = sum(1 for line in val.read_text().splitlines() if line.strip())
        section[task] = entry
    return section


def physics(out: Path) -> dict:
    results = _json(out / "physics" / "results.json")
    if not results:
        return {}
    section: dict = {}
    for source, result in results.get("sources", {}).items():
        for kind, m in result.get("metrics", {}).items():
            rel = m.get("mean", {}).get("relative_accuracy")
            if rel:
                section.setdefault(source, {})[kind] = {k: _r(100 * rel[k]) for k in ("value", "low", "high")}
            section.setdefault("pairs", {})[kind] = int(m.get("pairs", 0))
    return section


def vqa(out: Path) -> dict:
    results = _json(out / "vqa" / "results.json")
    if not results:
        return {}
    return {
        kind: {"accuracy": _r(r["accuracy"]), "chance": _r(r["chance"]), "questions": int(r["questions"])}
        for kind, r in results.get("results", {}).items()
        if r.get("accuracy") is not None
    }


def world_models(out: Path) -> dict:
    section = {}
    for encoder in ("pretrained", "random"):
        val = _rows(out / f"ac-{encoder}" / "log.jsonl", "val_teacher")
        train = _rows(out / f"ac-{encoder}" / "log.jsonl", "loss")
        if train:
            section[encoder] = {"steps": int(train[-1]["step"]), "loss_last": _r(train[-1]["loss"], 3)}
            if val:
                section[encoder]["val_teacher"] = _r(val[-1]["val_teacher"], 3)
                section[encoder]["val_rollout"] = _r(val[-1].get("val_rollout", float("nan")), 3)
    return section


def planning(out: Path) -> dict:
    section: dict = {}
    for key, (stage, method) in PLAN_METHODS.items():
        results = _json(out / stage / "results.json")
        r = (results or {}).get("methods", {}).get(method)
        if r is None:
            continue
        section[key] = {
            "success": _r(100 * r["success_rate"]),
            "final_distance": _r(r["final_distance"], 3),
            "seconds_per_action": _r(r["time_per_action_s"], 3),
        }
        section.setdefault("env", results["env"])
        section.setdefault("episodes", int(results["episodes"]))
        section.setdefault("max_steps", int(results["max_steps"]))
    return section


def _clean(value):
    """No NaN in the file (a key a log did not have is left out): browsers' JSON has none."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not (isinstance(v, float) and v != v)}
    return value


def collect(out: Path, status: dict) -> dict:
    """The whole ``metrics.json`` of the demo in ``out`` (``status``: ``<out>/demo.json``). A
    section whose files are not as expected (a command changed its output) is left out and named
    under ``unreadable`` with the error, so one stage cannot take the report down."""
    run = dict(status.get("run", {}))
    order = status.get("order", list(status.get("stages", {})))
    entries = status.get("stages", {})
    names = [n for n in order if n in entries] + [n for n in entries if n not in order]
    fields = ("status", "seconds", "cpu_seconds", "reason", "command", "section")
    stages = {name: {k: entries[name].get(k) for k in fields} for name in names}
    run["stage_seconds"] = _r(sum(e.get("seconds") or 0.0 for e in stages.values()))
    run["stage_cpu_seconds"] = _r(sum(e.get("cpu_seconds") or 0.0 for e in stages.values()))
    profile = run.get("profile", "full")
    metrics, unreadable = {"run": run, "stages": stages}, {}
    readers = {
        "pretrain": lambda: pretrain(out),
        "probe": lambda: probe(out, profile),
        "physics": lambda: physics(out),
        "vqa": lambda: vqa(out),
        "world_model": lambda: world_models(out),
        "planning": lambda: planning(out),
    }
    for section, read in readers.items():
        try:
            metrics[section] = read()
        except (KeyError, TypeError, ValueError, IndexError) as err:
            metrics[section] = {}
            unreadable[section] = f"{type(err).__name__}: {err}"
    if unreadable:
        metrics["unreadable"] = unreadable
    return _clean(metrics)
