"""``vjepa2 convert``: any supported checkpoint -> our format or a ``transformers`` directory."""

from __future__ import annotations

from dataclasses import dataclass

from vjepa2.checkpoints import probes
from vjepa2.checkpoints.hf import export_transformers
from vjepa2.checkpoints.loading import load
from vjepa2.config import opt
from vjepa2.errors import UserError


@dataclass
class ConvertConfig:
    source: str = opt(
        "", help="checkpoint: reference .pt, training checkpoint, transformers dir or ours", positional=True
    )
    out: str = opt("runs/converted", help="output directory")
    to: str = opt("ours", help="ours (safetensors + config.json) or transformers")
    encoder_key: str = opt(
        "target_encoder",
        help="encoder to take from a reference .pt: target_encoder (the EMA one; 2.1 B/L files name it "
        "ema_encoder, read when target_encoder is absent) or encoder (the online one)",
    )
    crop_size: int = opt(
        0, help="transformers only: input size the exported model will see (0: the model's crop)"
    )
    probe: str = opt("", help="transformers only: also export this probe as VJEPA2ForVideoClassification")


def run_convert(cfg: ConvertConfig) -> int:
    if cfg.to not in ("ours", "transformers"):
        raise UserError(f"--to must be 'ours' or 'transformers', got {cfg.to!r}")
    if not cfg.source:
        raise UserError("give the checkpoint to convert")
    model = load(cfg.source, encoder_key=cfg.encoder_key)
    if cfg.to == "ours":
        model.save(cfg.out)
    elif cfg.to == "transformers" and cfg.probe:
        probe_dir = probes.probe_folder(cfg.probe)
        labels = probes.probe_labels(probe_dir)
        probes.export_classifier_transformers(
            model,
            probes.load_probe(probe_dir),
            cfg.out,
            labels=labels,
            crop_size=cfg.crop_size or None,
        )
    else:
        export_transformers(model, cfg.out, crop_size=cfg.crop_size or None)
    print(f"{cfg.source} -> {cfg.out} ({cfg.to})")
    return 0
