"""Our own format: a directory of ``model.safetensors`` (``encoder.*``, ``predictor.*`` or
``ac_predictor.*``) and ``config.json`` (``format: vjepa2`` and each module's config).

``VJEPA2.save`` writes it: this module gives the class ``save_model`` as its writer (the models
import nothing above them), and ``vjepa2.checkpoints`` imports this module whenever it loads.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

from vjepa2.checkpoints.files import atomic_save_file, read_json, read_safetensors, sub_state, write_json
from vjepa2.checkpoints.shapes import Modules, build_encoder, build_predictor
from vjepa2.errors import UserError
from vjepa2.models.ac_predictor import ACPredictorConfig
from vjepa2.models.encoder import EncoderConfig
from vjepa2.models.model import VJEPA2
from vjepa2.models.predictor import PredictorConfig

FORMAT = "vjepa2"
PREDICTORS = {"predictor": PredictorConfig, "ac_predictor": ACPredictorConfig}


def is_ours(config: dict) -> bool:
    return config.get("format") == FORMAT


def read_ours(path: str | Path) -> Modules:
    """The modules of one of our model directories (or of its ``model.safetensors``)."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    config = read_json(directory / "config.json")
    if not is_ours(config) or "encoder" not in config:
        raise UserError(
            f"{directory}/config.json: not a vjepa2 model config (format={config.get('format')!r})"
        )
    state = read_safetensors(path if path.is_file() else directory / "model.safetensors")
    encoder_state = sub_state(state, "encoder.")
    encoder = build_encoder(
        encoder_state, str(directory), module_config(EncoderConfig, config, "encoder", directory)
    )
    predictor = None
    for key, cls in PREDICTORS.items():
        if config.get(key):
            where = f"{directory} [{key}]"
            predictor = build_predictor(
                sub_state(state, key + "."), where, module_config(cls, config, key, directory)
            )
    return Modules(encoder, predictor)


# Sizes a module cannot be built with at 0 (a config.json edited by hand, or from elsewhere).
POSITIVE = {"dim", "depth", "heads", "patch", "tubelet", "in_chans", "enc_dim", "crop", "frames", "mlp_ratio"}


def module_config(cls, config: dict, key: str, directory: Path):
    """``cls(**config[key])`` with every value of its field's type and every size positive, or an
    error naming the file, the module and the key."""
    where = f"{directory}/config.json [{key}]"
    try:
        made = cls(**config[key])
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}: {err}") from None
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        value, kind = getattr(made, f.name), hints[f.name]
        wrong = _wrong_type(value, kind)
        if wrong or (f.name in POSITIVE and not value > 0):
            want = wrong or "a positive number"
            raise UserError(f"{where}: {f.name} must be {want}, got {value!r}")
    return made


def _wrong_type(value, kind) -> str:
    """'' when ``value`` is of the annotated ``kind`` (int, float, bool, str, list, optional)."""
    args = typing.get_args(kind)
    if value is None:
        return "" if type(None) in args else "given"
    kind = next((a for a in args if a is not type(None)), kind) if args and type(None) in args else kind
    base = typing.get_origin(kind) or kind
    if base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base in (bool, str, list, tuple, dict):
        ok = isinstance(value, base)
    else:
        ok = True
    return "" if ok else f"{'a finite number' if base is float else getattr(base, '__name__', base)}"


def save_model(model: VJEPA2, path: str | Path) -> None:
    """Write a ``VJEPA2`` (its encoder and predictor, if any) in our format to the folder ``path``."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "version": 1, "encoder": dataclasses.asdict(model.encoder.cfg)}
    tensors = {f"encoder.{k}": v for k, v in model.encoder.state_dict().items()}
    for name in PREDICTORS:
        module = getattr(model, name)
        config[name] = dataclasses.asdict(module.cfg) if module is not None else None
        if module is not None:
            tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    atomic_save_file(tensors, directory / "model.safetensors", {"format": FORMAT})
    write_json(config, directory / "config.json")


VJEPA2.writer = save_model  # model.save(path), the README's way to write a model
