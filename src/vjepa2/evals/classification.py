"""Classification metrics of the probes: correct counts, top-1 / top-5 and per-class accuracy, the
confusion matrix and its picture."""

from __future__ import annotations

from pathlib import Path

import torch

from vjepa2.atomic import atomic_savefig


def accuracy_counts(logits: torch.Tensor, labels: torch.Tensor) -> int:
    return int((logits.argmax(-1) == labels).sum())


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, names: list[str]) -> dict:
    """Top-1 / top-5 (%), per-class accuracy (%) and the confusion matrix (rows: true labels)."""
    num_classes = probs.shape[1]
    k = min(5, num_classes)
    top = probs.topk(k, dim=1).indices  # (N, k)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((labels, top[:, 0]), torch.ones_like(labels), accumulate=True)
    counts = confusion.sum(1)
    per_class = {
        names[c]: {"accuracy": 100.0 * confusion[c, c].item() / counts[c].item(), "count": counts[c].item()}
        for c in range(num_classes)
        if counts[c] > 0
    }
    return {
        "num_samples": len(labels),
        "top1": 100.0 * (top[:, 0] == labels).float().mean().item(),
        "top5": 100.0 * (top == labels[:, None]).any(1).float().mean().item(),  # k capped at C
        "mean_class_accuracy": sum(v["accuracy"] for v in per_class.values()) / max(1, len(per_class)),
        "per_class": per_class,
        "labels": names,
        "confusion": confusion.tolist(),
    }


def plot_confusion(confusion: list[list[int]], names: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix as a PNG (counts written in the cells for small ones)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = torch.tensor(confusion, dtype=torch.float)
    rates = counts / counts.sum(1, keepdim=True).clamp(min=1)
    n = len(names)
    size = min(16, 3 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(n), names, fontsize=8)
        for i in range(n):
            for j in range(n):
                if counts[i, j] > 0:
                    colour = "white" if rates[i, j] > 0.5 else "black"
                    ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)
