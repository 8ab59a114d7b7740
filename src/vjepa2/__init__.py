"""vjepa2: V-JEPA 2 video world models.

import vjepa2
model = vjepa2.load("vitl.pt")                 # reference .pt, transformers dir, or ours
clip = vjepa2.preprocess(frames, crop=256)     # uint8 (T, H, W, C) -> float (T, C, crop, crop)
tokens = model.encode(clip[None])              # (B, T, C, H, W) -> (B, N, D)
preds = model.predict(tokens, context_idx, target_idx)
model.save("my-model")                         # safetensors + config.json
vjepa2.export_transformers(model, "hf-dir")    # transformers.VJEPA2Model.from_pretrained("hf-dir")
"""

from importlib import import_module

__version__ = "0.1.0"

# Imported on first use, so that ``import vjepa2.cli`` can set the OpenMP wait policy before torch
# loads (OpenMP reads it once, when the library starts).
_LAZY = {
    "VJEPA2": "vjepa2.models.model",
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


def preprocess(frames, crop: int = 256):
    """Eval preprocessing: uint8 frames (T, H, W, C) -> float (T, C, crop, crop).

    Resize the short side to int(crop * 256 / 224) (bilinear), center crop, scale to [0, 1],
    ImageNet mean/std normalization (as the reference evals and the transformers processor).
    """
    from vjepa2.data.transforms import eval_transform

    return eval_transform(frames, crop=crop)


__all__ = [
    "VJEPA2",
    "load",
    "load_probe",
    "save_probe",
    "preprocess",
    "export_transformers",
    "export_classifier_transformers",
]
