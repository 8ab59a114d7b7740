"""Pictures of planning: rollout strips (observations over time beside the goal) and energy
landscapes (energy over a grid of first actions), drawn with matplotlib's Agg backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vjepa2.atomic import atomic_path, atomic_savefig


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_strips(
    path: str | Path, episodes: list[tuple[list[np.ndarray], np.ndarray, bool]], columns: int = 8
):
    """One row per episode: ``columns`` observations evenly spaced in time, then the goal image.

    episodes: (frames uint8 (H, W, 3) list, goal image, success) per row.
    """
    plt = _pyplot()
    rows = len(episodes)
    fig, axes = plt.subplots(rows, columns + 1, figsize=(1.3 * (columns + 1), 1.4 * rows), squeeze=False)
    for row, (frames, goal, success) in zip(axes, episodes):
        picks = np.linspace(0, len(frames) - 1, columns).round().astype(int)
        for ax, t in zip(row[:columns], picks):
            ax.imshow(frames[t])
            ax.set_title(f"t={t}", fontsize=7)
        row[-1].imshow(goal)
        row[-1].set_title("goal " + ("(reached)" if success else "(missed)"), fontsize=7)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)


def save_landscape(path: str | Path, axis: np.ndarray, panels: dict[str, np.ndarray], title: str = ""):
    """Heat maps of energies (G, G) over actions (axis[j], axis[i]) = (a_x, a_y), one per panel;
    the minimum is marked with a cross."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    extent = [axis[0], axis[-1], axis[0], axis[-1]]
    for ax, (name, energy) in zip(axes[0], panels.items()):
        image = ax.imshow(energy, origin="lower", extent=extent, cmap="viridis")
        i, j = np.unravel_index(np.argmin(energy), energy.shape)
        ax.plot(axis[j], axis[i], "rx", markersize=10, mew=2)
        ax.set_xlabel("action x")
        ax.set_ylabel("action y")
        ax.set_title(name, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)


def save_strip_gif(
    path: str | Path, episodes: list[tuple[list[np.ndarray], np.ndarray, bool]], scale: int = 2, ms: int = 200
):
    """An animated GIF of the same episodes as ``save_strips``: one row per episode, the
    observation at time t beside the goal image; a finished episode holds its last frame.

    episodes: (frames uint8 (H, W, 3) list, goal image, success) per row; ``ms`` per frame.
    """
    from PIL import Image

    length = max(len(frames) for frames, _, _ in episodes)
    gap = np.full((episodes[0][1].shape[0], 4, 3), 255, np.uint8)  # white line between frame and goal
    pictures = []
    for t in range(length):
        rows = [np.concatenate([f[min(t, len(f) - 1)], gap, goal], axis=1) for f, goal, _ in episodes]
        picture = np.concatenate(rows, axis=0).repeat(scale, axis=0).repeat(scale, axis=1)
        pictures.append(Image.fromarray(picture))
    with atomic_path(Path(path), keep_suffix=True) as tmp:  # Pillow picks GIF from the suffix
        pictures[0].save(tmp, save_all=True, append_images=pictures[1:], duration=ms, loop=0)
