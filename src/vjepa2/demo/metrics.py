"""``metrics.json``: every number the report shows, read off the files the stages' commands wrote.

Each reader takes the demo folder and returns its section, or nothing when the stage did not
leave its file (the report then says the stage did not run, never a made-up value). Values are
rounded here to the digits the report shows, so the page and this file say exactly the same.

Every compared number carries its 95% interval, as ``{"value", "low", "high"}``: Wilson's for
a rate (probe and VQA accuracy, physics pairs right, planning success), Newcombe's for the
difference of two rates (with ``within_noise``: its interval holds 0), a bootstrap over units for
the rest (planning distances and times over episodes, the physics surprise gap over pairs). The quick demo
scores a dozen clips, a few pairs a type and a few episodes: most differences are within noise,
and the page must say so rather than let two bare percentages suggest a finding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vjepa2.demo import surprise
from vjepa2.demo.stages import PROBE_SOURCES, PROBE_TASKS
from vjepa2.evals.intervals import LEVEL, bootstrap, holds_zero, newcombe, wilson
from vjepa2.train.log import read_log

PHYSICS_SOURCES = ("model", "random", "pixels")
COIN_FLIP = 50.0  # % of pairs a source that cannot tell the videos apart gets right
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
    return round(float(value), digits) + 0.0  # + 0.0: no "-0.0" on the page


def rate(percent: float, n: int | None, chance: float | None = None) -> dict:
    """A rate in % observed over ``n`` trials, with its Wilson interval (none without ``n``);
    with ``chance`` (%), ``vs_chance``: "within" when chance lies in that interval, else "above"
    or "below" it."""
    out: dict = {"value": _r(percent)}
    if n:
        low, high = wilson(percent / 100, n)
        out |= {"low": _r(100 * low), "high": _r(100 * high)}
        if chance is not None:  # judged on the bounds as shown, so the words never contradict them
            side = "above" if chance < out["low"] else "below" if chance > out["high"] else "within"
            out["vs_chance"] = side
    return out


def rate_difference(a: float, n_a: int | None, b: float, n_b: int | None) -> dict | None:
    """``a - b`` in percentage points (rates in %), Newcombe's interval; None without both n."""
    if not (n_a and n_b):
        return None
    low, high = newcombe(a / 100, n_a, b / 100, n_b)
    low, high = _r(100 * low), _r(100 * high)
    # judged on the bounds as shown: a bound that rounds to 0 holds zero (the cautious reading)
    return {"value": _r(a - b), "low": low, "high": high, "within_noise": holds_zero(low, high)}


def mean_interval(values: list[float], digits: int) -> dict:
    """The mean of ``values`` (one per unit: an episode) with a bootstrap interval over units."""
    x = np.asarray(values, float)
    low, high = bootstrap(lambda d: float(x[d].mean()), len(x), surprise.RESAMPLES, surprise.SEED)
    return {"value": _r(x.mean(), digits), "low": _r(low, digits), "high": _r(high, digits)}


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
    """{task: val_clips, chance (%), accuracy: {source: top-1 (%) with Wilson interval},
    difference: pretrained minus random twin (points, Newcombe)}."""
    labels = _json(out / "videos" / "labels.json") or {}
    section = {}
    for task in PROBE_TASKS[profile]:
        val = out / "videos" / f"{task}_val.csv"
        n = sum(1 for line in val.read_text().splitlines() if line.strip()) if val.is_file() else None
        top1 = {}
        for source in PROBE_SOURCES[profile]:
            heads = _json(out / f"probe-{task}-{source}" / "heads.json")
            if heads and "best" in heads:
                top1[source] = float(heads["best"][heads.get("metric", "val_top1")])
        if not top1:
            continue
        chance = labels.get("tasks", {}).get(task, {}).get("chance")
        chance = None if chance is None else 100 * chance
        entry: dict = {"accuracy": {source: rate(value, n, chance) for source, value in top1.items()}}
        if n is not None:
            entry["val_clips"] = n
        if chance is not None:
            entry["chance"] = _r(chance)
        if "pretrained" in top1 and "random" in top1:
            diff = rate_difference(top1["pretrained"], n, top1["random"], n)
            if diff:
                entry["difference"] = diff
        section[task] = entry
    return section


