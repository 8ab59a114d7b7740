"""What ``vjepa2 physics-eval`` reports of one source's surprise curves: the official scores first
(jepa-intuitive-physics ``compute_metrics`` per type; IntPhys 2 per-video accuracy by split,
difficulty, camera and property), then this project's own metrics with bootstrap intervals."""

from __future__ import annotations

import numpy as np

from vjepa2.errors import UserError
from vjepa2.evals.physics import intphys2
from vjepa2.evals.physics.metrics import score_pairs
from vjepa2.evals.physics.official import HEADLINE, compute_metrics
from vjepa2.evals.physics.videos import PhysicsVideo


def pair_scores(videos: list[PhysicsVideo], curves: dict, reduce) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{kind: (possible (P, k), impossible (P, k))}: per group (a pair, k = 1, or a quadruplet,
    k = 2) the reduced curves of its possible and of its impossible videos in the data's order
    (entry j of both: a matched pair), groups in the same order; a group that lost a video to an
    unreadable file is left out, and so are unlabelled videos."""
    by_group: dict[str, dict[bool, list[float]]] = {}
    kinds: dict[str, str] = {}
    for v in videos:
        if str(v.path) in curves and v.possible is not None:
            scores = by_group.setdefault(v.pair, {True: [], False: []})
            scores[v.possible].append(float(reduce(curves[str(v.path)])))
            kinds[v.pair] = v.kind
    out: dict[str, tuple[list, list]] = {}
    for group, scores in by_group.items():
        if scores[True] and len(scores[True]) == len(scores[False]):
            for kind in (kinds[group], "overall"):
                out.setdefault(kind, ([], []))
                out[kind][0].append(scores[True])
                out[kind][1].append(scores[False])
    sizes = {kind: {len(g) for g in groups[0]} for kind, groups in out.items()}
    mixed = [kind for kind, k in sizes.items() if len(k) > 1]
    if mixed:
        raise UserError(f"groups of different sizes (pairs and quadruplets) in {mixed}: score them apart")
    return {k: (np.asarray(p), np.asarray(i)) for k, (p, i) in out.items()}


def official_surprise(videos: list[PhysicsVideo], curves: dict) -> dict:
    """{kind: the official metrics (``official.compute_metrics``) of its matched pairs}: inside a
    quadruplet, each possible video against its matched impossible one, as the official code
    pairs them."""
    means, peaks = pair_scores(videos, curves, np.mean), pair_scores(videos, curves, np.max)
    out = {}
    for kind, (mean_p, mean_i) in means.items():
        max_p, max_i = peaks[kind]
        metrics = compute_metrics((mean_p.ravel(), mean_i.ravel()), (max_p.ravel(), max_i.ravel()))
        out[kind] = {"pairs": int(mean_p.size)} | metrics
    return out


def official_intphys2(videos: list[PhysicsVideo], curves: dict, threshold: float | None) -> dict:
    """IntPhys 2's per-video accuracy from max surprise (``intphys2.decide``), with the decision
    rule and the answers; {} when the data is not IntPhys 2."""
    if not any("filename" in v.meta for v in videos):
        return {}
    peaks = {path: float(np.max(c)) for path, c in curves.items()}
    answers, used = intphys2.decide(videos, peaks, threshold)
    rule = "possible when the video's max surprise < threshold"
    if used is None:
        rule += " (none: give --threshold; the official calibration needs 10 possible videos)"
    elif threshold is None:
        rule += " (calibrated: the official Absolute Accuracy threshold of this split)"
    labelled = any(v.possible is not None for v in videos)
    return {
        "decision_rule": rule,
        "threshold": used,
        "accuracy": intphys2.per_video_accuracy(videos, answers) if labelled and used is not None else {},
        "answers": answers,
    }


def summarize(videos: list[PhysicsVideo], curves: dict, windows, cfg, threshold: float | None = None) -> dict:
    """One source's results: ``official`` (headline), ``metrics`` (ours, with intervals), ``videos``."""
    metrics: dict[str, dict] = {}
    for name, reduce in (("mean", np.mean), ("max", np.max)):
        for kind, (possible, impossible) in pair_scores(videos, curves, reduce).items():
            scores = score_pairs(possible, impossible, cfg.resamples, cfg.seed)
            metrics.setdefault(
                kind, {"pairs": len(possible), "videos": int(possible.size + impossible.size)}
            )[name] = scores
    official = {"jepa_intuitive_physics": official_surprise(videos, curves)}
    found = official_intphys2(videos, curves, threshold)
    if found:
        official["intphys2"] = found
    per_video = {
        str(v.path): {
            "pair": v.pair,
            "possible": v.possible,
            "kind": v.kind,
            "mean": float(np.mean(c)),
            "max": float(np.max(c)),
            "curve": [float(x) for x in c],
            "times": windows.times(len(c)).tolist(),
        }  # fmt: skip
        for v in videos
        if (c := curves.get(str(v.path))) is not None
    }
    return {"official": official, "metrics": metrics, "videos": per_video}


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def official_table(results: dict) -> str:
    """The headline: per source and type, the official metrics (%, AUROC as a fraction); then
    IntPhys 2's per-video accuracy by split, difficulty, camera and property."""
    lines = [
        "| source | type | pairs | " + " | ".join(HEADLINE) + " |",
        "|---|---|---:|" + "---:|" * len(HEADLINE),
    ]
    for source, result in results["sources"].items():
        found = result["official"]["jepa_intuitive_physics"]
        for kind, m in sorted(found.items(), key=lambda item: (item[0] == "overall", item[0])):
            cells = [_pct(m[k]) if "Accuracy" in k else f"{m[k]:.3f}" for k in HEADLINE]
            lines.append(f"| {source} | {kind} | {m['pairs']} | " + " | ".join(cells) + " |")
    for source, result in results["sources"].items():
        found = result["official"].get("intphys2")
        if not found:
            continue
        lines += [
            "",
            f"IntPhys 2 per-video accuracy, {source}: {found['decision_rule']}, threshold {found['threshold']}",
        ]
        lines += ["| breakdown | subset | videos | accuracy |", "|---|---|---:|---:|"]
        for breakdown, cells in found["accuracy"].items():
            for name, cell in cells.items():
                lines.append(f"| {breakdown} | {name} | {cell['videos']} | {cell['accuracy']:.2f} |")
    return "\n".join(lines)


def own_table(results: dict) -> str:
    """This project's metrics: per source and type, relative accuracy with ties half (mean, max),
    the clipped absolute accuracy and AUROC (max), in % with their 95% intervals."""

    def cell(m: dict) -> str:
        return f"{100 * m['value']:.1f} [{100 * m['low']:.1f}, {100 * m['high']:.1f}]"

    lines = ["| source | type | groups | rel. acc. ties half (mean) | rel. acc. ties half (max) | abs. acc. clipped (max) | AUROC (max) |",
             "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for source, result in results["sources"].items():
        for kind, m in sorted(result["metrics"].items(), key=lambda item: (item[0] == "overall", item[0])):
            rel, top = m["mean"]["relative_accuracy_ties_half"], m["max"]
            lines.append(
                f"| {source} | {kind} | {m['pairs']} | {cell(rel)} | {cell(top['relative_accuracy_ties_half'])} | "
                f"{cell(top['absolute_accuracy_clipped'])} | {cell(top['auroc'])} |"
            )
    return "\n".join(lines)


def table(results: dict) -> str:
    """What the command prints: the official table, then ours under its own names."""
    return (
        official_table(results)
        + "\n\nThis project's metrics (ties count half; 95% bootstrap intervals):\n"
        + own_table(results)
    )
