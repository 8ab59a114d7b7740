"""Reading and writing every checkpoint layout; the key maps themselves are in ``keymaps.py``.

Layouts: reference ``.pt`` dicts (encoder / target_encoder / predictor, possibly action-conditioned),
``transformers`` directories (VJEPA2Model), training checkpoints of this package, and our own format
(a directory with ``model.safetensors`` + ``config.json``). Architectures are inferred from the
weights (or read from the config), so no preset is needed. Probes: ``probe_weights.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vjepa2.models import keymaps as km
from vjepa2.models.ac_predictor import ACPredictor, ACPredictorConfig
from vjepa2.models.encoder import EncoderConfig, VideoEncoder
from vjepa2.models.model import VJEPA2
from vjepa2.models.predictor import MaskPredictor, PredictorConfig

FORMAT = "vjepa2"


@dataclasses.dataclass(frozen=True)
class HeadRule:
    """Head counts of one kind of module: reference checkpoints do not store them and weight shapes
    cannot tell 4 heads of 64 from 8 of 32, so known widths come from a table and any other width
    gets the kind's usual head size (with a warning). A wrong count loads without error and
    computes another model, as the AC predictor did when every predictor assumed head size 32."""

    what: str
    known: dict[int, int]
    head_dim: int
    argument: str  # the vjepa2.load argument that sets it

    def heads(self, dim: int, where: str = "") -> int:
        if dim in self.known:
            return self.known[dim]
        heads = max(1, dim // self.head_dim)
        warnings.warn(
            f"{where or 'checkpoint'}: {self.what} width {dim} is not a known release width and the "
            f"file does not store its head count; assuming {heads} heads (head size {dim // heads}). "
            f"If the model was trained with another, pass {self.argument}= to vjepa2.load.",
            stacklevel=2,
        )
        return heads


# width -> heads
ENCODER_HEADS = HeadRule(
    "encoder", {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 22, 1664: 26}, 64, "heads"
)
PREDICTOR_HEADS = HeadRule("predictor", {96: 3, 192: 6, 384: 12}, 32, "predictor_heads")
# 1024: the released V-JEPA 2-AC (head size 64); 128: this package's reach world model.
AC_PREDICTOR_HEADS = HeadRule("action-conditioned predictor", {128: 4, 1024: 16}, 64, "predictor_heads")


def block_depth(state: dict, prefix: str) -> int:
    ids = {int(k[len(prefix) :].split(".")[0]) for k in state if k.startswith(prefix)}
    return max(ids) + 1 if ids else 0


def encoder_config_from_state(state: dict, where: str = "", **overrides) -> EncoderConfig:
    """Infer an encoder config from our-layout weights."""
    dim, in_chans, tubelet, patch, _ = state["patch_embed.proj.weight"].shape
    hidden = state["blocks.0.mlp.fc1.weight"].shape[0]
    cfg = EncoderConfig(
        dim=dim,
        depth=block_depth(state, "blocks."),
        heads=overrides.pop("heads", None) or ENCODER_HEADS.heads(dim, where),
        mlp_ratio=hidden / dim,
        patch=patch,
        tubelet=tubelet,
        in_chans=in_chans,
    )
    return dataclasses.replace(cfg, **overrides)


def _predictor_fields(state: dict, rule: HeadRule, where: str, heads: int | None) -> dict:
    """Fields shared by both predictors, read off our-layout weights."""
    dim, enc_dim = state["embed.weight"].shape
    return dict(
        enc_dim=enc_dim,
        dim=dim,
        depth=block_depth(state, "blocks."),
        heads=heads or rule.heads(dim, where),
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / dim,
    )


def predictor_config_from_state(
    state: dict, where: str = "", heads: int | None = None, **overrides
) -> PredictorConfig:
    fields = _predictor_fields(state, PREDICTOR_HEADS, where, heads)
    fields["num_mask_tokens"] = state["mask_tokens"].shape[0]
    return PredictorConfig(**(fields | overrides))


def ac_config_from_state(
    state: dict, where: str = "", heads: int | None = None, **overrides
) -> ACPredictorConfig:
    fields = _predictor_fields(state, AC_PREDICTOR_HEADS, where, heads) | {
        "action_dim": state["action_encoder.weight"].shape[1],
        "state_dim": state["state_encoder.weight"].shape[1],
        "extrinsics_dim": state["extrinsics_encoder.weight"].shape[1],
    }
    return ACPredictorConfig(**(fields | overrides))


def _build_encoder(
    state: dict, where: str, cfg: EncoderConfig | None = None, heads: int | None = None
) -> VideoEncoder:
    if "patch_embed.proj.weight" not in state:
        raise ValueError(
            f"{where}: no encoder weights (expected 'patch_embed.proj.weight'), found {_few(state)}"
        )
    encoder = VideoEncoder(cfg or encoder_config_from_state(state, where, heads=heads))
    km.load_checked(encoder, state, where)
    return encoder


def _build_predictor(
    state: dict, where: str, cfg=None, heads: int | None = None
) -> MaskPredictor | ACPredictor:
    if "action_encoder.weight" in state:
        predictor = ACPredictor(cfg or ac_config_from_state(state, where, heads))
    else:
        predictor = MaskPredictor(cfg or predictor_config_from_state(state, where, heads))
    km.load_checked(predictor, state, where)
    return predictor


def _few(state: dict) -> list[str]:
    return sorted(state)[:6]


def _as_model(encoder, predictor) -> VJEPA2:
    if isinstance(predictor, ACPredictor):
        return VJEPA2(encoder, ac_predictor=predictor)
    return VJEPA2(encoder, predictor)


# -- reading --------------------------------------------------------------------------------------
def torch_load(path: str | Path) -> dict:
    """``torch.load`` restricted to tensors and plain containers (no arbitrary unpickling)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"{path}: cannot be read as a weights-only PyTorch checkpoint ({err})") from None


