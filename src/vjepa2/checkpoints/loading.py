"""What a model argument names, made into a ``VJEPA2``: a checkpoint of any layout, or a random one.

``load`` tells the layouts apart: our directory (``config.json`` with ``format: vjepa2``), a
``transformers`` directory, a training checkpoint of this package (``.pt`` with ``config``) or a
reference ``.pt``. A source that is no existing path may name a released checkpoint
(``vitl``, ``vjepa2.1-vitl``, ``facebook/vjepa2-vitl-fpc64-256``: ``vjepa2 weights list``), which
is fetched into the cache and checked (``vjepa2.weights``), or be ``random:<preset>``.
``random_model`` is the one factory of randomly initialised models (the baseline every probe
table needs, and the frozen encoder of a quick world model); ``load_encoder`` takes either, as
every ``--encoder`` / ``--checkpoint`` option does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from vjepa2.checkpoints.files import read_json, read_torch
from vjepa2.checkpoints.hf import read_transformers
from vjepa2.checkpoints.ours import is_ours, read_ours
from vjepa2.checkpoints.reference import read_reference
from vjepa2.checkpoints.shapes import Modules
from vjepa2.checkpoints.training import is_training_checkpoint, read_training_modules
from vjepa2.errors import MissingPathError, UserError
from vjepa2.models.ac_predictor import ACPredictor
from vjepa2.models.auto_precision import choose
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.held import HELD_DTYPES, hold
from vjepa2.models.model import VJEPA2
from vjepa2.models.predictor import MaskPredictor
from vjepa2.models.presets import ENCODERS, PAIRED_PREDICTOR, encoder_config, paired_predictor
from vjepa2.weights.fetch import resolve
from vjepa2.weights.table import find

RANDOM_PREFIX = "random:"
MODEL_KINDS = ("encoder", "ac", "hf")  # released checkpoints ``load`` reads (probes: ``load_probe``)


def as_model(modules: Modules) -> VJEPA2:
    encoder, predictor = modules
    if isinstance(predictor, ACPredictor):
        return VJEPA2(encoder, ac_predictor=predictor)
    return VJEPA2(encoder, predictor)


def load(
    source: str | Path,
    encoder_key: str = "target_encoder",
    device: str | torch.device = "cpu",
    heads: int | None = None,
    predictor_heads: int | None = None,
    use_extrinsics: bool | None = None,
    seed: int = 0,
    dtype: str = "fp32",
) -> VJEPA2:
    """Load a model from any supported layout (see module docstring); eval mode on ``device``.

    dtype: the precision the weights are held in (``models/held.py``): fp32 (the default: the
    model can be trained further), bf16 (half the memory; no fp32 copy kept), int8 (CPU:
    quantized Linear layers) or auto (the fastest precision whose token error on this model stays
    within bound on this machine: ``models/auto_precision.py``).

    source: a path, the name of a released checkpoint (downloaded once, then read from the
    cache), or ``random:<preset>`` (a model drawn from ``seed``, as on the command line).
    heads / predictor_heads: head counts for reference ``.pt`` files, which do not store them
    (known release widths are recognised; another width warns and assumes the usual head size).
    use_extrinsics: for reference V-JEPA 2-AC files, whether the predictor was trained with a
    camera-extrinsics token per step (the files do not say; off by default, as released).
    Every other layout records these, and the arguments must then be left unset (or agree).
    """
    if str(source).startswith(RANDOM_PREFIX):
        if heads is not None or predictor_heads is not None or use_extrinsics is not None:
            raise UserError(
                f"{source}: heads= and use_extrinsics= apply to checkpoints, not to random models"
            )
        model = random_model(str(source)[len(RANDOM_PREFIX) :], seed, encoder_key)
        return held(model.to(device).eval(), dtype)
    path = resolve(source, MODEL_KINDS, "vjepa2.load")
    if not path.exists():
        raise MissingPathError(f"{path}: no such file or directory (released checkpoints go by name: vjepa2 weights list)")  # fmt: skip
    records = True  # whether the layout records head counts and the extrinsics switch
    if path.is_dir() or path.suffix == ".safetensors":
        directory = path if path.is_dir() else path.parent
        if not (directory / "config.json").is_file():
            where = "in this folder" if path.is_dir() else "beside this file"
            raise MissingPathError(f"{path}: no config.json {where}; a model folder holds config.json and "
                                   "model.safetensors (written by model.save, vjepa2 convert or transformers)")  # fmt: skip
        _no_heads_for_recorded(path, heads, predictor_heads)
        config = read_json(directory / "config.json")
        modules = read_ours(path) if is_ours(config) else read_transformers(directory)
    else:
        ckpt = read_torch(path, mapped=True)  # once, mapped: released checkpoints weigh gigabytes
        keys = set(ckpt) if isinstance(ckpt, dict) else set()
        if is_training_checkpoint(keys):
            _no_heads_for_recorded(path, heads, predictor_heads)
            modules = read_training_modules(path, encoder_key, ckpt)
        elif "classifiers" in keys:
            raise UserError(f"{path}: this is a probe checkpoint; load it with vjepa2.load_probe")
        else:
            modules = read_reference(path, encoder_key, ckpt, heads, predictor_heads)
            records = False
    if use_extrinsics is not None:
        _set_extrinsics(modules, use_extrinsics, path, records)
    return held(as_model(modules).to(device).eval(), dtype)


def held(model: VJEPA2, dtype: str, allow_int8: bool = True) -> VJEPA2:
    """``model`` held in ``dtype`` (fp32, bf16, int8, or auto: chosen for this model and machine,
    int8 considered only with ``allow_int8``); a wrong name or int8 off the CPU is a UserError."""
    if dtype not in ("auto", *HELD_DTYPES):
        raise UserError(f"dtype {dtype!r}: expected auto or one of {', '.join(HELD_DTYPES)}")
    if dtype == "auto":
        dtype = choose(model.encoder, model.device, allow_int8).dtype
    if dtype == "int8" and model.device.type != "cpu":
        raise UserError(f"dtype int8 runs on the CPU only, not on {model.device}")
    return hold(model, dtype)


def _set_extrinsics(modules: Modules, use: bool, path: Path, records: bool) -> None:
    """Turn the AC predictor's extrinsics token on or off (a config switch: the reference always
    stores the extrinsics layer, used or not)."""
    predictor = modules.predictor
    if not isinstance(predictor, ACPredictor):
        raise UserError(
            f"{path}: use_extrinsics= applies to V-JEPA 2-AC checkpoints; this one has no action-conditioned predictor"
        )
    if records and predictor.cfg.use_extrinsics != use:
        raise UserError(
            f"{path}: this layout records use_extrinsics={predictor.cfg.use_extrinsics}; "
            "use_extrinsics= applies to reference .pt files"
        )
    predictor.cfg = dataclasses.replace(predictor.cfg, use_extrinsics=use)


def _no_heads_for_recorded(path: Path, heads: int | None, predictor_heads: int | None) -> None:
    if heads is not None or predictor_heads is not None:
        raise UserError(f"{path}: this layout records its head counts; heads= applies to reference .pt files")


def random_model(
    name: str, seed: int = 0, encoder_key: str = "target_encoder", predictor: bool = True, **encoder_overrides
) -> VJEPA2:
    """A randomly initialised model drawn from ``seed``, leaving the global RNG as it was.

    name: an encoder preset (with its paired predictor preset), a checkpoint whose shapes are
    copied, or a released checkpoint's name (its architecture's preset: nothing is downloaded).
    encoder_overrides: EncoderConfig fields to change. predictor=False: the encoder alone (its
    weights are the same either way: it is drawn first).
    """
    entry = None if Path(name).exists() or name in ENCODERS else find(name)
    if entry is not None and entry.preset:  # a released model's architecture: nothing to download
        name = entry.preset
    if Path(name).exists() or (entry is not None and not entry.preset):
        shape = load(name, encoder_key=encoder_key)
        enc_cfg, pred_cfg = shape.encoder.cfg, shape.predictor.cfg if shape.predictor else None
        try:
            enc_cfg = dataclasses.replace(enc_cfg, **encoder_overrides)
        except TypeError as err:  # an unknown field
            raise UserError(f"encoder overrides {encoder_overrides}: {err}") from None
        if pred_cfg is not None and enc_cfg.dim != shape.encoder.cfg.dim:
            raise UserError(f"random:{name}: a new width would not fit the checkpoint's predictor")
    elif name not in ENCODERS and ("/" in name or Path(name).suffix):  # "tiny-2.1" is a preset
        raise MissingPathError(f"{name}: no such checkpoint (random:<name> takes a preset or a checkpoint)")
    else:
        try:
            enc_cfg = encoder_config(name, **encoder_overrides)
        except TypeError as err:  # an unknown field
            raise UserError(f"encoder overrides {encoder_overrides}: {err}") from None
        # the predictor paired with the preset (anticipation needs one), fitted to its width
        pred_cfg = paired_predictor(enc_cfg, PAIRED_PREDICTOR.get(name, "default"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = VideoEncoder(enc_cfg)
        return VJEPA2(encoder, MaskPredictor(pred_cfg) if predictor and pred_cfg else None)


def load_encoder(
    source: str,
    device: str = "cpu",
    seed: int = 0,
    encoder_key: str = "target_encoder",
    dtype: str = "fp32",
    **random_options,
) -> VJEPA2:
    """A frozen model (eval mode, no grad) from ``source``.

    ``random:<preset>`` (e.g. ``random:tiny``) is ``random_model(<preset>, seed)``, and
    ``random:<checkpoint>`` one of the checkpoint's shape (the baseline a pretrained model must
    beat); random_options go to ``random_model``. Anything else is passed to ``load``
    (reference .pt, transformers directory, our directory, training checkpoint). dtype: as
    ``load``'s (the weights are held in it).
    """
    if source.startswith(RANDOM_PREFIX):
        model = random_model(source[len(RANDOM_PREFIX) :], seed, encoder_key, **random_options)
        model = held(model.to(device).eval(), dtype)
    else:
        model = load(source, encoder_key=encoder_key, device=device, dtype=dtype)
    return model.requires_grad_(False)
