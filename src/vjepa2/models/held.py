"""Weights held in the inference precision: the model IS bf16 or int8, not an fp32 model cast per call.

``hold(module, dtype)`` converts a module in place for inference:

- ``fp32``: unchanged.
- ``bf16``: every parameter becomes bfloat16, so no fp32 master copy stays resident and autocast
  (still entered by commands, for heads that are not held) finds nothing to cast: a bf16 weight is
  used as it is. Buffers keep their dtype: RoPE's frequencies stay fp32 (bf16 would round the
  angles of distant tokens). Norms compute in fp32 internally on every device (their kernels
  accumulate mean and variance in fp32). Their weights (0.1% of a ViT's) are held where each
  device's kernel accepts them: on the CPU in fp32, since its LayerNorm takes bf16 input with fp32
  weights, and an fp32 activation reaching a norm (a predictor's fp32 inputs under autocast, which
  passes CPU norms through uncast) would fail against bf16 weights; on CUDA in bf16, since its
  eager kernel wants the weights in the input's dtype (pytorch/pytorch PR 188503), while CUDA
  autocast runs norms in fp32 anyway. Outputs come out bf16 (``.float()`` them for NumPy).
- ``int8``: every ``nn.Linear`` becomes a dynamically quantized int8 Linear (``models/quantize.py``,
  PyTorch's own ``torch.ao`` path on the x86 / fbgemm engine); the original fp32 Linear weights are
  dropped. Patch embedding, norms and attention stay fp32. CPU only.

``weight_bytes`` counts what a held module keeps resident, int8 packed weights included.
"""

from __future__ import annotations

import torch
from torch import nn

from vjepa2.models.quantize import is_quantized, quantize_int8

HELD_DTYPES = ("fp32", "bf16", "int8")
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def hold(module: nn.Module, dtype: str) -> nn.Module:
    """``module`` converted in place to hold its weights in ``dtype`` (fp32, bf16, int8); eval mode.

    Returns the module (the same object). A module already held in another precision is refused:
    converting bf16 or int8 weights back would not restore the fp32 ones."""
    if dtype not in HELD_DTYPES:
        raise ValueError(f"unknown held precision {dtype!r}; expected one of {HELD_DTYPES}")
    current = held_dtype(module)
    if current not in (dtype, "fp32"):
        raise ValueError(f"this model is already held in {current}; load it again for {dtype}")
    module.eval()
    if dtype == "int8" and current != "int8":
        return quantize_int8(module, inplace=True)
    if dtype == "bf16":
        for sub in module.modules():
            if isinstance(sub, nn.LayerNorm) and next(sub.parameters(), torch.empty(0)).device.type == "cpu":
                continue
            for name, param in list(sub._parameters.items()):
                if param is not None and param.is_floating_point() and param.dtype != torch.bfloat16:
                    # a new Parameter, not param.data = ...: the fp32 storage is freed with the old one
                    held = nn.Parameter(param.detach().to(torch.bfloat16), requires_grad=param.requires_grad)
                    setattr(sub, name, held)
    return module


def held_dtype(module: nn.Module) -> str:
    """The precision ``module``'s weights are held in: int8 (quantized Linear layers), bf16 (most
    parameters bfloat16) or fp32."""
    if is_quantized(module):
        return "int8"
    counts = {torch.bfloat16: 0, torch.float32: 0}
    for p in module.parameters():
        if p.dtype in counts:
            counts[p.dtype] += p.numel()
    return "bf16" if counts[torch.bfloat16] > counts[torch.float32] else "fp32"


def weight_bytes(module: nn.Module) -> int:
    """Bytes of the weights ``module`` holds: its parameters and buffers, plus the packed int8
    weights (and their fp32 biases) of quantized Linear layers, which are neither."""
    total = sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
    for m in module.modules():
        if type(m).__module__.startswith("torch.ao.nn.quantized") and hasattr(m, "weight"):
            weight = m.weight()  # (out, in) qint8, 1 byte each, plus one fp32 scale per row
            total += weight.numel() + 4 * weight.shape[0]
            bias = m.bias()
            total += 0 if bias is None else bias.numel() * bias.element_size()
    return total
