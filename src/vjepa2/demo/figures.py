"""The report's figures, drawn (or copied) from the files the stages wrote, into report/figures/.

Each function returns the file names it wrote (none when its stage left nothing), so the page
only shows figures that exist. Plots are drawn with matplotlib's Agg backend; pictures made by the
commands themselves (planning strips, GIFs, energy landscapes) are copied as they are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from vjepa2.demo.metrics import PHYSICS_SOURCES, PLAN_METHODS
from vjepa2.train.log import read_log

LABELS = {
    "pretrained": "pretrained encoder",
    "random": "random twin",
    "single-frame": "pretrained, middle frame only",
    "model": "pretrained encoder + predictor",
    "pixels": "pixel change",
    "world_model_pretrained": "world model, pretrained encoder",
    "world_model_random": "world model, random encoder",
    "random_actions": "random actions",
    "oracle": "oracle (simulator)",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> list[str]:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return [path.name]


def training_curves(out: Path, figures: Path) -> list[str]:
    """Pretraining loss, and the collapse watch (std of tokens and over the batch, effective rank)."""
    log = out / "pretrain" / "log.jsonl"
    rows = [r for r in read_log(log) if "loss" in r] if log.is_file() else []
    if not rows:
        return []
    plt = _pyplot()
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(steps, [r["loss"] for r in rows], color="C0")
    ax.set(xlabel="step", ylabel="L1 loss (predicted vs target tokens)", title="pretraining loss")
    names = _save(fig, figures / "pretrain_loss.png")
    fig, left = plt.subplots(figsize=(5, 3.2))
    for i, key in enumerate(("std_tokens", "std_batch")):
        if key in rows[-1]:
            left.plot(steps, [r.get(key, np.nan) for r in rows], color=f"C{i}", label=key)
    left.set(xlabel="step", ylabel="standard deviation", title="collapse watch")
    if "rank" in rows[-1]:
        right = left.twinx()
        right.plot(steps, [r.get("rank", np.nan) for r in rows], color="C3", label="rank")
        right.set_ylabel("effective rank", color="C3")
    left.legend(loc="lower left", fontsize=8)
    return names + _save(fig, figures / "pretrain_collapse.png")


def grouped_bars(
    path: Path, groups: dict[str, dict[str, float]], chance: dict[str, float], ylabel: str, title: str
):
    """One group of bars per key of ``groups`` (bar per source), chance as a dashed mark per group."""
    plt = _pyplot()
    sources = list(dict.fromkeys(s for bars in groups.values() for s in bars))
    width = 0.8 / max(1, len(sources))
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(groups), 3.4))
    for j, source in enumerate(sources):
        xs = [i + (j - (len(sources) - 1) / 2) * width for i, g in enumerate(groups) if source in groups[g]]
        ys = [groups[g][source] for g in groups if source in groups[g]]
        ax.bar(xs, ys, width=width * 0.95, label=LABELS.get(source, source), color=f"C{j}")
    for i, group in enumerate(groups):
        if group in chance:
            ax.hlines(chance[group], i - 0.45, i + 0.45, colors="k", linestyles="dashed")
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set(ylabel=ylabel, title=title, ylim=(0, 105))
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def probe_bars(metrics: dict, figures: Path) -> list[str]:
    probe = metrics.get("probe", {})
    groups = {t: {s: v for s, v in e.items() if s not in ("chance", "val_clips")} for t, e in probe.items()}
    if not groups:
        return []
    chance = {t: e["chance"] for t, e in probe.items() if "chance" in e}
    return grouped_bars(
        figures / "probe_bars.png", groups, chance, "validation top-1 (%)", "attentive probes"
    )


def surprise_curves(out: Path, figures: Path) -> list[str]:
    """Mean surprise over time of the possible and the impossible videos, per violation type."""
    results = (
        json.loads((out / "physics" / "results.json").read_text())
        if (out / "physics" / "results.json").is_file()
        else {}
    )
    videos = results.get("sources", {}).get("model", {}).get("videos", {})
    if not videos:
        return []
    kinds = sorted({v["kind"] for v in videos.values()})
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(kinds), figsize=(3 * len(kinds), 2.8), squeeze=False, sharey=True)
    for ax, kind in zip(axes[0], kinds):
        for possible, style in ((True, "-"), (False, "--")):
            curves = [v for v in videos.values() if v["kind"] == kind and v["possible"] == possible]
            length = min(len(v["curve"]) for v in curves)
            mean = np.mean([v["curve"][:length] for v in curves], axis=0)
            label = "possible" if possible else "impossible"
            ax.plot(curves[0]["times"][:length], mean, style, color="C0" if possible else "C3", label=label)
        ax.set(title=kind, xlabel="first predicted frame")
    axes[0][0].set_ylabel("surprise (L1, mean over pairs)")
    axes[0][0].legend(fontsize=7)
    return _save(fig, figures / "surprise_curves.png")


def physics_bars(metrics: dict, figures: Path) -> list[str]:
    section = metrics.get("physics", {})
    groups: dict[str, dict[str, float]] = {}
    for source in PHYSICS_SOURCES:
        for kind, m in section.get(source, {}).items():
            groups.setdefault(kind, {})[source] = m["value"]
    if not groups:
        return []
    chance = dict.fromkeys(groups, 50.0)  # a coin flip picks the possible video half the time
    return grouped_bars(figures / "physics_bars.png", groups, chance, "pairs right (%)", "intuitive physics")


def vqa_bars(metrics: dict, figures: Path) -> list[str]:
    section = metrics.get("vqa", {})
    if not section:
        return []
    groups = {kind: {"accuracy": r["accuracy"]} for kind, r in section.items()}
    chance = {kind: r["chance"] for kind, r in section.items()}
    return grouped_bars(figures / "vqa_bars.png", groups, chance, "accuracy (%)", "video question answering")


def planning_figures(out: Path, metrics: dict, figures: Path) -> list[str]:
    """Copies of plan-eval's strips (GIF and PNG) and landscapes, and the success-rate bars."""
    names = []
    for encoder in ("pretrained", "random"):
        for source, target in (
            ("strip_world_model.gif", f"rollouts_{encoder}.gif"),
            ("strip_world_model.png", f"rollouts_{encoder}.png"),
            ("energy_landscape.png", f"energy_{encoder}.png"),
        ):
            if (out / f"plan-{encoder}" / source).is_file():
                shutil.copyfile(out / f"plan-{encoder}" / source, figures / target)
                names.append(target)
    section = metrics.get("planning", {})
    bars = {key: section[key]["success"] for key in PLAN_METHODS if key in section}
    if bars:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        ax.barh([LABELS[k] for k in bars], list(bars.values()), color=[f"C{i}" for i in range(len(bars))])
        ax.set(xlabel="episodes that reached the goal (%)", xlim=(0, 100), title="goal-image planning")
        ax.invert_yaxis()
        names += _save(fig, figures / "planning_success.png")
    return names


def draw_all(out: Path, metrics: dict, figures: Path) -> set[str]:
    """Every figure the stages' outputs allow; returns the file names written."""
    figures.mkdir(parents=True, exist_ok=True)
    names = training_curves(out, figures) + probe_bars(metrics, figures) + surprise_curves(out, figures)
    names += (
        physics_bars(metrics, figures) + vqa_bars(metrics, figures) + planning_figures(out, metrics, figures)
    )
    return set(names)
