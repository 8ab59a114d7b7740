"""Training logs: one JSON line per step (optional CSV and TensorBoard), progress bars, collapse
diagnostics, and the ``vjepa2 plot-log`` command that draws a log's curves to PNG.

JEPA losses are only a proxy: a loss that goes down then up is normal, a sudden jump or features
whose spread shrinks towards zero signal (partial) collapse. ``collapse_stats`` puts two spread
measures of the target features beside the loss so that the difference can be seen.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from vjepa2.atomic import atomic_savefig, atomic_write_text
from vjepa2.config import opt
from vjepa2.errors import MissingPathError, UnknownKeyError, UserError


def _plain(value: Any) -> Any:
    """Tensors and numpy scalars -> Python numbers, so that every value is JSON-serializable."""
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def read_log(path: str | Path) -> list[dict]:
    """Rows of a JSONL or CSV log (CSV numbers parsed to float; empty cells dropped)."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"log file not found: {path}")
    rows = []
    with open(path, newline="") as fh:
        if path.suffix == ".csv":
            for row in csv.DictReader(fh):
                rows.append({k: _number(v) for k, v in row.items() if v not in ("", None)})
            return rows
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise UserError(f"{path}:{lineno}: not a JSON line ({err})") from None
    return rows


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


class MetricsLogger:
    """Appends one JSON object per ``log`` call to ``path`` (and a row to ``csv_path``).

    ``resume_step``: when a run resumes from a checkpoint at that step, lines of the interrupted
    run with a larger step are dropped first, so the log reads as if the run was never stopped.
    TensorBoard is used only if ``tensorboard_dir`` is given and the package is installed.
    """

    def __init__(
        self,
        path: str | Path,
        csv_path: str | Path | None = None,
        tensorboard_dir: str | Path | None = None,
        resume_step: int | None = None,
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.csv_path = Path(csv_path) if csv_path else None
        self.csv_fields: list[str] | None = None
        if resume_step is None:
            atomic_write_text(self.path, "")
            if self.csv_path:
                self.csv_path.unlink(missing_ok=True)
        else:
            self._truncate(resume_step)
        self.tb = _tensorboard_writer(tensorboard_dir) if tensorboard_dir else None

    def _truncate(self, step: int) -> None:
        rows = read_log(self.path) if self.path.is_file() else []
        kept = [r for r in rows if r.get("step", -1) <= step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        if self.csv_path:
            self.csv_path.unlink(missing_ok=True)
            for row in kept:
                self._write_csv(row)

    def log(self, step: int, **metrics: Any) -> dict:
        """Write ``{"step": step, **metrics}``; returns the row as written."""
        row = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        if self.csv_path:
            self._write_csv(row)
        if self.tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tb.add_scalar(key, value, step)
        return row

    def _write_csv(self, row: dict) -> None:
        new_file = not self.csv_path.is_file()
        if self.csv_fields is None or new_file:
            self.csv_fields = list(row)
        extra = set(row) - set(self.csv_fields)
        if extra:
            warnings.warn(
                f"{self.csv_path}: columns {sorted(extra)} appeared late and are kept only in the JSONL log",
                stacklevel=3,
            )
        with open(self.csv_path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.csv_fields, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(row)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _tensorboard_writer(folder: str | Path):
    """A SummaryWriter if TensorBoard is installed, else None (it is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))


def progress(total: int, initial: int = 0, enabled: bool = True, desc: str = "train") -> tqdm:
    """A tqdm bar over optimizer steps; disabled on non-main ranks."""
    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, dynamic_ncols=True)


@torch.no_grad()
def collapse_stats(features: torch.Tensor) -> dict[str, float]:
    """Spread of features (B, N, D); values near 0 mean the representation collapsed.

    std_tokens: std over the N tokens of a clip, averaged over dims and clips (spatial collapse:
    every token of a clip looks the same). std_batch: std over the B clips of the mean-pooled
    feature, averaged over dims (every clip looks the same); only when B > 1. rank: effective
    rank of the tokens (exp of the entropy of the normalized singular-value spectrum of the centred
    (B * N, D) matrix, between 1 and D): dimensional collapse, which the stds miss. In session 5 a
    tiny run whose target lost object colour kept std_tokens ~0.7 while its rank fell from 7.2
    (random weights) to 3.0.
    """
    if features.ndim != 3:
        raise ValueError(f"expected features (B, N, D), got shape {tuple(features.shape)}")
    features = features.float()
    stats = {"std_tokens": features.std(dim=1, correction=0).mean().item()}
    if features.shape[0] > 1:
        stats["std_batch"] = features.mean(dim=1).std(dim=0).mean().item()
    stats["rank"] = effective_rank(features.flatten(0, 1))
    return stats


def effective_rank(rows: torch.Tensor) -> float:
    """exp(entropy) of the share of variance along each principal axis of ``rows`` (M, D)."""
    # Eigenvalues of the (D, D) covariance: cheaper than an SVD of (M, D) when M >> D.
    centred = rows - rows.mean(dim=0)
    share = torch.linalg.eigvalsh(centred.T @ centred).clamp_min(0)
    share = share / share.sum().clamp_min(1e-12)
    return float(torch.exp(-(share * share.clamp_min(1e-12).log()).sum()))


@dataclass
class PlotLogConfig:
    log: str = opt("", help="JSONL or CSV training log", positional=True)
    out: str = opt("", help="output PNG (default: the log path with .png)")
    keys: list[str] = opt([], help="metrics to plot (default: every numeric column except step)")
    x: str = opt("step", help="column on the x axis")
    smooth: int = opt(0, help="moving-average window drawn over the raw curve (0: none)")


def _moving_average(values: list[float], window: int) -> list[float]:
    out, total, queue = [], 0.0, []
    for v in values:
        queue.append(v)
        total += v
        if len(queue) > window:
            total -= queue.pop(0)
        out.append(total / len(queue))
    return out


def run_plot_log(cfg: PlotLogConfig) -> int:
    """Draw one subplot per metric of the log to a PNG; returns 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not cfg.log:
        raise UserError("plot-log: give the path of a JSONL or CSV log")
    rows = read_log(cfg.log)
    if not rows:
        raise UserError(f"{cfg.log}: the log is empty")
    numeric = [k for k in dict.fromkeys(k for r in rows for k in r) if k != cfg.x]
    numeric = [k for k in numeric if any(isinstance(r.get(k), (int, float)) for r in rows)]
    keys = cfg.keys or numeric
    missing = [k for k in keys if k not in numeric]
    if missing:
        raise UnknownKeyError(f"{cfg.log}: no numeric column {missing}; columns: {numeric}")
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 2.4 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        points = [
            (r.get(cfg.x, i), r[key]) for i, r in enumerate(rows) if isinstance(r.get(key), (int, float))
        ]
        points = [(x, y) for x, y in points if math.isfinite(y)]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax.plot(xs, ys, lw=0.8, alpha=0.5 if cfg.smooth > 1 else 1.0)
        if cfg.smooth > 1:
            ax.plot(xs, _moving_average(ys, cfg.smooth), lw=1.5)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(cfg.x)
    fig.suptitle(Path(cfg.log).name)
    fig.tight_layout()
    out = Path(cfg.out or Path(cfg.log).with_suffix(".png"))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_savefig(fig, out, dpi=100)
    plt.close(fig)
    print(f"wrote {out}")
    return 0
