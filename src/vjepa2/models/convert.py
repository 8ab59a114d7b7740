"""``vjepa2 convert``: any supported checkpoint -> our format or a ``transformers`` directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vjepa2.config import opt
from vjepa2.models import probe_weights, weights


@dataclass
class ConvertConfig:
    source: str = opt(
        "", help="checkpoint: reference .pt, training checkpoint, transformers dir or ours", positional=True
    )
    out: str = opt("converted", help="output directory")
    to: str = opt("ours", help="ours (safetensors + config.json) or transformers")
    encoder_key: str = opt(
        "target_encoder", help="encoder to take from a reference .pt: target_encoder or encoder"
    )
    crop_size: int = opt(
        0, help="transformers only: input size the exported model will see (0: the model's crop)"
    )
    probe: str = opt("", help="transformers only: also export this probe as VJEPA2ForVideoClassification")


def run_convert(cfg: ConvertConfig) -> int:
    if not cfg.source:
        raise SystemExit("vjepa2 convert: give the checkpoint to convert")
    model = weights.load(cfg.source, encoder_key=cfg.encoder_key)
    if cfg.to == "ours":
        model.save(cfg.out)
    elif cfg.to == "transformers" and cfg.probe:
        probe_dir = Path(cfg.probe)
        labels = probe_weights.probe_labels(probe_dir)
        probe_weights.export_classifier_transformers(
            model,
            probe_weights.load_probe(probe_dir),
            cfg.out,
            labels=labels,
            crop_size=cfg.crop_size or None,
        )
    elif cfg.to == "transformers":
        weights.export_transformers(model, cfg.out, crop_size=cfg.crop_size or None)
    else:
        raise SystemExit(f"vjepa2 convert: --to must be 'ours' or 'transformers', got {cfg.to!r}")
    print(f"{cfg.source} -> {cfg.out} ({cfg.to})")
    return 0
