"""vjepa2: V-JEPA 2 video world models.

import vjepa2
model = vjepa2.load("vitl.pt")                 # reference .pt, transformers dir, or ours
clip = vjepa2.preprocess(frames, crop=256)     # uint8 (T, H, W, C) -> float (T, C, crop, crop)
tokens = model.encode(clip[None])              # (B, T, C, H, W) -> (B, N, D)
preds = model.predict(tokens, context_idx, target_idx)
model.save("my-model")                         # safetensors + config.json
vjepa2.export_transformers(model, "hf-dir")    # transformers.VJEPA2Model.from_pretrained("hf-dir")
"""

from vjepa2.models.model import VJEPA2
from vjepa2.models.probe_weights import export_classifier_transformers, load_probe, save_probe
from vjepa2.models.weights import export_transformers, load

__version__ = "0.1.0"


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
