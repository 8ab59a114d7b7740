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

from dataclasses import dataclass
from pathlib import Path

import torch

from vjepa2.atomic import atomic_open, atomic_write_json
from vjepa2.config import opt
from vjepa2.errors import MissingPathError, UserError
from vjepa2.evals.classification import classification_metrics, plot_confusion
from vjepa2.evals.features import make_loader
from vjepa2.evals.probes import clip_dataset, load_probe_setup, predict
from vjepa2.models.precision import DEVICE_HELP, INFERENCE_DTYPE_HELP
from vjepa2.runtime.process import COMPILE_HELP, Process


@dataclass
class ProbeEvalConfig:
    probe: str = opt(
        "", help="probe folder from 'probe train', a transformers classifier, or a released probe's name"
    )
    data: str = opt("", help="index to evaluate: CSV of 'path label' lines, or a folder of class folders")
    encoder: str = opt("", help="encoder to use instead of the one recorded with the probe")
    labels: str = opt("", help="label names file (default: the names saved with the probe)")
    out: str = opt("runs/probe-eval", help="output folder: metrics.json, confusion.png, predictions.csv")
    num_clips: int = opt(1, help="temporal clips per video (softmax averaged)")
    num_views: int = opt(
        0, help="spatial views per clip (softmax averaged); 0: the probe's protocol (released: 3, else 1)"
    )
    batch_size: int = opt(8, help="videos per batch")
    device: str = opt("auto", help=DEVICE_HELP)
    dtype: str = opt(
        "auto",
        help=f"encoder precision: {INFERENCE_DTYPE_HELP}",
    )
    workers: int = opt(2, help="data loader worker processes")
    compile: bool = opt(False, help=COMPILE_HELP)


@dataclass
class ClassifyConfig:
    videos: list[str] = opt([], help="videos or images to classify", positional=True)
    probe: str = opt(
        "", help="probe folder from 'probe train', a transformers classifier, or a released probe's name"
    )
    encoder: str = opt("", help="encoder to use instead of the one recorded with the probe")
    labels: str = opt("", help="label names file (default: the names saved with the probe)")
    top_k: int = opt(5, help="labels to print per video")
    num_clips: int = opt(1, help="temporal clips per video (softmax averaged)")
    num_views: int = opt(
        0, help="spatial views per clip (softmax averaged); 0: the probe's protocol (released: 3, else 1)"
    )
    device: str = opt("auto", help=DEVICE_HELP)
    dtype: str = opt(
        "auto",
        help=f"encoder precision: {INFERENCE_DTYPE_HELP}",
    )
    out: str = opt("", help="also write the results to this JSON file")
    compile: bool = opt(False, help=COMPILE_HELP)


def run_probe_eval(cfg: ProbeEvalConfig) -> int:
    if not cfg.probe or not cfg.data:
        raise UserError("probe eval: give --probe (a probe folder) and --data (an index to evaluate)")
    with Process(cfg.device, cfg.dtype, inference=True) as proc:
        cfg.device, cfg.dtype = str(proc.device), proc.dtype
        return evaluate_probe(cfg)


def views(cfg, spec: dict) -> int:
    return cfg.num_views or spec.get("num_views", 1)


def evaluate_probe(cfg: ProbeEvalConfig) -> int:
    probe, extract, spec, names = load_probe_setup(
        cfg.probe, cfg.encoder, cfg.labels, cfg.device, cfg.dtype, compile=cfg.compile
    )
    dataset = clip_dataset(cfg.data, spec, num_clips=cfg.num_clips, num_views=views(cfg, spec))
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
        num_views=views(cfg, spec),
        probe=cfg.probe,
        data=cfg.data,
        encoder=spec["encoder"],
    )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "metrics.json", metrics)
    title = f"{Path(cfg.data).name}: top-1 {metrics['top1']:.1f}%"
    plot_confusion(metrics["confusion"], names, out / "confusion.png", title)
    with atomic_open(out / "predictions.csv", "w") as fh:
        fh.write("path,label,prediction,probability\n")
        for path, label, p in zip(all_paths, labels.tolist(), probs):
            fh.write(f"{path},{names[label]},{names[int(p.argmax())]},{float(p.max()):.4f}\n")
    print(f"{cfg.data}: {metrics['num_samples']} videos, top-1 {metrics['top1']:.2f}%, "
          f"top-5 {metrics['top5']:.2f}%, mean class accuracy {metrics['mean_class_accuracy']:.2f}%")  # fmt: skip
    print(f"wrote {out / 'metrics.json'} and {out / 'confusion.png'}")
    return 0


def run_classify(cfg: ClassifyConfig) -> int:
    if not cfg.videos or not cfg.probe:
        raise UserError("classify: give one or more videos and --probe (a probe folder)")
    missing = [v for v in cfg.videos if not Path(v).exists()]
    if missing:
        raise MissingPathError(f"video not found: {missing[0]}")
    with Process(cfg.device, cfg.dtype, inference=True) as proc:
        cfg.device, cfg.dtype = str(proc.device), proc.dtype
        return classify(cfg)


def classify(cfg: ClassifyConfig) -> int:
    probe, extract, spec, names = load_probe_setup(
        cfg.probe, cfg.encoder, cfg.labels, cfg.device, cfg.dtype, compile=cfg.compile
    )
    dataset = clip_dataset(
        [(v, 0) for v in cfg.videos], spec, num_clips=cfg.num_clips, num_views=views(cfg, spec)
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
    if cfg.out:
        atomic_write_json(Path(cfg.out), results)
    return 1 if unread else 0
