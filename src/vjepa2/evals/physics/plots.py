"""Plots of ``vjepa2 physics-eval``: surprise over time for a few pairs, ROC curves per type."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vjepa2.atomic import atomic_savefig
from vjepa2.evals.physics.metrics import roc_curve


def plot_pair_curves(pairs: list[dict], path: Path, title: str) -> None:
    """One panel per pair: the possible and the impossible video's surprise over time, the
    violation's frame marked. pairs: {"pair", "times", "possible", "impossible", "event_frame"}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs), 2.8), squeeze=False, sharey=True)
    for ax, pair in zip(axes[0], pairs):
        ax.plot(pair["times"], pair["possible"], "o-", color="tab:green", label="possible")
        ax.plot(pair["times"], pair["impossible"], "o-", color="tab:red", label="impossible")
        if pair.get("event_frame") is not None:
            ax.axvline(pair["event_frame"], color="grey", linestyle="--", label="violation")
        ax.set_title(pair["pair"], fontsize=8)
        ax.set_xlabel("first predicted frame")
    axes[0][0].set_ylabel("surprise (L1)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def plot_roc(by_kind: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """ROC curves of max surprise, one per type: by_kind {kind: (possible (P,), impossible (P,))}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    for kind, (possible, impossible) in by_kind.items():
        fpr, tpr = roc_curve(possible, impossible)
        ax.plot(fpr, tpr, label=kind)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlabel("possible videos flagged (false positive rate)")
    ax.set_ylabel("impossible videos flagged (true positive rate)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
