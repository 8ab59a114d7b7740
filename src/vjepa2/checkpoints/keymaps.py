"""Key maps between our module names and other checkpoint layouts, as tables.

A row is (ours, theirs): module paths, ``{i}`` for a block number; the rest of a key (``.weight``,
``.bias``) carries over. ``{a|b|c}`` in a path means their layout splits our fused tensor into
parts along dim 0 (qkv -> query, key, value); ``{k}`` means they keep one tensor per index
that we stack along dim 0 (mask tokens). Rows are tried in order; the first match wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import torch

from vjepa2.errors import UserError

M = TypeVar("M", bound=torch.nn.Module)

Table = list[tuple[str, str]]

# -- reference (facebookresearch/vjepa2) layouts, after stripping "module." / "backbone." --------
REFERENCE_ENCODER: Table = [
    # ours                     reference
    ("patch_embed.proj",        "patch_embed.proj"),
    ("blocks.{i}",              "blocks.{i}"),
    ("norm",                    "norm"),
    # V-JEPA 2.1 (app/vjepa_2_1)
    ("image_patch_embed.proj",  "patch_embed_img.proj"),
    ("image_embed",             "img_mod_embed"),
    ("video_embed",             "video_mod_embed"),
    ("level_norms.{i}",         "norms_block.{i}"),
]  # fmt: skip

REFERENCE_PREDICTOR: Table = [  # mask-token and action-conditioned predictors
    # ours                     reference
    ("embed",                   "predictor_embed"),
    ("mask_tokens",             "mask_tokens.{k}"),
    ("action_encoder",          "action_encoder"),
    ("state_encoder",           "state_encoder"),
    ("extrinsics_encoder",      "extrinsics_encoder"),
    ("blocks.{i}",              "predictor_blocks.{i}"),
    ("norm",                    "predictor_norm"),
    ("proj",                    "predictor_proj"),
    # V-JEPA 2.1 (app/vjepa_2_1); embed may be a Sequential: embed.0, embed.2 as theirs
    ("proj_context",            "predictor_proj_context"),
    ("image_embed",             "img_mod_embed"),
    ("video_embed",             "video_mod_embed"),
]  # fmt: skip

REFERENCE_PROBE: Table = [
    # ours                     reference
    ("pooler",                  "pooler"),
    ("linear",                  "linear"),
]  # fmt: skip

# Keys the reference stores but never uses (RoPE models keep a stale sin-cos table).
REFERENCE_UNUSED = ("pos_embed", "predictor_pos_embed")

# -- transformers (VJEPA2Model / VJEPA2ForVideoClassification) layouts ----------------------------
HF_ENCODER: Table = [
    # ours                     transformers
    ("patch_embed.proj",        "encoder.embeddings.patch_embeddings.proj"),
    ("blocks.{i}.norm1",        "encoder.layer.{i}.norm1"),
    ("blocks.{i}.attn.qkv",     "encoder.layer.{i}.attention.{query|key|value}"),
    ("blocks.{i}.attn.proj",    "encoder.layer.{i}.attention.proj"),
    ("blocks.{i}.norm2",        "encoder.layer.{i}.norm2"),
    ("blocks.{i}.mlp",          "encoder.layer.{i}.mlp"),
    ("norm",                    "encoder.layernorm"),
]  # fmt: skip

HF_PREDICTOR: Table = [
    # ours                     transformers
    ("embed",                   "predictor.embeddings.predictor_embeddings"),
    ("mask_tokens",             "predictor.embeddings.mask_tokens"),
    ("blocks.{i}.norm1",        "predictor.layer.{i}.norm1"),
    ("blocks.{i}.attn.qkv",     "predictor.layer.{i}.attention.{query|key|value}"),
    ("blocks.{i}.attn.proj",    "predictor.layer.{i}.attention.proj"),
    ("blocks.{i}.norm2",        "predictor.layer.{i}.norm2"),
    ("blocks.{i}.mlp",          "predictor.layer.{i}.mlp"),
    ("norm",                    "predictor.layernorm"),
    ("proj",                    "predictor.proj"),
]  # fmt: skip

HF_PROBE: Table = [
    # ours                                    transformers
    ("pooler.query_tokens",                    "pooler.query_tokens"),
    ("pooler.blocks.{i}.norm1",                "pooler.self_attention_layers.{i}.layer_norm1"),
    ("pooler.blocks.{i}.attn.qkv",             "pooler.self_attention_layers.{i}.self_attn.{q_proj|k_proj|v_proj}"),
    ("pooler.blocks.{i}.attn.proj",            "pooler.self_attention_layers.{i}.self_attn.out_proj"),
    ("pooler.blocks.{i}.norm2",                "pooler.self_attention_layers.{i}.layer_norm2"),
    ("pooler.blocks.{i}.mlp",                  "pooler.self_attention_layers.{i}.mlp"),
    ("pooler.cross_attention_block.norm1",     "pooler.cross_attention_layer.layer_norm1"),
    ("pooler.cross_attention_block.xattn.q",   "pooler.cross_attention_layer.cross_attn.q_proj"),
    ("pooler.cross_attention_block.xattn.kv",  "pooler.cross_attention_layer.cross_attn.{k_proj|v_proj}"),
    ("pooler.cross_attention_block.norm2",     "pooler.cross_attention_layer.layer_norm2"),
    ("pooler.cross_attention_block.mlp",       "pooler.cross_attention_layer.mlp"),
    ("linear",                                 "classifier"),
]  # fmt: skip


def strip_prefixes(state: dict[str, torch.Tensor], prefixes=("module.", "backbone.")) -> dict:
    """Remove wrapper prefixes (DDP's ``module.``, the reference's ``backbone.``), repeatedly."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for p in prefixes:
                if key.startswith(p):
                    key, changed = key[len(p) :], True
        out[key] = value
    return out


