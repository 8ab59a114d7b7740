"""Weights held in bf16 / int8 (``models/held.py``), their error bounds, and auto's choice per model."""

import pytest
import torch
import torch.nn.functional as F
from test_quantize import extract_tokens
from torch import nn

import vjepa2
from vjepa2.checkpoints.loading import held, load_encoder, random_model
from vjepa2.errors import UserError
from vjepa2.models import auto_precision, precision
from vjepa2.models.held import held_dtype, hold, weight_bytes
from vjepa2.runtime.process import Process


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A private precision cache, int8 allowed in auto, and the calls to ``decide`` counted."""
    monkeypatch.setattr(precision, "CACHE_FILE", tmp_path / "precision.json")
    monkeypatch.setenv(auto_precision.AUTO_INT8_ENV, "1")
    calls = []
    decide = auto_precision.decide
    monkeypatch.setattr(auto_precision, "decide", lambda *a: calls.append(a) or decide(*a))
    return calls


def _tiny(seed: int = 0) -> nn.Module:
    return random_model("tiny", seed, predictor=False).encoder.eval()


def _cosine(model: nn.Module, reference: torch.Tensor, clip: torch.Tensor) -> float:
    return auto_precision.token_cosine(model, reference, clip)


def test_bf16_is_held_without_an_fp32_copy():
    fp32 = vjepa2.load("random:tiny")
    bf16 = vjepa2.load("random:tiny", dtype="bf16")
    assert held_dtype(fp32) == "fp32" and held_dtype(bf16) == "bf16"
    norms = {id(p) for m in bf16.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    for name, p in bf16.named_parameters():  # norms keep fp32 weights (0.1%), all else is bf16
        assert p.dtype == (torch.float32 if id(p) in norms else torch.bfloat16), name
    assert norms and not any(p.requires_grad is False for p in bf16.parameters())
    assert bf16.encoder.rope.freqs.dtype == torch.float32  # RoPE angles are not rounded to bf16
    ratio = weight_bytes(bf16) / weight_bytes(fp32)
    assert 0.5 <= ratio < 0.51  # half, but the fp32 norms
    clip = auto_precision.benchmark_clip(4, 64)
    with torch.no_grad():
        out = bf16.encode(clip)
    assert out.dtype == torch.bfloat16  # computed in bf16: no fp32 path left


def test_int8_is_held_quantized():
    fp32, int8 = vjepa2.load("random:tiny"), vjepa2.load("random:tiny", dtype="int8")
    assert held_dtype(int8) == "int8"
    assert not any(isinstance(m, nn.Linear) for m in int8.modules())
    # Linear weights 1 byte instead of 4; the Conv3d patch embedding and the norms stay fp32
    assert 0.25 < weight_bytes(int8) / weight_bytes(fp32) < 0.4
    with pytest.raises(ValueError, match="already held in int8"):
        hold(int8, "bf16")


@pytest.mark.parametrize("dtype", ["bf16", "int8"])
def test_each_precision_stays_within_its_bound(dtype):
    """Token cosine to fp32 on the benchmark clip, on a small random model, at least auto's bound."""
    encoder = _tiny()
    clip = auto_precision.benchmark_clip(4, 64)
    with torch.no_grad():
        reference = encoder(clip)
    lowp = hold(_tiny(), dtype)
    cos = _cosine(lowp, reference, clip)
    assert auto_precision.BOUNDS[dtype] <= cos < 1.0  # close, and really another precision


