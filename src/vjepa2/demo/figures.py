"""The report's figures, drawn (or copied) from the files the stages wrote, into report/figures/.

Each function returns the file names it wrote (none when its stage left nothing), so the page
only shows figures that exist. Plots are drawn with matplotlib's Agg backend from metrics.json
(bars carry their 95% intervals as error bars) or from a run's log; pictures made by the commands
themselves (planning strips, GIFs, energy landscapes) are copied as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vjepa2.atomic import atomic_copy, atomic_savefig
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
    atomic_savefig(fig, path, dpi=90)
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
    path: Path, groups: dict[str, dict[str, dict]], chance: dict[str, float], ylabel: str, title: str
):
    """One group of bars per key of ``groups`` (bar per source: {"value", "low", "high"}), the
    interval as an error bar where there is one, chance as a dashed mark per group."""
    plt = _pyplot()
    sources = list(dict.fromkeys(s for bars in groups.values() for s in bars))
    width = 0.8 / max(1, len(sources))
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(groups), 3.4))
    for j, source in enumerate(sources):
        xs = [i + (j - (len(sources) - 1) / 2) * width for i, g in enumerate(groups) if source in groups[g]]
        bars = [groups[g][source] for g in groups if source in groups[g]]
        ys = [b["value"] for b in bars]
        # (2, n) distances below and above each bar; 0 where a bar has no interval
        errors = [[b["value"] - b.get("low", b["value"]) for b in bars], [b.get("high", b["value"]) - b["value"] for b in bars]]  # fmt: skip
        ax.bar(xs, ys, width=width * 0.95, label=LABELS.get(source, source), color=f"C{j}")
        ax.errorbar(xs, ys, yerr=errors, fmt="none", ecolor="k", elinewidth=1, capsize=3)
    for i, group in enumerate(groups):
        if group in chance:
            ax.hlines(chance[group], i - 0.45, i + 0.45, colors="k", linestyles="dashed")
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set(ylabel=ylabel, title=title, ylim=(0, 105))
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def probe_bars(metrics: dict, figures: Path) -> list[str]:
    probe = metrics.get("probe", {})
    groups = {t: e["accuracy"] for t, e in probe.items()}
    if not groups:
        return []
    chance = {t: e["chance"] for t, e in probe.items() if "chance" in e}
    return grouped_bars(
        figures / "probe_bars.png", groups, chance, "validation top-1 (%)", "attentive probes"
    )


def surprise_curves(metrics: dict, figures: Path) -> list[str]:
    """Per violation type ("overall" first), top: mean surprise over time of the possible and the
    impossible videos; bottom: the gap between them (impossible minus possible) with its 95%
    bootstrap band over pairs and the zero line, on its own scale: the two curves of the top row
    can differ by less than their line width."""
    curves = metrics.get("physics", {}).get("curves", {})
    if not curves:
        return []
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(curves), figsize=(3 * len(curves), 5), squeeze=False, sharex="col")
    for (top, bottom), (kind, c) in zip(axes.T, curves.items()):
        top.plot(c["times"], c["possible"], "-", color="C0", label="possible")
        top.plot(c["times"], c["impossible"], "--", color="C3", label="impossible")
        top.set(title=kind)
        if "gap_low" in c:
            bottom.fill_between(
                c["times"], c["gap_low"], c["gap_high"], color="C3", alpha=0.25, label="95% band"
            )
        bottom.plot(c["times"], c["gap"], color="C3", label="impossible - possible")
        bottom.axhline(0.0, color="k", linestyle="dashed", linewidth=0.8)
        bottom.set(xlabel="first predicted frame")
    axes[0][0].set_ylabel("surprise (L1, mean over pairs)")
    axes[1][0].set_ylabel("gap (L1, impossible - possible)")
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    return _save(fig, figures / "surprise_curves.png")


def physics_bars(metrics: dict, figures: Path) -> list[str]:
    section = metrics.get("physics", {})
    groups: dict[str, dict[str, float]] = {}
    for source in PHYSICS_SOURCES:
        for kind, m in section.get(source, {}).items():
            groups.setdefault(kind, {})[source] = m
    if not groups:
        return []
    chance = dict.fromkeys(groups, 50.0)  # a coin flip picks the possible video half the time
    return grouped_bars(figures / "physics_bars.png", groups, chance, "pairs right (%)", "intuitive physics")


def vqa_bars(metrics: dict, figures: Path) -> list[str]:
    section = metrics.get("vqa", {})
    if not section:
        return []
    groups = {kind: {"accuracy": r["accuracy"]} for kind, r in section.items()}
    chance = {kind: r["chance"] for kind, r in section.items() if "chance" in r}
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
                atomic_copy(out / f"plan-{encoder}" / source, figures / target)
                names.append(target)
    section = metrics.get("planning", {})
    bars = {key: section[key]["success"] for key in PLAN_METHODS if key in section}
    if bars:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        values = [b["value"] for b in bars.values()]
        errors = [[b["value"] - b.get("low", b["value"]) for b in bars.values()], [b.get("high", b["value"]) - b["value"] for b in bars.values()]]  # fmt: skip
        ax.barh([LABELS[k] for k in bars], values, color=[f"C{i}" for i in range(len(bars))])
        ax.errorbar(values, range(len(values)), xerr=errors, fmt="none", ecolor="k", elinewidth=1, capsize=3)
        ax.set(xlabel="episodes that reached the goal (%)", xlim=(0, 100), title="goal-image planning")
        ax.invert_yaxis()
        names += _save(fig, figures / "planning_success.png")
    return names


def draw_all(out: Path, metrics: dict, figures: Path) -> set[str]:
    """Every figure the stages' outputs allow; returns the file names written."""
    figures.mkdir(parents=True, exist_ok=True)
    names = training_curves(out, figures) + probe_bars(metrics, figures) + surprise_curves(metrics, figures)
    names += (
        physics_bars(metrics, figures) + vqa_bars(metrics, figures) + planning_figures(out, metrics, figures)
    )
    return set(names)
