"""int8 inference: dynamic quantization of the Linear layers, for CPUs without fast bf16.

Weights are stored as int8 with one scale per output channel; activations are quantized per
batch on the fly, the matmul runs in int8 with int32 accumulation (fbgemm / oneDNN kernels), and
the result comes back in fp32. Everything else (patch embedding, LayerNorm, RoPE, attention
scores, GELU) stays fp32. Linear layers hold ~95% of a ViT's matmul work at 2048 tokens, and
int8 GEMMs run about 1.5x faster than fp32 ones on an AVX2 CPU. The error against fp32 is
measured in ``benchmarks/int8_error.py`` and BENCHMARKS.md; it is not free, so ``dtype: auto``
chooses int8 only for a model where it measured faster and within its error bound
(``models/auto_precision.py``). ``models/held.py`` holds a model in int8 (or bf16) for inference.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn


def quantize_int8(module: nn.Module, inplace: bool = False) -> nn.Module:
    """``module`` with every ``nn.Linear`` replaced by a dynamically quantized int8 Linear.

    CPU inference only (no gradients; quantized layers do not run on CUDA). The module is put in
    eval mode; other layers are unchanged, so shapes, dtypes (fp32 in and out) and the calling
    convention stay the same.
    """
    if any(p.device.type != "cpu" for p in module.parameters()):
        raise ValueError("int8 quantization runs on the CPU; move the model to the CPU first")
    if not inplace:
        module = copy.deepcopy(module)
    module.eval()
    engines = torch.backends.quantized.supported_engines
    if torch.backends.quantized.engine not in engines or torch.backends.quantized.engine == "none":
        torch.backends.quantized.engine = "x86" if "x86" in engines else engines[0]
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, which would pull in another
        # dependency; the dynamic int8 Linear it provides is what this needs and still ships.
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8, inplace=True)


def is_quantized(module: nn.Module) -> bool:
    """Whether any layer of ``module`` is an int8 dynamic Linear."""
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in module.modules())
