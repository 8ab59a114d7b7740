"""``vjepa2 probe eval`` and ``vjepa2 classify``: a trained probe on new videos.

Each video is read as ``num_clips`` temporal clips x ``num_views`` spatial views (the reference's
multi-clip x multi-view test); the probe scores every one and the softmax probabilities are
averaged. ``probe eval`` reports top-1, top-5, per-class accuracy and a confusion matrix (JSON +
PNG); ``classify`` prints the top-k labels of each video.

A probe directory from ``vjepa2 probe train`` carries ``features.json``, which says which encoder,
layers, frames and crop made its input. A ``transformers`` VJEPA2ForVideoClassification directory
works too: its encoder is the one in the same directory, read at its own crop and frame count.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from vjepa2.checkpoints.probes import load_probe, probe_folder
from vjepa2.config import opt
from vjepa2.errors import MissingPathError, UserError
from vjepa2.evals.features import (
    FeatureExtractor,
    load_encoder,
    make_loader,
    read_layers,
    weights_fingerprint,
)
from vjepa2.evals.probe_train import FEATURES_FILE, clip_dataset, label_names
from vjepa2.models.precision import DEVICE_HELP, INFERENCE_DTYPE_HELP, choose_dtype

log = logging.getLogger(__name__)


@dataclass
class ProbeEvalConfig:
    probe: str = opt("", help="probe folder from 'probe train' (or a transformers classification folder)")
    data: str = opt("", help="index to evaluate: CSV of 'path label' lines, or a folder of class folders")
    encoder: str = opt("", help="encoder to use instead of the one recorded with the probe")
    labels: str = opt("", help="label names file (default: the names saved with the probe)")
    out: str = opt("runs/probe-eval", help="output folder: metrics.json, confusion.png, predictions.csv")
    num_clips: int = opt(1, help="temporal clips per video (softmax averaged)")
    num_views: int = opt(1, help="spatial views per clip (softmax averaged; reference: 3)")
    batch_size: int = opt(8, help="videos per batch")
    device: str = opt("auto", help=DEVICE_HELP)
    dtype: str = opt(
        "auto",
        help=f"encoder precision: {INFERENCE_DTYPE_HELP}",
    )
    workers: int = opt(2, help="data loader worker processes")


@dataclass
class ClassifyConfig:
    videos: list[str] = opt([], help="videos or images to classify", positional=True)
    checkpoint: str = opt(
        "", help="probe folder from 'probe train' (or a transformers classification folder)"
    )
    encoder: str = opt("", help="encoder to use instead of the one recorded with the probe")
    labels: str = opt("", help="label names file (default: the names saved with the probe)")
    top_k: int = opt(5, help="labels to print per video")
    num_clips: int = opt(1, help="temporal clips per video (softmax averaged)")
    num_views: int = opt(1, help="spatial views per clip (softmax averaged)")
    device: str = opt("auto", help=DEVICE_HELP)
    dtype: str = opt(
        "auto",
        help=f"encoder precision: {INFERENCE_DTYPE_HELP}",
    )
    json: str = opt("", help="also write the results to this JSON file")


# -- loading a probe with what it needs -----------------------------------------------------------
def probe_spec(probe_dir: Path) -> dict:
    """How the probe's input is made: features.json, or the settings of a transformers folder."""
    file = probe_dir / FEATURES_FILE
    if file.is_file():
        return json.loads(file.read_text())
    config = json.loads((probe_dir / "config.json").read_text())
    if "hidden_size" not in config:
        raise UserError(f"{probe_dir}: no {FEATURES_FILE}; pass the encoder it was trained on with --encoder")
    return {
        "encoder": str(probe_dir), "encoder_key": "target_encoder", "encoder_seed": 0, "weights": None,
        "version": "2.0", "levels": False, "layers": [], "layer_concat": "tokens", "single_frame": False,
        "num_frames": config.get("frames_per_clip", 16), "fps": 4.0, "frame_step": 0,
        "crop": config.get("crop_size", 256), "num_segments": 1, "dtype": "auto",
    }  # fmt: skip


def saved_label_names(probe_dir: Path) -> list[str] | None:
    config = json.loads((probe_dir / "config.json").read_text())
    if config.get("labels"):
        return list(config["labels"])
    id2label = config.get("id2label")
    if id2label:
        return [id2label[str(i)] for i in range(len(id2label))]
    return None


