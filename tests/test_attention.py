"""The CPU attention kernels the blocks pick (per-head and whole matmuls) agree with SDPA."""

import pytest
import torch
import torch.nn.functional as F

from vjepa2.models import blocks
from vjepa2.models.ac_predictor import block_causal_mask


def qkv(B=2, H=3, N=20, M=20, hd=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, n, hd, generator=gen) for n in (N, M, M))


@pytest.mark.parametrize("mask", ["none", "bool", "float"])
def test_math_attention_matches_sdpa_in_fp32(mask):
    q, k, v = qkv(N=12, M=20)
    attn_mask = None
    if mask == "bool":
        attn_mask = torch.rand(12, 20, generator=torch.Generator().manual_seed(1)) > 0.3
        attn_mask[:, 0] = True  # every query keeps one key
    elif mask == "float":
        attn_mask = torch.randn(12, 20)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    assert torch.allclose(blocks.math_attention(q, k, v, attn_mask), expected, atol=1e-5)


def test_headwise_attention_matches_sdpa_in_fp32():
    q, k, v = qkv()
    assert torch.allclose(
        blocks.headwise_attention(q, k, v), F.scaled_dot_product_attention(q, k, v), atol=1e-5
    )


@pytest.mark.parametrize("native", [True, False])
def test_bf16_training_path_gives_sdpa_gradients(monkeypatch, native):
    # Under bf16 with gradients on CPU, attention() takes the matmul path where bf16 is native,
    # SDPA elsewhere; either way its output and input gradients match fp32 SDPA within bf16
    # rounding, block-causal mask included. Both paths run on every CPU (``native`` pretends the
    # CPU's answer; emulated bf16 is slower, not different), so neither goes untested on a CPU
    # without native bf16.
    monkeypatch.setattr(blocks, "fast_bf16", lambda device_type: native)
    q, k, v = qkv(N=24, M=24)
    mask = block_causal_mask(steps=4, tokens_per_step=6)
    ref = [t.clone().requires_grad_() for t in (q, k, v)]
    F.scaled_dot_product_attention(*ref, attn_mask=mask).square().sum().backward()
    ours = [t.clone().requires_grad_() for t in (q, k, v)]
    out = blocks.attention(*(t.bfloat16() for t in ours), attn_mask=mask)
    assert out.dtype == torch.bfloat16
    out.float().square().sum().backward()
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (out.float() - expected).abs().max() < 0.03
    for a, b in zip(ours, ref):
        assert (a.grad - b.grad).abs().max() < 0.05 * b.grad.abs().max()


def test_long_sequences_keep_sdpa(monkeypatch):
    # Above the score budget, training falls back to SDPA (memory); the matmul path is not called.
    monkeypatch.setattr(blocks, "MATH_ATTENTION_SCORES", 10)
    monkeypatch.setattr(blocks, "math_attention", lambda *a, **k: pytest.fail("math path taken"))
    q, k, v = (t.bfloat16().requires_grad_() for t in qkv())
    blocks.attention(q, k, v).float().sum().backward()


@pytest.mark.parametrize("native", [True, False])
def test_bf16_matmul_paths_only_where_bf16_is_native(monkeypatch, native):
    # Emulated bf16 matmuls are 10-35x slower than SDPA (AVX2 CPUs): they are taken only on
    # CPUs that do bf16 natively, where they beat SDPA.
    taken = []
    monkeypatch.setattr(blocks, "fast_bf16", lambda device_type: native)
    for name in ("math_attention", "headwise_attention"):
        real = getattr(blocks, name)
        monkeypatch.setattr(
            blocks, name, lambda *a, _real=real, _name=name, **k: taken.append(_name) or _real(*a, **k)
        )
    q, k, v = (t.bfloat16() for t in qkv(N=16, M=16))
    with torch.no_grad():
        blocks.attention(q, k, v)
    blocks.attention(*(t.requires_grad_() for t in (q, k, v)))
    assert taken == (["headwise_attention", "math_attention"] if native else [])


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_the_encoder_runs_the_fused_sdpa_kernel(monkeypatch, dtype):
    """Where SDPA is taken (fp32 everywhere, bf16 where it is not native), the encoder's q / k / v
    (RoPE-rotated, in (B, N, heads, hd) memory order) reach the CPU flash kernel, not the
    unfused math fallback inside SDPA."""
    from torch.profiler import profile

    from vjepa2.checkpoints.loading import held, random_model

    monkeypatch.setattr(blocks, "fast_bf16", lambda device_type: False)
    model = held(random_model("tiny", predictor=False, depth=1), dtype)
    clip = torch.randn(1, 4, 3, 64, 64)
    with torch.no_grad(), profile() as prof:
        model.encode(clip)
    ran = {event.key for event in prof.key_averages()}
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in ran
    assert not any("attention_math" in name for name in ran)
