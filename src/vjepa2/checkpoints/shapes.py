"""Architectures read off weights, and modules built from weights with a strict check.

Reference checkpoints store tensors only: widths, depths and MLP ratios follow from the shapes,
head counts from a table of released widths (``HeadRule``). Every module is loaded strictly
(``keymaps.built_with``): a file that does not fit is an error naming the keys, never a
partial load. Modules are built on the meta device and take the file's tensors as they are.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import NamedTuple

from vjepa2.checkpoints import keymaps as km
from vjepa2.errors import UserError
from vjepa2.models.ac_predictor import ACPredictor, ACPredictorConfig
from vjepa2.models.encoder import EncoderConfig, VideoEncoder
from vjepa2.models.predictor import MaskPredictor, PredictorConfig
from vjepa2.models.presets import V21, V21_PREDICTOR, level_layers
from vjepa2.models.probe import ProbeConfig


class Modules(NamedTuple):
    """What a weights file holds: an encoder and, if it has one, a (mask or AC) predictor."""

    encoder: VideoEncoder
    predictor: MaskPredictor | ACPredictor | None = None


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
    """Infer an encoder config from our-layout weights (level norms make it V-JEPA 2.1)."""
    dim, in_chans, tubelet, patch, _ = state["patch_embed.proj.weight"].shape
    hidden = state["blocks.0.mlp.fc1.weight"].shape[0]
    depth = block_depth(state, "blocks.")
    cfg = EncoderConfig(
        dim=dim,
        depth=depth,
        heads=overrides.pop("heads", None) or ENCODER_HEADS.heads(dim, where),
        mlp_ratio=hidden / dim,
        patch=patch,
        tubelet=tubelet,
        in_chans=in_chans,
        **(v21_encoder_fields(state, depth, where) if "level_norms.0.weight" in state else {}),
    )
    return dataclasses.replace(cfg, **overrides)


def v21_encoder_fields(state: dict, depth: int, where: str) -> dict:
    """The V-JEPA 2.1 options of reference-layout weights: the depth fixes the levels (the
    released table; ``presets.level_layers`` for other depths); the tokenizers and embeddings
    are read off the keys."""
    levels, layers = block_depth(state, "level_norms."), level_layers(depth)
    if levels != len(layers):
        raise UserError(
            f"{where}: a V-JEPA 2.1 encoder with {depth} blocks has {len(layers)} levels "
            f"{list(layers)}, but the weights hold {levels} level norms"
        )
    fields = dict(V21, level_layers=layers, crop=384, frames=64)  # the release's resolution
    fields["image_tokenizer"] = "image_patch_embed.proj.weight" in state
    fields["modality_embed"] = "video_embed" in state
    return fields


def _predictor_fields(state: dict, rule: HeadRule, where: str, heads: int | None) -> dict:
    """Fields shared by both predictors, read off our-layout weights."""
    if "embed.0.weight" in state:  # 2.1 g/G: Linear -> GELU -> Linear
        dim, enc_dim = state["embed.2.weight"].shape[0], state["embed.0.weight"].shape[1]
    else:
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
    if "proj_context.weight" in state or "video_embed" in state:  # V-JEPA 2.1
        out_dim = state["proj.weight"].shape[0]
        fields |= dict(V21_PREDICTOR, out_dim=0 if out_dim == fields["enc_dim"] else out_dim)
        fields["embed_hidden"] = state["embed.0.weight"].shape[0] if "embed.0.weight" in state else 0
        fields["context_proj"] = "proj_context.weight" in state
        fields["modality_embed"] = "video_embed" in state
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


def build_encoder(
    state: dict, where: str, cfg: EncoderConfig | None = None, heads: int | None = None
) -> VideoEncoder:
    """An encoder holding ``state`` (our keys); its config is inferred unless given."""
    if "patch_embed.proj.weight" not in state:
        raise UserError(
            f"{where}: no encoder weights (expected 'patch_embed.proj.weight'), found {sorted(state)[:6]}"
        )
    cfg = cfg or encoder_config_from_state(state, where, heads=heads)
    return km.built_with(
        lambda: VideoEncoder(cfg), state, f"{where} (read as a V-JEPA {cfg.version} encoder)"
    )


def build_predictor(
    state: dict, where: str, cfg=None, heads: int | None = None
) -> MaskPredictor | ACPredictor:
    """The mask-token or (if it has an action encoder) action-conditioned predictor of ``state``."""
    if "action_encoder.weight" in state:
        cfg = cfg or ac_config_from_state(state, where, heads)
        return km.built_with(lambda: ACPredictor(cfg), state, f"{where} (read as a V-JEPA 2-AC predictor)")
    cfg = cfg or predictor_config_from_state(state, where, heads)
    return km.built_with(
        lambda: MaskPredictor(cfg), state, f"{where} (read as a V-JEPA {cfg.version} predictor)"
    )