def test_auto_picks_int8_only_where_faster_and_within_bound(machine, monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(auto_precision, "fast_bf16", lambda kind: False)
    monkeypatch.setattr(auto_precision, "int8_speedup", lambda encoder, base: 1.5)
    choice = auto_precision.choose(_tiny(), cpu)
    assert choice.dtype == "int8" and "1.50x faster than fp32" in choice.reason
    assert auto_precision.choose(_tiny(1), cpu, allow_int8=False).dtype == "fp32"
    monkeypatch.setattr(auto_precision, "int8_speedup", lambda encoder, base: 1.05)
    assert auto_precision.choose(_tiny(2), cpu).dtype == "fp32"  # a tie is not a win
    monkeypatch.setattr(auto_precision, "int8_speedup", lambda encoder, base: 2.0)
    monkeypatch.setitem(auto_precision.BOUNDS, "int8", 1.01)  # a bound no int8 model meets
    choice = auto_precision.choose(_tiny(3), cpu)
    assert choice.dtype == "fp32" and "token cosine" in choice.reason


def test_auto_on_native_bf16_compares_int8_with_bf16(machine, monkeypatch):
    monkeypatch.setattr(auto_precision, "fast_bf16", lambda kind: True)
    bases = []
    monkeypatch.setattr(auto_precision, "int8_speedup", lambda encoder, base: bases.append(base) or 1.0)
    assert auto_precision.choose(_tiny(), "cpu").dtype == "bf16" and bases == ["bf16"]
    monkeypatch.setitem(auto_precision.BOUNDS, "bf16", 1.01)
    choice = auto_precision.choose(_tiny(1), "cpu")
    assert choice.dtype == "fp32" and "bf16 token cosine" in choice.reason


def test_the_choice_is_measured_once_per_machine_and_model(machine, monkeypatch):
    monkeypatch.setattr(auto_precision, "int8_speedup", lambda encoder, base: 1.0)
    for seed in (0, 0, 1, 0):
        auto_precision.choose(_tiny(seed), "cpu")
    assert len(machine) == 2  # seeds 0 and 1; the repeats were read from the cache
    monkeypatch.setenv(auto_precision.AUTO_INT8_ENV, "0")
    assert auto_precision.choose(_tiny(5), "cpu").dtype == "fp32" and len(machine) == 2  # nothing to time


def test_int8_speedup_is_a_real_timing():
    speedup = auto_precision.int8_speedup(_tiny(), "fp32")
    assert speedup > 0 and speedup != 1.0


def test_load_refuses_unknown_precisions():
    with pytest.raises(UserError, match="dtype 'fp16'"):
        vjepa2.load("random:tiny", dtype="fp16")
    with pytest.raises(UserError, match="dtype 'fp16'"):
        held(random_model("tiny"), "fp16")


def test_process_settles_auto_for_the_model(machine, monkeypatch, capsys):
    monkeypatch.setattr(auto_precision, "fast_bf16", lambda kind: False)
    monkeypatch.setattr(auto_precision, "int8_speedup", lambda encoder, base: 1.5)
    with Process("cpu", "auto", inference=True) as proc:
        assert proc.dtype == "fp32"
        model = proc.hold(random_model("tiny"), allow_int8=True)
        assert proc.dtype == "int8" and held_dtype(model) == "int8"
    assert "precision: int8 (auto for this model: int8 1.50x faster" in capsys.readouterr().err
    with Process("cpu", "bf16", inference=True) as proc:  # asked for: no measuring, bf16 held
        assert held_dtype(proc.hold(random_model("tiny"), allow_int8=True)) == "bf16"


def test_extract_bf16_holds_the_encoder_and_agrees_with_fp32(tmp_path):
    feats = extract_tokens(tmp_path, ("fp32", "bf16"))
    assert feats["bf16"].dtype == torch.float32
    assert F.cosine_similarity(feats["bf16"], feats["fp32"], dim=-1).min() > auto_precision.BOUNDS["bf16"]
    assert not torch.equal(feats["bf16"], feats["fp32"])


def test_a_saved_checkpoint_loads_held(tmp_path):
    random_model("tiny", predictor=False).save(tmp_path / "m")
    for dtype in ("bf16", "int8"):
        model = vjepa2.load(tmp_path / "m", dtype=dtype)
        assert held_dtype(model) == dtype
        assert held_dtype(load_encoder(str(tmp_path / "m"), dtype=dtype)) == dtype