def load_probe_setup(probe_dir: str, encoder: str, labels: str, device: str, dtype: str):
    """(probe, feature extractor, spec, label names) for a saved probe folder."""
    path = probe_folder(probe_dir)
    if not path.is_dir():
        raise UserError(f"{path}: not a probe folder (written by `vjepa2 probe train` or transformers)")
    probe = load_probe(path).to(device).eval()
    spec = probe_spec(path)
    if encoder:
        spec = {**spec, "encoder": encoder, "weights": None}
    model = load_encoder(
        spec["encoder"], device, spec.get("encoder_seed", 0), spec.get("encoder_key", "target_encoder")
    )
    if spec.get("weights") and weights_fingerprint(model) != spec["weights"]:
        log.warning("%s: encoder weights differ from those the probe was trained on", spec["encoder"])
    trained_on = spec.get("version", "2.0")  # probes saved before 2.1 existed are 2.0 probes
    if model.version != trained_on:
        raise UserError(
            f"{path}: the probe was trained on V-JEPA {trained_on} features; {spec['encoder']} is V-JEPA {model.version}"
        )
    levels = spec.get("levels", False)  # the levels of this encoder (an --encoder of another size)
    layers = read_layers(model, [] if levels else spec["layers"], levels)
    dtype = choose_dtype(dtype, device, inference=True)
    extract = FeatureExtractor(model, layers, spec["layer_concat"], spec["single_frame"], dtype)
    num_classes = probe.cfg.num_classes
    names = label_names("", labels, num_classes) if labels else saved_label_names(path)
    names = list(names or [str(i) for i in range(num_classes)])
    return probe, extract, spec, names


@torch.no_grad()
def predict(probe, extract: FeatureExtractor, loader):
    """Yield (probabilities (B, C) averaged over clips x views, labels (B,), paths) per batch."""
    for items in loader:
        if not items:
            continue
        tokens, labels = extract(items)  # (B, M, N, D')
        B, M = tokens.shape[:2]
        logits = probe(tokens.flatten(0, 1)).float()  # (B * M, C)
        probs = logits.softmax(-1).view(B, M, -1).mean(1)
        yield probs.cpu(), labels.cpu(), [item["path"] for item in items]


# -- metrics --------------------------------------------------------------------------------------
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
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- the commands ---------------------------------------------------------------------------------
def run_probe_eval(cfg: ProbeEvalConfig) -> int:
    if not cfg.probe or not cfg.data:
        raise UserError("probe eval: give --probe (a probe folder) and --data (an index to evaluate)")
    probe, extract, spec, names = load_probe_setup(cfg.probe, cfg.encoder, cfg.labels, cfg.device, cfg.dtype)
    dataset = clip_dataset(cfg.data, spec, num_clips=cfg.num_clips, num_views=cfg.num_views)
    if max(dataset.labels) >= len(names):
        raise UserError(f"{cfg.data}: label {max(dataset.labels)} but the probe has {len(names)} classes")
    loader = make_loader(dataset, cfg.batch_size, False, cfg.workers)
    all_probs, all_labels, all_paths = [], [], []
    for probs, labels, paths in predict(probe, extract, loader):
        all_probs.append(probs)
        all_labels.append(labels)
        all_paths += paths
    if not all_paths:
        raise UserError(f"{cfg.data}: no readable video")
    probs, labels = torch.cat(all_probs), torch.cat(all_labels)
    metrics = classification_metrics(probs, labels, names)
    metrics.update(
        num_skipped=len(dataset) - len(all_paths),
        num_clips=cfg.num_clips,
        num_views=cfg.num_views,
        probe=cfg.probe,
        data=cfg.data,
        encoder=spec["encoder"],
    )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    title = f"{Path(cfg.data).name}: top-1 {metrics['top1']:.1f}%"
    plot_confusion(metrics["confusion"], names, out / "confusion.png", title)
    with open(out / "predictions.csv", "w") as fh:
        fh.write("path,label,prediction,probability\n")
        for path, label, p in zip(all_paths, labels.tolist(), probs):
            fh.write(f"{path},{names[label]},{names[int(p.argmax())]},{float(p.max()):.4f}\n")
    print(f"{cfg.data}: {metrics['num_samples']} videos, top-1 {metrics['top1']:.2f}%, "
          f"top-5 {metrics['top5']:.2f}%, mean class accuracy {metrics['mean_class_accuracy']:.2f}%")  # fmt: skip
    print(f"wrote {out / 'metrics.json'} and {out / 'confusion.png'}")
    return 0


def run_classify(cfg: ClassifyConfig) -> int:
    if not cfg.videos or not cfg.checkpoint:
        raise UserError("classify: give one or more videos and --checkpoint (a probe folder)")
    missing = [v for v in cfg.videos if not Path(v).exists()]
    if missing:
        raise MissingPathError(f"video not found: {missing[0]}")
    probe, extract, spec, names = load_probe_setup(
        cfg.checkpoint, cfg.encoder, cfg.labels, cfg.device, cfg.dtype
    )
    dataset = clip_dataset(
        [(v, 0) for v in cfg.videos], spec, num_clips=cfg.num_clips, num_views=cfg.num_views
    )
    loader = make_loader(dataset, 1, False, 0)
    results = {}
    for probs, _, paths in predict(probe, extract, loader):
        values, indices = probs[0].topk(min(cfg.top_k, len(names)))
        results[paths[0]] = [
            {"label": names[i], "probability": v} for v, i in zip(values.tolist(), indices.tolist())
        ]
        print(paths[0])
        for rank, entry in enumerate(results[paths[0]], 1):
            print(f"  {rank}. {entry['label']:<24s} {entry['probability']:.3f}")
    unread = [v for v in cfg.videos if str(Path(v)) not in {str(Path(p)) for p in results}]
    for video in unread:
        print(f"{video}: could not be read (see the warning above)")
    if cfg.json:
        Path(cfg.json).write_text(json.dumps(results, indent=1))
    return 1 if unread else 0
