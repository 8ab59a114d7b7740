"""What the public model API accepts, checked at the door: a wrong shape, dtype or index is a
``ValueError`` that names what was expected, never a silent wrong result deep inside a block
(an index past the last token gathers garbage on some devices; a negative one wraps around).
"""

from __future__ import annotations

import torch

CLIPS = "clips (B, T, C=3, H, W) or images (B, C=3, H, W), float (the output of vjepa2.preprocess)"
FLOATS = (torch.float32, torch.bfloat16, torch.float64)


def check_clips(clips, patch: int, channels: int = 3) -> None:
    """``clips`` as ``encode`` reads them: a float tensor (B, T, C, H, W) or (B, C, H, W) with
    B >= 1, C = ``channels`` and H, W at least one ``patch``."""
    if not isinstance(clips, torch.Tensor):
        raise ValueError(f"expected {CLIPS}; got {type(clips).__name__} (use torch.from_numpy / preprocess)")
    shape = tuple(clips.shape)
    if clips.ndim not in (4, 5):
        raise ValueError(f"expected {CLIPS}; got shape {shape}")
    if not clips.is_floating_point():
        raise ValueError(f"expected {CLIPS}; got dtype {clips.dtype} (uint8 frames go through preprocess)")
    if shape[0] == 0 or (clips.ndim == 5 and shape[1] == 0):
        raise ValueError(f"expected {CLIPS}; got an empty batch {shape}")
    c = shape[-3]
    if c != channels:
        hint = " (channels last? put C before H, W)" if shape[-1] == channels else ""
        raise ValueError(f"expected {CLIPS}; got {c} channels in shape {shape}{hint}")
    if min(shape[-2:]) < patch:
        raise ValueError(
            f"expected {CLIPS}; frames of {shape[-2]}x{shape[-1]} are smaller than a patch ({patch})"
        )


def check_layers(out_layers, depth: int) -> None:
    """Block indices ``out_layers`` (negative: from the end) of an encoder with ``depth`` blocks."""
    wrong = [i for i in out_layers if not isinstance(i, int) or not -depth <= i < depth]
    if wrong:
        raise ValueError(
            f"out_layers {wrong}: this encoder has {depth} blocks (indices {-depth}..{depth - 1})"
        )


def check_tokens(tokens, width: int, what: str = "tokens") -> None:
    """Encoder tokens (B, N, ``width``) in a precision the model runs (fp32 or bf16)."""
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 3:
        got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"expected {what} of shape (B, N, {width}); got {got}")
    if tokens.dtype not in FLOATS:
        raise ValueError(f"expected {what} in float32 or bfloat16; got {tokens.dtype}")
    if tokens.shape[0] == 0:
        raise ValueError(f"expected {what} of shape (B, N, {width}); got an empty batch")


def check_indices(idx: torch.Tensor, batch: int, num_tokens: int, name: str) -> None:
    """Token indices (B, K): long, K >= 1, every one in 0..num_tokens - 1."""
    if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.dtype not in (torch.int64, torch.int32):
        got = f"{idx.dtype} {tuple(idx.shape)}" if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"{name}: expected a (B, K) tensor of token indices (torch.long); got {got}")
    if idx.shape[0] != batch:
        raise ValueError(f"{name}: {idx.shape[0]} rows for a batch of {batch}")
    if idx.shape[1] == 0:
        raise ValueError(f"{name}: empty (K = 0): give at least one token index")
    low, high = int(idx.min()), int(idx.max())
    if low < 0 or high >= num_tokens:
        raise ValueError(f"{name}: indices {low}..{high} outside the clip's tokens 0..{num_tokens - 1}")


def check_shape(x, ndims: tuple[int, ...], width: int, name: str, shape: str) -> None:
    """A tensor of one of ``ndims`` dimensions, none of them empty, whose last is ``width`` wide
    (actions (B, H, A), states (B, S)); ``shape`` says it in words for the error."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a tensor {shape}; got {type(x).__name__}")
    if x.ndim not in ndims or x.shape[-1] != width or 0 in x.shape:
        raise ValueError(f"{name}: expected {shape} with {width} values last; got {tuple(x.shape)}")