def _regex(path: str) -> tuple[re.Pattern, list[str] | None, bool]:
    """Compile a table path: returns (regex, split part names or None, stacked-by-index flag)."""
    parts = None
    stacked = "{k}" in path
    m = re.search(r"\{([^{}]*\|[^{}]*)\}", path)
    if m:
        parts = m.group(1).split("|")
        path = path.replace(m.group(0), "{part}")
    pattern = re.escape(path)
    pattern = pattern.replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{k\}", r"(?P<k>\d+)")
    if parts:
        pattern = pattern.replace(r"\{part\}", "(?P<part>" + "|".join(parts) + ")")
    return re.compile("^" + pattern + r"(?P<rest>(\.[A-Za-z_0-9.]+)?)$"), parts, stacked


def _fill(path: str, i: str | None) -> str:
    return path.replace("{i}", i) if i is not None else path


def to_theirs(ours: dict[str, torch.Tensor], table: Table) -> dict[str, torch.Tensor]:
    """Our state dict -> their layout (split fused tensors, unstack mask tokens)."""
    out = {}
    for key, value in ours.items():
        for our_path, their_path in table:
            m = _regex(our_path)[0].match(key)
            if not m:
                continue
            i, rest = m.groupdict().get("i"), m.group("rest")
            target = _fill(their_path, i)
            _, parts, stacked = _regex(their_path)
            if parts:
                alternatives = re.search(r"\{[^{}]*\|[^{}]*\}", target).group(0)
                for name, chunk in zip(parts, value.chunk(len(parts), dim=0)):
                    out[target.replace(alternatives, name) + rest] = chunk.contiguous()
            elif stacked:
                for k, item in enumerate(value.unbind(0)):
                    out[target.replace("{k}", str(k)) + rest] = item.contiguous()
            else:
                out[target + rest] = value
            break
        else:
            raise KeyError(f"no key-map row for our key {key!r}")
    return out


def to_ours(theirs: dict[str, torch.Tensor], table: Table, ignore: tuple[str, ...] = ()) -> dict:
    """Their state dict -> ours (fuse split tensors, stack per-index tensors).

    Keys that no row matches are kept as they are, so the strict load that follows names them.
    """
    fused: dict[str, dict[str, torch.Tensor]] = {}
    stacks: dict[str, dict[int, torch.Tensor]] = {}
    out: dict[str, torch.Tensor] = {}
    for key, value in theirs.items():
        if key.split(".")[-1] in ignore or key in ignore:
            continue
        for our_path, their_path in table:
            rx, parts, stacked = _regex(their_path)
            m = rx.match(key)
            if not m:
                continue
            target = _fill(our_path, m.groupdict().get("i")) + m.group("rest")
            if parts:
                fused.setdefault(target, {})[m.group("part")] = value
                fused[target]["__order__"] = parts
            elif stacked:
                stacks.setdefault(target, {})[int(m.group("k"))] = value
            else:
                out[target] = value
            break
        else:
            out[key] = value
    for target, pieces in fused.items():
        order = pieces.pop("__order__")
        missing = [p for p in order if p not in pieces]
        if missing:
            raise UserError(f"{target}: their checkpoint lacks the parts {missing} of a fused tensor")
        out[target] = torch.cat([pieces[p] for p in order], dim=0)
    for target, items in stacks.items():
        out[target] = torch.stack([items[k] for k in sorted(items)], dim=0)
    return out


def check_state_dict(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Raise a clear error (missing, unexpected, shape mismatches) before any weight is copied."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: expected {tuple(expected[k].shape)}, found {tuple(state[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if expected[k].shape != state[k].shape
    ]
    if missing or unexpected or shapes:
        lines = [f"{where}: the weights do not fit the model"]
        if missing:
            lines.append(
                f"  missing keys ({len(missing)}): {missing[:12]}{' ...' if len(missing) > 12 else ''}"
            )
        if unexpected:
            lines.append(
                f"  unexpected keys ({len(unexpected)}): {unexpected[:12]}{' ...' if len(unexpected) > 12 else ''}"
            )
        if shapes:
            lines.append(f"  shape mismatches ({len(shapes)}): " + "; ".join(shapes[:8]))
        raise UserError("\n".join(lines))


def load_checked(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Strict load with a readable error; never a silent partial load."""
    check_state_dict(module, state, where)
    module.load_state_dict(state, strict=True)


def built_with(factory: Callable[[], M], state: dict[str, torch.Tensor], where: str) -> M:
    """``factory()`` holding ``state`` (strictly checked as ``load_checked``), built without a
    random init or a second copy of the weights.

    The module is made on the meta device and the state's tensors become its parameters, cast
    to the dtypes it declares (no copy where they agree: a memory-mapped checkpoint stays mapped,
    so a model later held in bf16 or int8 never has an fp32 copy in memory). Buffers no
    checkpoint holds are computed again by the modules that own them (``rebuild_buffers``).
    """
    with torch.device("meta"):
        module = factory()
    check_state_dict(module, state, where)
    declared = module.state_dict()
    module.load_state_dict({k: v.to(declared[k].dtype) for k, v in state.items()}, strict=True, assign=True)
    for sub in module.modules():
        if hasattr(sub, "rebuild_buffers"):
            sub.rebuild_buffers()
    empty = [name for name, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
    if empty:  # a module with a buffer it cannot rebuild: a bug here, not the user's file
        raise RuntimeError(f"{where}: {empty[:4]} left without values after loading")
    return module
