"""The physics section's surprise curves, from ``physics/results.json``'s per-video curves.

A group is a scene's possible and impossible videos (a pair, or two of each). Per type: the mean
curves of the possible and of the impossible videos over time, and the gap between them
(impossible minus possible, per group, then averaged) with a bootstrap band over groups at each
time step. On a small model the two mean curves nearly coincide; the gap and its band say whether
they differ at all, and where.
"""

from __future__ import annotations

import numpy as np

from vjepa2.evals.intervals import bootstrap

RESAMPLES, SEED = 1000, 0  # the demo's bootstrap: fixed, so metrics.json is the same on every build


def overall_first(kinds) -> list[str]:
    """Types in their order, "overall" (every group) first: the line to read before the rest."""
    kinds = list(dict.fromkeys(kinds))
    return (["overall"] if "overall" in kinds else []) + [k for k in kinds if k != "overall"]


def groups(videos: dict) -> dict[str, dict[str, dict[bool, list[dict]]]]:
    """{kind: {group: {possible: [video entries]}}}, "overall" holding every group; groups that
    lack a possible or an impossible video are left out."""
    by_group: dict[str, dict[bool, list[dict]]] = {}
    kind_of: dict[str, str] = {}
    for video in videos.values():
        by_group.setdefault(video["pair"], {True: [], False: []})[bool(video["possible"])].append(video)
        kind_of[video["pair"]] = video["kind"]
    out: dict[str, dict] = {}
    for group, two in sorted(by_group.items()):
        if two[True] and two[False]:
            for kind in (kind_of[group], "overall"):
                out.setdefault(kind, {})[group] = two
    return out


def _mean_curve(videos: list[dict], length: int) -> np.ndarray:
    return np.mean([v["curve"][:length] for v in videos], axis=0)


def curves(videos: dict) -> dict:
    """{kind: times, possible and impossible mean curves, gap (impossible minus possible, mean over
    groups) and its bootstrap band gap_low / gap_high}, curves cut to the shortest video."""
    out = {}
    for kind, grouped in groups(videos).items():
        members = [v for two in grouped.values() for v in two[True] + two[False]]
        length = min(len(v["curve"]) for v in members)
        per_group = [
            (_mean_curve(two[True], length), _mean_curve(two[False], length)) for two in grouped.values()
        ]
        possible = np.array([p for p, _ in per_group])  # (G, T)
        gap = np.array([i - p for p, i in per_group])  # (G, T)
        out[kind] = {
            "times": [float(t) for t in members[0]["times"][:length]],
            "possible": _rounded(possible.mean(0)),
            "impossible": _rounded(possible.mean(0) + gap.mean(0)),
            "gap": _rounded(gap.mean(0)),
            "groups": len(gap),
        }
        if len(gap) > 1:  # one group has no spread to resample: no band rather than a NaN one
            out[kind]["gap_low"], out[kind]["gap_high"] = band(gap)
    return {kind: out[kind] for kind in overall_first(out)}


def band(gap: np.ndarray) -> tuple[list[float], list[float]]:
    """Per time step, the bootstrap interval of the mean gap over groups; ``gap`` is (G, T)."""
    per_step = [
        bootstrap(lambda d, t=t: float(gap[d, t].mean()), len(gap), RESAMPLES, SEED)
        for t in range(gap.shape[1])
    ]
    return _rounded([low for low, _ in per_step]), _rounded([high for _, high in per_step])


def _rounded(values) -> list[float]:
    """Curves at 6 significant digits: enough for a plot, small enough for metrics.json."""
    return [float(f"{v:.6g}") for v in values]
