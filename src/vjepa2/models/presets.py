"""Named model sizes, as timm's registry: ``encoder_config("vitl")``.

The released sizes follow the paper; ``tiny`` and ``small`` are for CPU work and keep the
released head dim (64) so their RoPE splits the head the same way.
"""

from __future__ import annotations

from dataclasses import replace

from vjepa2.errors import UnknownKeyError
from vjepa2.models.ac_predictor import ACPredictorConfig
from vjepa2.models.encoder import EncoderConfig
from vjepa2.models.predictor import PredictorConfig

ENCODERS: dict[str, EncoderConfig] = {
    # name         width  depth heads  mlp ratio
    "tiny": EncoderConfig(dim=192, depth=6, heads=3, mlp_ratio=4.0, crop=64, frames=16),
    "small": EncoderConfig(dim=384, depth=12, heads=6, mlp_ratio=4.0, crop=128, frames=16),
    "vitl": EncoderConfig(dim=1024, depth=24, heads=16, mlp_ratio=4.0, crop=256, frames=64),
    "vith": EncoderConfig(dim=1280, depth=32, heads=16, mlp_ratio=4.0, crop=256, frames=64),
    "vitg": EncoderConfig(dim=1408, depth=40, heads=22, mlp_ratio=48 / 11, crop=256, frames=64),
    "vitg-384": EncoderConfig(dim=1408, depth=40, heads=22, mlp_ratio=48 / 11, crop=384, frames=64),
}

PREDICTORS: dict[str, PredictorConfig] = {
    "default": PredictorConfig(dim=384, depth=12, heads=12, mlp_ratio=4.0, num_mask_tokens=10),
    "tiny": PredictorConfig(dim=96, depth=4, heads=3, mlp_ratio=4.0, num_mask_tokens=10),
    "small": PredictorConfig(dim=192, depth=6, heads=6, mlp_ratio=4.0, num_mask_tokens=10),
}

AC_PREDICTORS: dict[str, ACPredictorConfig] = {
    # V-JEPA 2-AC as released (head size 64, unlike the mask predictor's 32)
    "vjepa2-ac": ACPredictorConfig(dim=1024, depth=24, heads=16, mlp_ratio=4.0),
    # configs/ac/reach.yaml: the built-in reach world's model
    "reach": ACPredictorConfig(dim=128, depth=3, heads=4, mlp_ratio=4.0),
}


def encoder_config(name: str, **overrides) -> EncoderConfig:
    if name not in ENCODERS:
        raise UnknownKeyError(f"unknown encoder preset {name!r}; known presets: {sorted(ENCODERS)}")
    return replace(ENCODERS[name], **overrides)


def predictor_config(enc_dim: int, name: str = "default", **overrides) -> PredictorConfig:
    if name not in PREDICTORS:
        raise UnknownKeyError(f"unknown predictor preset {name!r}; known presets: {sorted(PREDICTORS)}")
    return replace(PREDICTORS[name], enc_dim=enc_dim, **overrides)


def ac_predictor_config(enc_dim: int, name: str = "vjepa2-ac", **overrides) -> ACPredictorConfig:
    if name not in AC_PREDICTORS:
        raise UnknownKeyError(f"unknown AC predictor preset {name!r}; known presets: {sorted(AC_PREDICTORS)}")
    return replace(AC_PREDICTORS[name], enc_dim=enc_dim, **overrides)
