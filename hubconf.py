"""torch.hub entry points, named and called as facebookresearch/vjepa2's.

    encoder, predictor = torch.hub.load("<owner>/<repo>", "vjepa2_vit_large")  # or a checkout, source="local"
    processor = torch.hub.load("<owner>/<repo>", "vjepa2_preprocessor")

Weights come through vjepa2's cache ($VJEPA2_CACHE; VJEPA2_MIRROR, VJEPA2_OFFLINE), checked by
SHA-256. What each entry returns and how it is called: src/vjepa2/torchhub.py.
"""

import sys
from pathlib import Path

# torch.hub imports this file from a checkout that need not be installed: use the package beside it.
_SRC = str(Path(__file__).resolve().parent / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)

from vjepa2.torchhub import (  # noqa: E402
    vjepa2_1_vit_base_384,
    vjepa2_1_vit_giant_384,
    vjepa2_1_vit_gigantic_384,
    vjepa2_1_vit_large_384,
    vjepa2_ac_vit_giant,
    vjepa2_preprocessor,
    vjepa2_vit_giant,
    vjepa2_vit_giant_384,
    vjepa2_vit_huge,
    vjepa2_vit_large,
)

dependencies = ["torch", "numpy", "safetensors", "tqdm"]

__all__ = [
    "vjepa2_preprocessor",
    "vjepa2_vit_large",
    "vjepa2_vit_huge",
    "vjepa2_vit_giant",
    "vjepa2_vit_giant_384",
    "vjepa2_ac_vit_giant",
    "vjepa2_1_vit_base_384",
    "vjepa2_1_vit_large_384",
    "vjepa2_1_vit_giant_384",
    "vjepa2_1_vit_gigantic_384",
]
