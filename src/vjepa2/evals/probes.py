"""Attentive probes on frozen-encoder features: what ``probe train``, ``probe eval`` and
``classify`` (``evals.commands``) share.

- ``feature_spec``: everything that decides a probe's input tokens, saved beside the probe as
  ``features.json`` (``FEATURES_FILE``) and keying the feature cache; ``probe_spec`` reads it back
  (or the settings of a ``transformers`` classification folder);
- ``clip_dataset``: the clips a spec asks for (with the probe's augmentation when training);
- ``label_names`` / ``saved_label_names``: class names from a file, ``labels.json`` of the
  synthetic world, or the probe's own config;
- ``load_probe_setup``: a saved probe with its encoder, feature extractor and names;
- ``predict`` / ``evaluate_heads``: softmax averaged over clips x views; top-1 of a grid of heads.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from vjepa2.checkpoints.probes import load_probe, probe_folder
from vjepa2.errors import MissingPathError, UserError
from vjepa2.evals.classification import accuracy_counts
from vjepa2.evals.features import (
    ClipDataset,
    FeatureExtractor,
    load_encoder,
    read_layers,
    weights_fingerprint,
)
from vjepa2.evals.head_grid import Head
from vjepa2.models.precision import resolve_dtype
from vjepa2.runtime.process import compile_encoder
from vjepa2.weights.table import find

log = logging.getLogger(__name__)

FEATURES_FILE = "features.json"


# -- what makes the probe's input -----------------------------------------------------------------
def feature_spec(cfg, model, crop: int) -> dict:
    """Everything that decides the probe's input tokens (stored beside the probe, keys the cache).
    The version and ``levels`` keep 2.0 and 2.1 features apart; ``layers`` are the blocks read
    (with ``levels``, those of the 2.1 levels)."""
    return {
        "encoder": cfg.encoder,
        "encoder_key": cfg.encoder_key,
        "encoder_seed": cfg.seed,
        "weights": weights_fingerprint(model),
        "version": model.version,
        "levels": cfg.levels,
        "layers": read_layers(model, cfg.layers, cfg.levels),
        "layer_concat": cfg.layer_concat,
        "single_frame": cfg.single_frame,
        "num_frames": cfg.num_frames,
        "fps": cfg.fps,
        "frame_step": cfg.frame_step,
        "crop": crop,
        "num_segments": cfg.num_segments,
        "dtype": cfg.dtype,
    }


def clip_dataset(source, spec: dict, train: bool = False, cfg=None, **views) -> ClipDataset:
    """A ClipDataset reading clips as ``spec`` says; ``cfg`` supplies the augmentation if ``train``."""
    aug = {}
    if train:
        aug = dict(scale=cfg.aug_scale, ratio=cfg.aug_ratio, flip_prob=cfg.aug_flip, seed=cfg.seed)
    return ClipDataset(
        source,
        num_frames=spec["num_frames"],
        fps=spec["fps"],
        frame_step=spec["frame_step"] or None,
        crop=spec["crop"],
        num_segments=spec["num_segments"],
        train=train,
        **aug,
        **views,
    )


def probe_spec(probe_dir: Path) -> dict:
    """How the probe's input is made: features.json, or the settings of a transformers folder."""
    file = probe_dir / FEATURES_FILE
    if file.is_file():
        return json.loads(file.read_text())
    config = json.loads((probe_dir / "config.json").read_text())
    if "hidden_size" not in config:
        raise UserError(f"{probe_dir}: no {FEATURES_FILE}; pass the encoder it was trained on with --encoder")
    return given_spec(str(probe_dir), config.get("frames_per_clip", 16), config.get("crop_size", 256))


def given_spec(encoder: str, num_frames: int, crop: int, **settings) -> dict:
    """A spec for a probe that ``probe train`` did not write (a transformers classifier, a released
    probe): ``feature_spec``'s keys, the reference's settings where the probe's files say nothing
    (the target encoder's last layer, 4 fps, one segment); ``settings`` replace them."""
    spec = {
        "encoder": encoder, "encoder_key": "target_encoder", "encoder_seed": 0, "weights": None,
        "version": "2.0", "levels": False, "layers": [], "layer_concat": "tokens", "single_frame": False,
        "num_frames": num_frames, "fps": 4.0, "frame_step": 0, "crop": crop, "num_segments": 1, "dtype": "auto",
    }  # fmt: skip
    return spec | settings


