"""torch.hub entry points with the reference's names, signatures and call conventions.

facebookresearch/vjepa2's ``hubconf.py`` returns ``(encoder, predictor)`` for each backbone and an
eval transform for ``vjepa2_preprocessor``; the same calls work on this repository (``hubconf.py``
at its root re-exports these). The modules returned wrap this package's (``.encoder`` /
``.predictor`` hold them) and are called as the reference's are:

- ``encoder(x, masks=None, training=False)``: x (B, C, T, H, W) video or (B, C, H, W) image,
  masks a (B, K) long tensor of the tokens to keep (or a list of them: outputs stacked along the
  batch) -> (B, N, D). With ``encoder.out_layers = [...]``: the list of those blocks' normed
  outputs. V-JEPA 2.1 with ``training=True`` or ``encoder.return_hierarchical = True``: the
  4-level output (B, N, 4D), which the g/G predictors read.
- 2.0 ``predictor(x, masks_x, masks_y, mask_index=1, has_cls=False)`` -> (B, Kt, D);
  2.1 ``predictor(x, masks_x, masks_y, mod="video", mask_index=1)`` -> (pred (B, Kt, P),
  ctx (B, Kc, P)), as the 2.1 hub builds it (``return_all_tokens``). x: the context tokens
  (B, Kc, D_in) at ``masks_x``; positions come from the grid of ``img_size`` / ``num_frames``.
- AC ``predictor(x, actions, states, extrinsics=None)``: x (B, T * h * w, D) layer-normed frame
  tokens, actions / states (B, T, 7) -> (B, T * h * w, D), the next frame at each step.

Differences from the reference, on purpose: weights come through this package's cache (its
mirror and offline switches, a SHA-256 check) rather than torch.hub's checkpoint folder, and
their architecture is read off the file; ``img_size`` may be given (the reference's entries
reject it), as may ``heads`` / ``predictor_heads`` for files of unusual widths; the 2.0 encoder
also takes images (repeated to one tubelet). Keywords that only restate the released
architecture (``use_rope=True``, ...) are accepted; others that would change it are refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from vjepa2.checkpoints.loading import load, random_model
from vjepa2.data.transforms import eval_transform
from vjepa2.models.ac_predictor import ACPredictor
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.predictor import MaskPredictor
from vjepa2.models.presets import ac_predictor_config


@dataclass(frozen=True)
class Entry:
    """One backbone entry: the table name of its weights, its architecture when not pretrained,
    its resolution and the encoder the reference hub reads from the file."""

    weights: str
    preset: str
    img_size: int
    checkpoint_key: str
    ac: bool = False


ENTRIES = {
    "vjepa2_vit_large": Entry("vitl", "vitl", 256, "target_encoder"),
    "vjepa2_vit_huge": Entry("vith", "vith", 256, "target_encoder"),
    "vjepa2_vit_giant": Entry("vitg", "vitg", 256, "target_encoder"),
    "vjepa2_vit_giant_384": Entry("vitg-384", "vitg-384", 384, "target_encoder"),
    "vjepa2_ac_vit_giant": Entry("vjepa2-ac-vitg", "vitg", 256, "encoder", ac=True),
    "vjepa2_1_vit_base_384": Entry("vjepa2.1-vitb", "vitb-2.1", 384, "ema_encoder"),
    "vjepa2_1_vit_large_384": Entry("vjepa2.1-vitl", "vitl-2.1", 384, "ema_encoder"),
    "vjepa2_1_vit_giant_384": Entry("vjepa2.1-vitg", "vitg-2.1", 384, "target_encoder"),
    "vjepa2_1_vit_gigantic_384": Entry("vjepa2.1-vitG", "vitG-2.1", 384, "target_encoder"),
}

# The reference's switches, at the values of the released models: accepted, nothing to change.
RELEASED = {"use_sdpa": True, "use_SiLU": False, "wide_SiLU": True, "use_silu": False, "wide_silu": True,
            "uniform_power": False, "use_rope": True, "use_mask_tokens": True, "patch_size": 16,
            "tubelet_size": 2, "interpolate_rope": True, "img_temporal_dim_size": 1, "modality_embedding": True}  # fmt: skip
OPTIONS = {"checkpoint_key", "num_frames", "img_size", "out_layers", "use_activation_checkpointing",
           "num_heads", "heads", "predictor_heads", "use_extrinsics"}  # fmt: skip


def _options(name: str, kwargs: dict) -> dict:
    """The keywords this port acts on; the released switches dropped, anything else refused."""
    for key, value in kwargs.items():
        if key in RELEASED and value != RELEASED[key]:
            raise ValueError(
                f"{name}: this port builds the released architecture; {key}={value!r} is not available"
            )
        if key not in RELEASED and key not in OPTIONS:
            raise TypeError(
                f"{name}() got an unexpected keyword argument {key!r}; it takes {sorted(OPTIONS)}"
            )
    return {k: v for k, v in kwargs.items() if k in OPTIONS}


def build(name: str, pretrained: bool = True, **kwargs) -> tuple[nn.Module, nn.Module | None]:
    """(encoder, predictor) of the entry ``name``, called as the reference's (module docstring)."""
    entry, opts = ENTRIES[name], _options(name, kwargs)
    heads = opts.get("heads", opts.get("num_heads"))
    predictor_heads = opts.get("predictor_heads", opts.get("num_heads"))
    if pretrained:
        key = opts.get("checkpoint_key", entry.checkpoint_key)
        extrinsics = opts.get("use_extrinsics") if entry.ac else None
        model = load(
            entry.weights, key, heads=heads, predictor_heads=predictor_heads, use_extrinsics=extrinsics
        )
        encoder, predictor = model.encoder, model.ac_predictor if entry.ac else model.predictor
    else:
        encoder, predictor = _random(entry, opts)
    if opts.get("use_activation_checkpointing"):
        for module in (encoder, predictor):
            if module is not None:
                module.cfg = dataclasses.replace(module.cfg, checkpointing=True)
    img_size, frames = opts.get("img_size", entry.img_size), opts.get("num_frames", 64)
    side = img_size // encoder.cfg.patch
    hub_encoder = HubEncoder(encoder, opts.get("out_layers"))
    if predictor is None:
        return hub_encoder, None
    if isinstance(predictor, ACPredictor):
        return hub_encoder, HubACPredictor(predictor, (side, side))
    grid = (max(1, frames // encoder.cfg.tubelet), side, side)
    wrapper = HubPredictor21 if predictor.cfg.version == "2.1" else HubPredictor
    return hub_encoder, wrapper(predictor, grid)


def _random(entry: Entry, opts: dict) -> tuple[VideoEncoder, nn.Module]:
    """A randomly initialised model of the entry's architecture (seeded: the same every call)."""
    overrides = {"heads": opts["heads"]} if opts.get("heads") else {}
    model = random_model(entry.preset, seed=0, predictor=not entry.ac, **overrides)
    if not entry.ac:
        return model.encoder, model.predictor
    config = ac_predictor_config(model.encoder.cfg.dim, use_extrinsics=bool(opts.get("use_extrinsics")))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return model.encoder, ACPredictor(config)


def _mask_list(masks) -> list[torch.Tensor]:
    return list(masks) if isinstance(masks, (list, tuple)) else [masks]


class HubEncoder(nn.Module):
    """The encoder as the reference calls it: x (B, C, T, H, W) or (B, C, H, W) -> (B, N, D)."""

    def __init__(self, encoder: VideoEncoder, out_layers: list[int] | None = None):
        super().__init__()
        self.encoder = encoder
        self.out_layers = out_layers
        self.return_hierarchical = False
        cfg = encoder.cfg
        self.embed_dim, self.num_heads, self.patch_size, self.tubelet_size = (
            cfg.dim,
            cfg.heads,
            cfg.patch,
            cfg.tubelet,
        )

    def get_num_layers(self) -> int:
        return self.encoder.cfg.depth

    def forward(self, x: torch.Tensor, masks=None, training: bool = False):
        """masks: (B, K) token indices or a list of them; training / return_hierarchical: the
        4-level output of a 2.1 encoder. Returns (B, N, D) (stacked over masks), or a list."""
        clips = x.transpose(1, 2) if x.ndim == 5 else x  # (B, C, T, H, W) -> (B, T, C, H, W)
        levels = bool(self.encoder.cfg.level_layers) and (training or self.return_hierarchical)
        levels = levels and self.out_layers is None
        parts = [
            self.encoder(clips, context_idx=m, out_layers=self.out_layers, levels=levels)
            for m in ([None] if masks is None else _mask_list(masks))
        ]
        if self.out_layers is not None:
            return [torch.cat(layer, dim=0) for layer in zip(*parts)]
        return torch.cat(parts, dim=0)


class _HubMaskPredictor(nn.Module):
    def __init__(self, predictor: MaskPredictor, grid: tuple[int, int, int]):
        super().__init__()
        self.predictor = predictor
        self.grid = grid  # (t, h, w): the positions the reference predictor is built for
        self.num_mask_tokens = predictor.cfg.num_mask_tokens

    def _predict(self, x, masks_x, masks_y, mask_index: int, mod: str, return_context: bool):
        masks_x, masks_y = _mask_list(masks_x), _mask_list(masks_y)
        if len(masks_x) != len(masks_y):
            raise ValueError(f"{len(masks_x)} context masks for {len(masks_y)} target masks")
        context_idx, target_idx = torch.cat(masks_x, dim=0), torch.cat(masks_y, dim=0)  # (n * B, K)
        if x.shape[0] != context_idx.shape[0]:  # one context for every mask pair
            x = x.repeat(context_idx.shape[0] // x.shape[0], 1, 1)
        modality = "image" if mod == "image" else "video"
        return self.predictor(
            x,
            context_idx,
            target_idx,
            self.grid,
            mask_index,
            modality=modality,
            return_context=return_context,
        )


class HubPredictor(_HubMaskPredictor):
    """The V-JEPA 2.0 predictor as the reference calls it -> (B, Kt, D)."""

    def forward(self, x, masks_x, masks_y, mask_index: int = 1, has_cls: bool = False):
        if has_cls:
            raise ValueError("V-JEPA 2 encoders have no CLS token (has_cls=True)")
        return self._predict(x, masks_x, masks_y, mask_index, "video", return_context=False)


class HubPredictor21(_HubMaskPredictor):
    """The V-JEPA 2.1 predictor as the 2.1 hub builds it -> (pred (B, Kt, P), ctx (B, Kc, P))."""

    def forward(self, x, masks_x, masks_y, mod: str = "video", mask_index: int = 1):
        return self._predict(x, masks_x, masks_y, mask_index, mod, return_context=True)


class HubACPredictor(nn.Module):
    """The V-JEPA 2-AC predictor as the reference calls it -> (B, T * h * w, D)."""

    def __init__(self, predictor: ACPredictor, grid_hw: tuple[int, int]):
        super().__init__()
        self.predictor = predictor
        self.grid_height, self.grid_width = grid_hw

    @property
    def use_extrinsics(self) -> bool:
        return self.predictor.cfg.use_extrinsics

    def forward(self, x, actions, states, extrinsics=None):
        return self.predictor(x, actions, states, extrinsics, grid_hw=(self.grid_height, self.grid_width))


class HubPreprocessor:
    """The reference's eval transform: video -> [clip (C, T, crop, crop)], a list of one clip.

    Takes uint8 frames (T, H, W, C) (numpy or torch) or a tensor (T, C, H, W), as the reference
    demo passes; short side to int(crop * 256 / 224), center crop, ImageNet normalisation.
    """

    def __init__(self, crop_size: int = 256):
        self.crop_size = crop_size

    def __call__(self, buffer) -> list[torch.Tensor]:
        frames = buffer
        if (
            torch.is_tensor(frames)
            and frames.ndim == 4
            and frames.shape[1] in (1, 3)
            and frames.shape[-1] not in (1, 3)
        ):
            frames = frames.permute(0, 2, 3, 1)  # (T, C, H, W) -> (T, H, W, C)
        return [eval_transform(frames, crop=self.crop_size).transpose(0, 1)]


def vjepa2_preprocessor(*, pretrained: bool = True, **kwargs) -> HubPreprocessor:
    """The eval transform (``crop_size``: 256, or 384 for the 384 models)."""
    return HubPreprocessor(crop_size=kwargs.get("crop_size", 256))


def vjepa2_vit_large(*, pretrained: bool = True, **kwargs):
    """V-JEPA 2 ViT-L/16, 256 px: (encoder, predictor)."""
    return build("vjepa2_vit_large", pretrained, **kwargs)


def vjepa2_vit_huge(*, pretrained: bool = True, **kwargs):
    """V-JEPA 2 ViT-H/16, 256 px: (encoder, predictor)."""
    return build("vjepa2_vit_huge", pretrained, **kwargs)


def vjepa2_vit_giant(*, pretrained: bool = True, **kwargs):
    """V-JEPA 2 ViT-g/16, 256 px: (encoder, predictor)."""
    return build("vjepa2_vit_giant", pretrained, **kwargs)


def vjepa2_vit_giant_384(*, pretrained: bool = True, **kwargs):
    """V-JEPA 2 ViT-g/16, 384 px: (encoder, predictor)."""
    return build("vjepa2_vit_giant_384", pretrained, **kwargs)


def vjepa2_ac_vit_giant(*, pretrained: bool = True, **kwargs):
    """V-JEPA 2-AC: the ViT-g/16 encoder and the action-conditioned predictor."""
    return build("vjepa2_ac_vit_giant", pretrained, **kwargs)


def vjepa2_1_vit_base_384(*, pretrained: bool = True, **kwargs):
    """V-JEPA 2.1 ViT-B/16, 384 px (distilled from ViT-G): (encoder, predictor)."""
    return build("vjepa2_1_vit_base_384", pretrained, **kwargs)


def vjepa2_1_vit_large_384(*, pretrained: bool = True, **kwargs):
    """V-JEPA 2.1 ViT-L/16, 384 px (distilled from ViT-G): (encoder, predictor)."""
    return build("vjepa2_1_vit_large_384", pretrained, **kwargs)


def vjepa2_1_vit_giant_384(*, pretrained: bool = True, **kwargs):
    """V-JEPA 2.1 ViT-g/16, 384 px: (encoder, predictor)."""
    return build("vjepa2_1_vit_giant_384", pretrained, **kwargs)


def vjepa2_1_vit_gigantic_384(*, pretrained: bool = True, **kwargs):
    """V-JEPA 2.1 ViT-G/16, 384 px: (encoder, predictor)."""
    return build("vjepa2_1_vit_gigantic_384", pretrained, **kwargs)
