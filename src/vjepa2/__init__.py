"""vjepa2: V-JEPA 2 video world models.

import torch, vjepa2
model = vjepa2.load("vitl")                    # released name (vjepa2.list_weights()), path, or "random:tiny"
frames = torch.randint(0, 256, (16, 360, 480, 3), dtype=torch.uint8)  # a decoded video (T, H, W, C)
clip = vjepa2.preprocess(frames, crop=256)     # uint8 (T, H, W, C) -> float (T, C, crop, crop)
tokens = model.encode(clip[None])              # (B, T, C, H, W) -> (B, N, D); N = 8 x 16 x 16 here
context_idx, target_idx = torch.arange(1024)[None], torch.arange(1024, 2048)[None]
preds = model.predict(tokens, context_idx, target_idx)  # the last 4 time steps from the first 4
model.save("my-model")                         # safetensors + config.json
vjepa2.export_transformers(model, "hf-dir")    # transformers.VJEPA2Model.from_pretrained("hf-dir")

Entry points: load (any checkpoint layout, a released name, random:<preset>), load_probe /
save_probe (attentive probes), preprocess, export_transformers / export_classifier_transformers,
list_weights / download (the released checkpoints, cached), VJEPA2 (the model class). torch.hub:
torch.hub.load("<this repository>", "vjepa2_vit_large") as with facebookresearch/vjepa2.
"""

from importlib import import_module

__version__ = "0.1.0"

# Imported on first use, so that ``import vjepa2.cli`` can set the OpenMP wait policy before torch
# loads (OpenMP reads it once, when the library starts).
_LAZY = {
    # The class from vjepa2.checkpoints, which gives it its ``save`` (the models cannot import it).
    "VJEPA2": "vjepa2.checkpoints.ours",
    "load": "vjepa2.checkpoints.loading",
    "export_transformers": "vjepa2.checkpoints.hf",
    "load_probe": "vjepa2.checkpoints.probes",
    "save_probe": "vjepa2.checkpoints.probes",
    "export_classifier_transformers": "vjepa2.checkpoints.probes",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vjepa2' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The entry points (loaded lazily) beside what the module holds: what ``dir`` and tab
    completion show before anything was imported."""
    return sorted(set(globals()) | set(__all__))


def preprocess(frames, crop: int = 256):
    """Eval preprocessing: uint8 frames (T, H, W, C) -> float (T, C, crop, crop).

    Resize the short side to int(crop * 256 / 224) (bilinear), center crop, scale to [0, 1],
    ImageNet mean/std normalization (as the reference evals and the transformers processor).
    """
    from vjepa2.data.transforms import eval_transform

    return eval_transform(frames, crop=crop)


def list_weights(kind: str | None = None) -> list[str]:
    """Names of the released checkpoints (``vjepa2 weights list`` shows the table); kind:
    "encoder", "ac", "probe" or "hf" (``transformers`` repositories) to keep one kind."""
    from vjepa2.weights.table import TABLE

    return [entry.name for entry in TABLE if kind is None or entry.kind == kind]


def download(name: str, force: bool = False):
    """The local path of the released checkpoint ``name`` (a file, or a ``transformers`` folder),
    downloaded into the cache unless it is there, and checked against its SHA-256."""
    from vjepa2.weights.fetch import fetch, lookup

    return fetch(lookup(name), force=force)


__all__ = [
    "VJEPA2",
    "load",
    "load_probe",
    "save_probe",
    "preprocess",
    "export_transformers",
    "export_classifier_transformers",
    "list_weights",
    "download",
]
