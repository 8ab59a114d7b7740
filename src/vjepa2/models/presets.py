"""Named model sizes, as timm's registry: ``encoder_config("vitl")``.

The released sizes follow the paper; ``tiny`` and ``small`` are for CPU work and keep the
released head dim (64) so their RoPE splits the head the same way. ``*-2.1`` are V-JEPA 2.1
(the 384 px release: ViT-B and ViT-L distilled from ViT-G, ViT-g, ViT-G; ``tiny-2.1`` for CPU).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vjepa2.errors import UnknownKeyError
from vjepa2.models.ac_predictor import ACPredictorConfig
from vjepa2.models.encoder import EncoderConfig
from vjepa2.models.predictor import PredictorConfig

# Options that make an encoder V-JEPA 2.1 (see models/encoder.py)
V21: dict[str, Any] = dict(
    version="2.1", rope_interleaved=True, rope_rescale=16, image_tokenizer=True, modality_embed=True
)
# The released depths' levels (the reference builds only these); G's third level is block 37.
RELEASED_LEVELS = {12: (2, 5, 8, 11), 24: (5, 11, 17, 23), 40: (9, 19, 29, 39), 48: (11, 23, 37, 47)}


def level_layers(depth: int) -> tuple[int, ...]:
    """The 2.1 levels of an encoder ``depth`` blocks deep: the released table, else the last
    block of each quarter (fewer levels below depth 4)."""
    if depth in RELEASED_LEVELS:
        return RELEASED_LEVELS[depth]
    return tuple(sorted({max(0, round(depth * k / 4) - 1) for k in range(1, 5)}))


ENCODERS: dict[str, EncoderConfig] = {
    # name         width  depth heads  mlp ratio
    "tiny": EncoderConfig(dim=192, depth=6, heads=3, mlp_ratio=4.0, crop=64, frames=16),
    "small": EncoderConfig(dim=384, depth=12, heads=6, mlp_ratio=4.0, crop=128, frames=16),
    "vitl": EncoderConfig(dim=1024, depth=24, heads=16, mlp_ratio=4.0, crop=256, frames=64),
    "vith": EncoderConfig(dim=1280, depth=32, heads=16, mlp_ratio=4.0, crop=256, frames=64),
    "vitg": EncoderConfig(dim=1408, depth=40, heads=22, mlp_ratio=48 / 11, crop=256, frames=64),
    "vitg-384": EncoderConfig(dim=1408, depth=40, heads=22, mlp_ratio=48 / 11, crop=384, frames=64),
    # V-JEPA 2.1
    "tiny-2.1": EncoderConfig(dim=192, depth=8, heads=3, mlp_ratio=4.0, crop=64, frames=16, level_layers=level_layers(8), **V21),
    "vitb-2.1": EncoderConfig(dim=768, depth=12, heads=12, mlp_ratio=4.0, crop=384, frames=64, level_layers=level_layers(12), **V21),
    "vitl-2.1": EncoderConfig(dim=1024, depth=24, heads=16, mlp_ratio=4.0, crop=384, frames=64, level_layers=level_layers(24), **V21),
    "vitg-2.1": EncoderConfig(dim=1408, depth=40, heads=22, mlp_ratio=48 / 11, crop=384, frames=64, level_layers=level_layers(40), **V21),
    "vitG-2.1": EncoderConfig(dim=1664, depth=48, heads=26, mlp_ratio=64 / 13, crop=384, frames=64, level_layers=level_layers(48), **V21),
}  # fmt: skip

# The predictor options of V-JEPA 2.1 (interleaved RoPE without rescaling, context projection)
V21_PREDICTOR: dict[str, Any] = dict(
    version="2.1", rope_interleaved=True, context_proj=True, modality_embed=True
)

PREDICTORS: dict[str, PredictorConfig] = {
    "default": PredictorConfig(dim=384, depth=12, heads=12, mlp_ratio=4.0, num_mask_tokens=10),
    "tiny": PredictorConfig(dim=96, depth=4, heads=3, mlp_ratio=4.0, num_mask_tokens=10),
    "small": PredictorConfig(dim=192, depth=6, heads=6, mlp_ratio=4.0, num_mask_tokens=10),
    # V-JEPA 2.1: g/G read and predict the 4 levels; the distilled B/L the teacher's (ViT-G) width
    "2.1": PredictorConfig(dim=384, depth=24, heads=12, mlp_ratio=4.0, num_mask_tokens=8, **V21_PREDICTOR),
    "2.1-distilled": PredictorConfig(dim=384, depth=12, heads=12, mlp_ratio=4.0, num_mask_tokens=8, out_dim=1664, **V21_PREDICTOR),
    "tiny-2.1": PredictorConfig(dim=96, depth=4, heads=3, mlp_ratio=4.0, num_mask_tokens=8, **V21_PREDICTOR),
}  # fmt: skip
# Predictors that read the encoder's multi-level output (and predict it)
LEVEL_PREDICTORS = ("2.1", "tiny-2.1")
# The predictor each encoder preset is released (or used here) with
PAIRED_PREDICTOR = {"tiny": "tiny", "small": "small", "tiny-2.1": "tiny-2.1", "vitb-2.1": "2.1-distilled",
                    "vitl-2.1": "2.1-distilled", "vitg-2.1": "2.1", "vitG-2.1": "2.1"}  # fmt: skip

AC_PREDICTORS: dict[str, ACPredictorConfig] = {
    # V-JEPA 2-AC as released (head size 64, unlike the mask predictor's 32)
    "vjepa2-ac": ACPredictorConfig(dim=1024, depth=24, heads=16, mlp_ratio=4.0),
    # configs/ac/reach.yaml: the built-in reach world's model
    "reach": ACPredictorConfig(dim=128, depth=3, heads=4, mlp_ratio=4.0),
}


def encoder_config(name: str, **overrides) -> EncoderConfig:
    """Encoder preset ``name`` with ``overrides``; a 2.1 encoder made shallower gets its levels anew."""
    if name not in ENCODERS:
        raise UnknownKeyError(f"unknown encoder preset {name!r}; known presets: {sorted(ENCODERS)}")
    base = ENCODERS[name]
    if base.level_layers and "depth" in overrides and "level_layers" not in overrides:
        overrides["level_layers"] = level_layers(overrides["depth"])
    return replace(base, **overrides)


def predictor_config(enc_dim: int, name: str = "default", levels: int = 1, **overrides) -> PredictorConfig:
    """Predictor preset ``name`` for an encoder ``enc_dim`` wide; a level predictor (2.1 g/G) reads
    and predicts ``levels`` concatenated levels, through an MLP embedding ``enc_dim`` wide."""
    if name not in PREDICTORS:
        raise UnknownKeyError(f"unknown predictor preset {name!r}; known presets: {sorted(PREDICTORS)}")
    fields: dict[str, Any] = {"enc_dim": enc_dim}
    if name in LEVEL_PREDICTORS:
        fields = {"enc_dim": levels * enc_dim, "embed_hidden": enc_dim}  # predicts as wide as it reads
    return replace(PREDICTORS[name], **(fields | overrides))


def paired_predictor(encoder: EncoderConfig, name: str | None = None, **overrides) -> PredictorConfig:
    """The predictor (preset ``name``, default: the one paired with the encoder's preset) fitted to
    ``encoder``: its width, and for a level predictor its number of levels."""
    levels = max(1, len(encoder.level_layers))
    return predictor_config(encoder.dim, name or "default", levels=levels, **overrides)


def ac_predictor_config(enc_dim: int, name: str = "vjepa2-ac", **overrides) -> ACPredictorConfig:
    if name not in AC_PREDICTORS:
        raise UnknownKeyError(f"unknown AC predictor preset {name!r}; known presets: {sorted(AC_PREDICTORS)}")
    return replace(AC_PREDICTORS[name], enc_dim=enc_dim, **overrides)