def physics(out: Path) -> dict:
    results = _json(out / "physics" / "results.json")
    if not results:
        return {}
    section: dict = {}
    exact: dict[tuple[str, str], float] = {}  # (source, kind) -> pairs right (%), unrounded
    sources = results.get("sources", {})
    for source, result in sources.items():
        found = result.get("metrics", {})
        for kind in surprise.overall_first(found):
            pairs = int(found[kind].get("pairs", 0))
            section.setdefault("pairs", {})[kind] = pairs
            rel = found[kind].get("mean", {}).get("relative_accuracy_ties_half")
            if rel:
                # A share of pairs (ties half): Wilson's interval. physics-eval's own bootstrap
                # interval collapses to a point when every pair agrees (0 of 6 is not "surely 0").
                exact[source, kind] = 100 * rel["value"]
                section.setdefault(source, {})[kind] = rate(exact[source, kind], pairs, COIN_FLIP)
    for other in (s for s in PHYSICS_SOURCES if s != "model" and s in section and "model" in section):
        for kind in section["model"]:
            if kind in section[other]:
                n = section["pairs"][kind]
                diff = rate_difference(exact["model", kind], n, exact[other, kind], n)
                if diff:
                    section.setdefault("difference", {}).setdefault(other, {})[kind] = diff
    if section:
        section["curves"] = surprise.curves(sources.get("model", {}).get("videos", {}))
    return section


def vqa(out: Path) -> dict:
    results = _json(out / "vqa" / "results.json")
    if not results:
        return {}
    found = {k: r for k, r in results.get("results", {}).items() if r.get("accuracy") is not None}
    section = {}
    for kind in surprise.overall_first(found):
        r = found[kind]
        accuracy = rate(r["accuracy"], int(r["questions"]), r.get("chance"))
        entry = {"accuracy": accuracy, "questions": int(r["questions"])}
        if r.get("chance") is not None:  # open questions have no chance level
            entry["chance"] = _r(r["chance"])
        section[kind] = entry
    return section


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


def _episodes(file: Path, method: str) -> list[dict]:
    return [row for row in read_log(file) if row.get("method") == method] if file.is_file() else []


def planning(out: Path) -> dict:
    """{method: success (%, Wilson), final_distance and seconds_per_action (mean over episodes,
    bootstrap over episodes when episodes.jsonl is there)}, env, episodes, max_steps, and
    difference: the world model on the pretrained encoder minus each other method's success."""
    section: dict = {}
    exact: dict[str, tuple[float, int]] = {}  # method -> (success %, unrounded; episodes)
    for key, (stage, method) in PLAN_METHODS.items():
        results = _json(out / stage / "results.json")
        r = (results or {}).get("methods", {}).get(method)
        if r is None:
            continue
        n = int(r.get("episodes", results["episodes"]))
        rows = _episodes(out / stage / "episodes.jsonl", method)
        exact[key] = (100 * r["success_rate"], n)
        entry = {"success": rate(exact[key][0], n), "episodes": n}
        for name, field in (
            ("final_distance", "final_distance"),
            ("seconds_per_action", "time_per_action_s"),
        ):
            entry[name] = (
                mean_interval([row[field] for row in rows], 3)
                if len(rows) == n
                else {"value": _r(r[field], 3)}
            )
        section[key] = entry
        section.setdefault("env", results["env"])
        section.setdefault("episodes", int(results["episodes"]))
        section.setdefault("max_steps", int(results["max_steps"]))
    ours = exact.get("world_model_pretrained")
    for key in (k for k in exact if k != "world_model_pretrained" and ours):
        diff = rate_difference(*ours, *exact[key])
        if diff:
            section.setdefault("difference", {})[key] = diff
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
    # How the intervals were made, for the page to say (its numbers all come from here).
    level = {"level": LEVEL, "resamples": surprise.RESAMPLES}
    metrics, unreadable = {"run": run, "stages": stages, "intervals": level}, {}
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
