"""Reading and writing attentive probes: reference probe dicts ({'classifiers': [...]}),
``transformers`` VJEPA2ForVideoClassification directories (read, and written together with the
encoder) and our own format. Key maps are in ``keymaps.py``; the probe's shape is inferred from
its weights.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from vjepa2.models import keymaps as km
from vjepa2.models.model import VJEPA2
from vjepa2.models.probe import AttentiveClassifier, ProbeConfig
from vjepa2.models.weights import (
    ENCODER_HEADS,
    FORMAT,
    atomic_save_file,
    block_depth,
    read_safetensors_dir,
    sub_state,
    torch_load,
    transformers_config,
    transformers_tensors,
    write_json,
)


def probe_config_from_state(state: dict, where: str = "", **overrides) -> ProbeConfig:
    num_classes, dim = state["linear.weight"].shape
    cfg = ProbeConfig(
        dim=dim,
        heads=overrides.pop("heads", None) or ENCODER_HEADS.heads(dim, where),
        depth=block_depth(state, "pooler.blocks.") + 1,
        mlp_ratio=state["pooler.cross_attention_block.mlp.fc1.weight"].shape[0] / dim,
        num_queries=state["pooler.query_tokens"].shape[1],
        num_classes=num_classes,
    )
    return dataclasses.replace(cfg, **overrides)


def load_probe(source: str | Path, index: int = 0, **overrides) -> AttentiveClassifier:
    """A probe: reference ``{'classifiers': [...]}`` .pt (head ``index``), a ``transformers``
    VJEPA2ForVideoClassification directory, or our own probe directory."""
    path = Path(source)
    if path.is_dir():
        config = json.loads((path / "config.json").read_text())
        state = read_safetensors_dir(path)
        if config.get("format") == FORMAT:
            cfg = ProbeConfig(**config["probe"])
            probe_state = sub_state(state, "probe.")
        else:
            probe_state = km.to_ours(
                {k: v for k, v in state.items() if k.startswith(("pooler.", "classifier."))}, km.HF_PROBE
            )
            # transformers builds pooler norms with layer_norm_eps, the reference with 1e-5
            cfg = probe_config_from_state(
                probe_state,
                heads=config["num_attention_heads"],
                eps=config.get("layer_norm_eps", 1e-6),
                **overrides,
            )
    else:
        ckpt = torch_load(path)
        if "classifiers" not in ckpt:
            raise ValueError(
                f"{path}: not a probe checkpoint (no 'classifiers' key; found {sorted(ckpt)[:6]})"
            )
        probe_state = km.to_ours(km.strip_prefixes(ckpt["classifiers"][index]), km.REFERENCE_PROBE)
        cfg = probe_config_from_state(probe_state, str(path), **overrides)
    probe = AttentiveClassifier(cfg)
    km.load_checked(probe, probe_state, str(path))
    return probe.eval()


def save_probe(probe: AttentiveClassifier, path: str | Path, labels: list[str] | None = None) -> None:
    """Our probe format: ``path/model.safetensors`` (probe.*) + config.json (with label names)."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"probe.{k}": v for k, v in probe.state_dict().items()}
    atomic_save_file(tensors, directory / "model.safetensors", {"format": FORMAT})
    config = {"format": FORMAT, "version": 1, "probe": dataclasses.asdict(probe.cfg), "labels": labels}
    write_json(config, directory / "config.json")


def probe_labels(path: str | Path) -> list[str] | None:
    """Label names stored with a probe (our format or transformers' id2label), if any."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        return None
    config = json.loads(config_file.read_text())
    if config.get("format") == FORMAT:
        return config.get("labels")
    id2label = config.get("id2label") or {}
    return [id2label[k] for k in sorted(id2label, key=int)] or None


def export_classifier_transformers(
    model: VJEPA2,
    probe: AttentiveClassifier,
    out_dir: str | Path,
    labels: list[str] | None = None,
    crop_size: int | None = None,
) -> Path:
    """Write encoder + probe as a ``transformers`` VJEPA2ForVideoClassification directory."""
    if probe.cfg.num_queries != 1 or probe.cfg.dim != model.encoder.cfg.dim:
        raise ValueError("transformers' classifier needs one query and the encoder's width")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"vjepa2.{k}": v for k, v in transformers_tensors(model).items()}
    tensors.update(km.to_theirs(probe.state_dict(), km.HF_PROBE))
    atomic_save_file(tensors, out / "model.safetensors", {"format": "pt"})
    config = transformers_config(model.encoder, model.predictor, crop_size)
    labels = labels or [str(i) for i in range(probe.cfg.num_classes)]
    config.update(
        architectures=["VJEPA2ForVideoClassification"],
        num_pooler_layers=probe.cfg.depth - 1,
        id2label={str(i): name for i, name in enumerate(labels)},
        label2id={name: i for i, name in enumerate(labels)},
    )
    write_json(config, out / "config.json")
    return out