# -- class names ----------------------------------------------------------------------------------
def label_names(index: str, labels_file: str = "", num_classes: int | None = None) -> list[str] | None:
    """Names of the classes: from ``labels_file`` (one per line, or a JSON list), else from the
    ``labels.json`` that ``vjepa2 worlds make-videos`` writes beside ``<task>[_split].csv``."""
    if labels_file:
        path = Path(labels_file)
        if not path.is_file():
            raise MissingPathError(f"label names file not found: {path}")
        text = path.read_text()
        names = json.loads(text) if path.suffix == ".json" else [ln.strip() for ln in text.splitlines()]
        names = [n for n in names if n]
    else:
        meta = Path(index).parent / "labels.json" if index else None
        if not meta or not meta.is_file():
            return None
        tasks = json.loads(meta.read_text()).get("tasks", {})
        task = Path(index).stem.rsplit("_", 1)[0] if Path(index).stem not in tasks else Path(index).stem
        if task not in tasks:
            return None
        names = list(tasks[task]["classes"])
    if num_classes is not None and len(names) < num_classes:
        raise UserError(f"{labels_file or index}: {len(names)} label names for {num_classes} classes")
    return names


def saved_label_names(probe_dir: Path) -> list[str] | None:
    if not probe_dir.is_dir():
        return None  # a released probe file: numbered classes (the release names none)
    config = json.loads((probe_dir / "config.json").read_text())
    if config.get("labels"):
        return list(config["labels"])
    id2label = config.get("id2label")
    if id2label:
        return [id2label[str(i)] for i in range(len(id2label))]
    return None


# -- a saved probe at work ------------------------------------------------------------------------
def released_probe_spec(name: str) -> dict | None:
    """The spec of the released probe ``name`` (``vjepa2 weights list``) from the protocol its
    table row records, or None when ``name`` is a path or no released probe's name."""
    entry = None if Path(name).exists() else find(name)
    if entry is None or entry.kind != "probe":
        return None
    given = entry.probe_input
    if given is None:
        raise UserError(
            f"{name}: an EK100 anticipation probe; `probe eval` and `classify` read classifiers of "
            "clips (anticipation: `vjepa2 anticipate`, docs/probes.md)"
        )
    return given_spec(
        given.encoder, given.num_frames, given.crop, version=entry.version, layers=list(given.layers),
        frame_step=given.frame_step, num_segments=given.num_segments, num_views=given.num_views,
    )  # fmt: skip


def load_probe_setup(
    probe_dir: str, encoder: str, labels: str, device: str, dtype: str, compile: bool = False
):
    """(probe, feature extractor, spec, label names) for a saved probe folder, a transformers
    classifier or a released probe's name (its input made as the reference's eval config says);
    ``compile``: the encoder compiled (``runtime.process.compile_encoder``)."""
    released = released_probe_spec(probe_dir)
    path = probe_folder(probe_dir)
    if released is None and not path.is_dir():
        raise UserError(
            f"{path}: not a probe folder (written by `vjepa2 probe train` or transformers) nor a released "
            "probe's name (`vjepa2 weights list`)"
        )
    probe = load_probe(path).to(device).eval()
    spec = released or probe_spec(path)
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
    dtype = resolve_dtype(dtype, device, inference=True)  # the command's Process said it
    extract = FeatureExtractor(model, layers, spec["layer_concat"], spec["single_frame"], dtype)
    compile_encoder(model, compile)  # after the extractor held the weights in dtype
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


@torch.no_grad()
def evaluate_heads(heads: list[Head], loader, extract: FeatureExtractor) -> list[float]:
    """Top-1 (%) of every head on a loader (one clip, one view per sample)."""
    for h in heads:
        h.module.eval()
    correct, count = [0] * len(heads), 0
    for items in loader:
        if not items:
            continue
        tokens, labels = extract(items)
        tokens = tokens[:, 0]  # (B, N, D'): a single clip/view
        for i, h in enumerate(heads):
            with extract.autocast():
                correct[i] += accuracy_counts(h.module(tokens), labels)
        count += len(labels)
    return [100.0 * c / max(1, count) for c in correct]
