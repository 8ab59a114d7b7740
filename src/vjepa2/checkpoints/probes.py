"""Attentive probes: reference probe dicts (``{'classifiers': [...]}``), ``transformers``
VJEPA2ForVideoClassification directories (read, and written together with the encoder) and our
own format. The probe's shape is read off its weights where the file does not store it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vjepa2.checkpoints import keymaps as km
from vjepa2.checkpoints.files import (
    CheckpointError,
    atomic_save_file,
    read_json,
    read_safetensors_dir,
    read_torch,
    sub_state,
    write_json,
)
from vjepa2.checkpoints.hf import transformers_config, transformers_tensors
from vjepa2.checkpoints.ours import FORMAT, is_ours, module_config
from vjepa2.checkpoints.shapes import probe_config_from_state
from vjepa2.errors import MissingPathError, UserError
from vjepa2.models.model import VJEPA2
from vjepa2.models.probe import AttentiveClassifier, ProbeConfig
from vjepa2.weights.fetch import resolve

PROBE_KINDS = ("probe", "hf")  # released checkpoints load_probe reads
PROBE_DIR = "probe"  # where ``vjepa2 probe train`` saves the best head inside its run folder


def probe_folder(path: str | Path) -> Path:
    """A probe folder as given, or the one a ``probe train`` run folder holds in ``probe/``; a
    released probe's name (``ssv2-vitl``, a ``transformers`` classifier's hub id) is fetched."""
    path = resolve(path, PROBE_KINDS, "vjepa2.load_probe")
    if not path.exists():
        raise MissingPathError(f"{path}: probe folder not found")
    if (
        path.is_dir()
        and not (path / "config.json").is_file()
        and (path / PROBE_DIR / "config.json").is_file()
    ):
        return path / PROBE_DIR
    return path


def load_probe(source: str | Path, index: int = 0, **overrides) -> AttentiveClassifier:
    """A probe: reference ``{'classifiers': [...]}`` .pt (head ``index``), a ``transformers``
    VJEPA2ForVideoClassification directory, our own probe directory (or the run folder of
    ``vjepa2 probe train`` that holds it), or a released probe's name (``vjepa2 weights list``)."""
    path = probe_folder(source)
    if path.is_dir():
        config = read_json(path / "config.json")
        state = read_safetensors_dir(path)
        if is_ours(config) and "probe" not in config:
            raise CheckpointError(
                f"{path}: a vjepa2 model, not a probe (its config.json holds {sorted(config)}); "
                "give the probe/ folder that `vjepa2 probe train` writes"
            )
        if is_ours(config):
            cfg = module_config(ProbeConfig, config, "probe", path)
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
        ckpt = read_torch(path)
        if not isinstance(ckpt, dict) or "classifiers" not in ckpt:
            found = sorted(ckpt)[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
            raise CheckpointError(f"{path}: not a probe checkpoint (no 'classifiers' key; found {found})")
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
    config = read_json(config_file)
    if is_ours(config):
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
        raise UserError("transformers' classifier needs one query and the encoder's width")
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
