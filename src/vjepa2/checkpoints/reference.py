"""Reference checkpoints (facebookresearch/vjepa2 ``.pt``): V-JEPA 2.0, 2-AC and 2.1.

A dict of state dicts under ``encoder`` / ``target_encoder`` (2.1 B/L: ``ema_encoder``) /
``predictor``, keys prefixed by ``module.`` and ``backbone.``; the predictor is
action-conditioned when it has an action encoder; level norms (``norms_block``) make a 2.1
encoder. No architecture is stored: it is read off the weights (``shapes``).
"""

from __future__ import annotations

from pathlib import Path

from vjepa2.checkpoints import keymaps as km
from vjepa2.checkpoints.files import CheckpointError, read_torch
from vjepa2.checkpoints.shapes import Modules, build_encoder, build_predictor

EMA_KEYS = ("target_encoder", "ema_encoder")


def read_reference(
    path: str | Path,
    encoder_key: str = "target_encoder",
    ckpt: dict | None = None,
    heads: int | None = None,
    predictor_heads: int | None = None,
) -> Modules:
    """The encoder ``encoder_key`` (else the EMA encoder, else ``encoder``) and the predictor of a
    reference ``.pt`` (V-JEPA 2.0, 2-AC or 2.1: the weights tell).

    ckpt: the file's content when the caller has read it already (released files weigh
    gigabytes). heads / predictor_heads: head counts, which these files do not store; by default
    the released widths' counts (see ``shapes.HeadRule``)."""
    ckpt = read_torch(path) if ckpt is None else ckpt
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, found {type(ckpt).__name__}")
    # The EMA encoder is what the hub reads: ``target_encoder`` (2.0, 2.1 g/G) or ``ema_encoder``
    # (the distilled 2.1 B/L); ``encoder`` is the online one.
    wanted = list(dict.fromkeys([encoder_key, *EMA_KEYS, "encoder"]))
    key = next((k for k in wanted if isinstance(ckpt.get(k), dict)), None)
    if key is None:
        keys = [k for k in ckpt if isinstance(ckpt[k], dict)]
        raise CheckpointError(f"{path}: no encoder state (tried {wanted}); the dict holds {keys}")
    encoder_state = km.to_ours(km.strip_prefixes(ckpt[key]), km.REFERENCE_ENCODER, km.REFERENCE_UNUSED)
    encoder = build_encoder(encoder_state, f"{path} [{key}]", heads=heads)
    predictor = None
    if isinstance(ckpt.get("predictor"), dict):
        state = km.to_ours(km.strip_prefixes(ckpt["predictor"]), km.REFERENCE_PREDICTOR, km.REFERENCE_UNUSED)
        predictor = build_predictor(state, f"{path} [predictor]", heads=predictor_heads)
    return Modules(encoder, predictor)