def load_reference(
    path: str | Path,
    encoder_key: str = "target_encoder",
    ckpt: dict | None = None,
    heads: int | None = None,
    predictor_heads: int | None = None,
) -> VJEPA2:
    """A reference pretraining (or V-JEPA 2-AC) checkpoint ``.pt``.

    heads / predictor_heads: head counts of the encoder / predictor, which these files do not
    store; by default the released widths' counts (see ``HeadRule``)."""
    ckpt = torch_load(path) if ckpt is None else ckpt  # ``load`` passes what it already read
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: expected a dict checkpoint, found {type(ckpt).__name__}")
    key = encoder_key if encoder_key in ckpt else "encoder"
    if key not in ckpt:
        keys = [k for k in ckpt if isinstance(ckpt[k], dict)]
        raise ValueError(f"{path}: no encoder state {encoder_key!r} (or 'encoder'); the dict holds {keys}")
    encoder_state = km.to_ours(km.strip_prefixes(ckpt[key]), km.REFERENCE_ENCODER, km.REFERENCE_UNUSED)
    encoder = _build_encoder(encoder_state, f"{path} [{key}]", heads=heads)
    predictor = None
    if isinstance(ckpt.get("predictor"), dict):
        state = km.to_ours(km.strip_prefixes(ckpt["predictor"]), km.REFERENCE_PREDICTOR, km.REFERENCE_UNUSED)
        predictor = _build_predictor(state, f"{path} [predictor]", heads=predictor_heads)
    return _as_model(encoder, predictor)


def load_training_checkpoint(
    path: str | Path, encoder_key: str = "target_encoder", ckpt: dict | None = None
) -> VJEPA2:
    """A checkpoint written by ``vjepa2 pretrain`` / ``train-ac`` (our key names plus 'config')."""
    ckpt = torch_load(path) if ckpt is None else ckpt  # ``load`` passes what it already read
    config = ckpt["config"]
    encoder = _build_encoder(
        km.strip_prefixes(ckpt[encoder_key if encoder_key in ckpt else "encoder"]),
        f"{path} [{encoder_key}]",
        EncoderConfig(**config["encoder"]),
    )
    predictor = None
    if ckpt.get("predictor") is not None and config.get("predictor"):
        state = km.strip_prefixes(ckpt["predictor"])
        cls = ACPredictorConfig if "action_encoder.weight" in state else PredictorConfig
        predictor = _build_predictor(state, f"{path} [predictor]", cls(**config["predictor"]))
    return _as_model(encoder, predictor)


def read_safetensors_dir(directory: Path) -> dict[str, torch.Tensor]:
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        state = {}
        for shard in shards:
            state.update(load_file(directory / shard))
        return state
    file = directory / "model.safetensors"
    if not file.is_file():
        raise FileNotFoundError(f"{directory}: no model.safetensors (or sharded index) in this directory")
    return load_file(file)


