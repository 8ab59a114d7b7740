"""``transformers`` directories: VJEPA2Model / VJEPA2ForVideoClassification, read and written.

A directory of ``config.json`` (VJEPA2Config fields) and ``model.safetensors`` (or shards), the
keys mapped by ``keymaps.HF_ENCODER`` / ``HF_PREDICTOR``. Probes in this layout: ``probes.py``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vjepa2.checkpoints import keymaps as km
from vjepa2.checkpoints.files import atomic_save_file, read_json, read_safetensors_dir, sub_state, write_json
from vjepa2.checkpoints.shapes import Modules, build_encoder, build_predictor
from vjepa2.errors import UserError
from vjepa2.models.encoder import EncoderConfig, VideoEncoder
from vjepa2.models.model import VJEPA2
from vjepa2.models.predictor import MaskPredictor, PredictorConfig


def _with_prefix(state: dict, prefix: str) -> dict:
    """Entries whose key starts with ``prefix``, keys unchanged (the tables hold the prefix)."""
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def read_transformers(directory: str | Path) -> Modules:
    """The encoder (and predictor) of a ``transformers`` VJEPA2Model or classification directory."""
    directory = Path(directory)
    config = read_json(directory / "config.json")
    state = read_safetensors_dir(directory)
    if any(k.startswith("vjepa2.") for k in state):  # the classification model wraps the base model
        state = sub_state(state, "vjepa2.")
    patch = config.get("patch_size", 16)
    try:
        enc_cfg = EncoderConfig(
            dim=config["hidden_size"],
            depth=config["num_hidden_layers"],
            heads=config["num_attention_heads"],
            mlp_ratio=float(config.get("mlp_ratio", 4.0)),
            patch=patch if isinstance(patch, int) else patch[0],
            tubelet=config.get("tubelet_size", 2),
            in_chans=config.get("in_chans", 3),
            crop=config.get("crop_size", 256),
            frames=config.get("frames_per_clip", 64),
            eps=config.get("layer_norm_eps", 1e-6),
        )
    except KeyError as err:
        raise UserError(f"{directory}/config.json: not a V-JEPA 2 config (no {err.args[0]!r})") from None
    encoder = build_encoder(
        km.to_ours(_with_prefix(state, "encoder."), km.HF_ENCODER), str(directory), enc_cfg
    )
    predictor = None
    if any(k.startswith("predictor.") for k in state):
        pred_cfg = PredictorConfig(
            enc_dim=enc_cfg.dim,
            dim=config.get("pred_hidden_size", 384),
            depth=config.get("pred_num_hidden_layers", 12),
            heads=config.get("pred_num_attention_heads", 12),
            mlp_ratio=float(config.get("pred_mlp_ratio", 4.0)),
            num_mask_tokens=config.get("pred_num_mask_tokens", 10),
            eps=config.get("layer_norm_eps", 1e-6),
        )
        predictor = build_predictor(
            km.to_ours(_with_prefix(state, "predictor."), km.HF_PREDICTOR), str(directory), pred_cfg
        )
    return Modules(encoder, predictor)


def transformers_config(
    encoder: VideoEncoder, predictor: MaskPredictor | None, crop_size: int | None = None
) -> dict:
    """The ``transformers`` VJEPA2Config fields for our modules.

    transformers places RoPE on a crop_size // patch grid whatever the input size, so crop_size
    must be the size the exported model will be fed (default: the encoder config's crop).
    """
    e = encoder.cfg
    if e.version != "2.0":
        raise UserError(
            f"transformers has no V-JEPA {e.version} class yet (its VJEPA2Model is 2.0): "
            "convert to our format instead (--to ours), which keeps the version"
        )
    if e.rope_interleaved:
        raise UserError("transformers' VJEPA2 only implements the tiled RoPE of the released weights")
    p = predictor.cfg if predictor is not None else PredictorConfig(enc_dim=e.dim)
    return {
        "model_type": "vjepa2",
        "architectures": ["VJEPA2Model"],
        "patch_size": e.patch,
        "crop_size": crop_size or e.crop,
        "frames_per_clip": e.frames,
        "tubelet_size": e.tubelet,
        "hidden_size": e.dim,
        "in_chans": e.in_chans,
        "num_attention_heads": e.heads,
        "num_hidden_layers": e.depth,
        "mlp_ratio": e.mlp_ratio,
        "layer_norm_eps": e.eps,
        "qkv_bias": True,
        "hidden_act": "gelu",
        "pred_hidden_size": p.dim,
        "pred_num_attention_heads": p.heads,
        "pred_num_hidden_layers": p.depth,
        "pred_num_mask_tokens": p.num_mask_tokens,
        "pred_mlp_ratio": p.mlp_ratio,
        "torch_dtype": "float32",
    }


def transformers_tensors(model: VJEPA2) -> dict[str, torch.Tensor]:
    """Encoder (and predictor) weights under ``transformers.VJEPA2Model``'s names."""
    tensors = km.to_theirs(model.encoder.state_dict(), km.HF_ENCODER)
    if model.predictor is not None:
        tensors.update(km.to_theirs(model.predictor.state_dict(), km.HF_PREDICTOR))
    return tensors


def export_transformers(model: VJEPA2, out_dir: str | Path, crop_size: int | None = None) -> Path:
    """Write ``model`` so that ``transformers.VJEPA2Model.from_pretrained(out_dir)`` loads it.

    crop_size: input size the transformers model will see (its RoPE assumes it); default the
    encoder config's crop (256 for checkpoints whose crop cannot be read off the weights).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_file(transformers_tensors(model), out / "model.safetensors", {"format": "pt"})
    write_json(transformers_config(model.encoder, model.predictor, crop_size), out / "config.json")
    return out