def sub_state(state: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def load_transformers(directory: str | Path) -> VJEPA2:
    """A ``transformers`` VJEPA2Model or VJEPA2ForVideoClassification directory."""
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    state = read_safetensors_dir(directory)
    if any(k.startswith("vjepa2.") for k in state):  # the classification model wraps the base model
        state = sub_state(state, "vjepa2.")
    patch = config.get("patch_size", 16)
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
    encoder_state = km.to_ours(_sub_keys(state, "encoder."), km.HF_ENCODER)
    encoder = _build_encoder(encoder_state, str(directory), enc_cfg)
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
        predictor = _build_predictor(
            km.to_ours(_sub_keys(state, "predictor."), km.HF_PREDICTOR), str(directory), pred_cfg
        )
    return VJEPA2(encoder, predictor)


def _sub_keys(state: dict, prefix: str) -> dict:
    """Entries whose key starts with ``prefix``, keys unchanged (the tables hold the prefix)."""
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def load_ours(path: str | Path) -> VJEPA2:
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    config = json.loads((directory / "config.json").read_text())
    if config.get("format") != FORMAT or "encoder" not in config:
        raise ValueError(
            f"{directory}/config.json: not a vjepa2 model config (format={config.get('format')!r})"
        )
    state = load_file(directory / "model.safetensors")
    encoder = _build_encoder(sub_state(state, "encoder."), str(directory), EncoderConfig(**config["encoder"]))
    predictor = None
    for key, cls in (("predictor", PredictorConfig), ("ac_predictor", ACPredictorConfig)):
        if config.get(key):
            predictor = _build_predictor(
                sub_state(state, key + "."), f"{directory} [{key}]", cls(**config[key])
            )
    return _as_model(encoder, predictor)


def load(
    source: str | Path,
    encoder_key: str = "target_encoder",
    device: str | torch.device = "cpu",
    heads: int | None = None,
    predictor_heads: int | None = None,
) -> VJEPA2:
    """Load a model from any supported layout (see module docstring); eval mode on ``device``.

    heads / predictor_heads: head counts for reference ``.pt`` files, which do not store them
    (known release widths are recognised; another width warns and assumes the usual head size).
    Every other layout records its head counts, and these arguments must then be left unset.
    """
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory (weights cannot be downloaded here)")
    if path.is_dir() or path.suffix == ".safetensors":
        directory = path if path.is_dir() else path.parent
        config_file = directory / "config.json"
        if not config_file.is_file():
            raise ValueError(f"{directory}: a model directory needs a config.json")
        config = json.loads(config_file.read_text())
        _no_heads_for_recorded(path, heads, predictor_heads)
        model = load_ours(path) if config.get("format") == FORMAT else load_transformers(directory)
    else:
        ckpt = torch_load(path)  # read once: released checkpoints weigh gigabytes
        keys = set(ckpt) if isinstance(ckpt, dict) else set()
        if "config" in keys and ("encoder" in keys or "target_encoder" in keys):
            _no_heads_for_recorded(path, heads, predictor_heads)
            model = load_training_checkpoint(path, encoder_key, ckpt)
        elif "classifiers" in keys:
            raise ValueError(f"{path}: this is a probe checkpoint; load it with vjepa2.load_probe")
        else:
            model = load_reference(path, encoder_key, ckpt, heads, predictor_heads)
    return model.to(device).eval()


def _no_heads_for_recorded(path: Path, heads: int | None, predictor_heads: int | None) -> None:
    if heads is not None or predictor_heads is not None:
        raise ValueError(
            f"{path}: this layout records its head counts; heads= applies to reference .pt files"
        )


# -- writing --------------------------------------------------------------------------------------
def atomic_save_file(tensors: dict, file: Path, metadata: dict | None = None) -> None:
    tmp = file.with_suffix(file.suffix + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
    os.replace(tmp, file)


def write_json(data: dict, file: Path) -> None:
    tmp = file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, file)


def save_model(model: VJEPA2, path: str | Path) -> None:
    """Our format: ``path/model.safetensors`` (encoder.*, predictor.* / ac_predictor.*) + config.json."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "version": 1, "encoder": dataclasses.asdict(model.encoder.cfg)}
    tensors = {f"encoder.{k}": v for k, v in model.encoder.state_dict().items()}
    for name in ("predictor", "ac_predictor"):
        module = getattr(model, name)
        config[name] = dataclasses.asdict(module.cfg) if module is not None else None
        if module is not None:
            tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    atomic_save_file(tensors, directory / "model.safetensors", {"format": FORMAT})
    write_json(config, directory / "config.json")


def transformers_config(
    encoder: VideoEncoder, predictor: MaskPredictor | None, crop_size: int | None = None
) -> dict:
    """The ``transformers`` VJEPA2Config fields for our modules.

    transformers places RoPE on a crop_size // patch grid whatever the input size, so crop_size
    must be the size the exported model will be fed (default: the encoder config's crop).
    """
    e = encoder.cfg
    if e.rope_interleaved:
        raise ValueError("transformers' VJEPA2 only implements the tiled RoPE of the released weights")
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


def transformers_tensors(model: VJEPA2) -> dict[str, torch.Tensor]:
    """Encoder (and predictor) weights under ``transformers.VJEPA2Model``'s names."""
    tensors = km.to_theirs(model.encoder.state_dict(), km.HF_ENCODER)
    if model.predictor is not None:
        tensors.update(km.to_theirs(model.predictor.state_dict(), km.HF_PREDICTOR))
    return tensors
