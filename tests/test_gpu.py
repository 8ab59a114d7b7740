"""CUDA checks (``pytest -m gpu``; ``benchmarks/gpu_check.sh`` runs them): skipped without a GPU."""

import json

import pytest
import torch

import vjepa2
from vjepa2.cli import main
from vjepa2.models import auto_precision
from vjepa2.models.held import held_dtype

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("autocast", [False, True])
def test_bf16_held_encoder_on_cuda_is_within_its_bound(autocast):
    fp32 = vjepa2.load("random:small", device="cuda").encoder
    bf16 = vjepa2.load("random:small", device="cuda", dtype="bf16").encoder
    assert held_dtype(bf16) == "bf16"
    clip = auto_precision.benchmark_clip(4, 128).cuda()
    with torch.no_grad():
        reference = fp32(clip).float()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            out = bf16(clip).float()
    cosine = torch.nn.functional.cosine_similarity(out, reference, dim=-1).min().item()
    assert auto_precision.BOUNDS["bf16"] <= cosine < 1.0


def test_auto_on_cuda_holds_bf16_and_never_int8(monkeypatch, tmp_path):
    monkeypatch.setattr(auto_precision, "cached", lambda section, key, compute: compute())
    encoder = vjepa2.load("random:small", device="cuda").encoder
    choice = auto_precision.choose(encoder, "cuda", allow_int8=True)
    assert choice.dtype == ("bf16" if torch.cuda.is_bf16_supported() else "fp32"), choice


def test_bench_on_cuda(tmp_path):
    args = ["--device", "cuda", "--encoder", "random:tiny", "--num-frames", "4", "--crop", "64"]
    assert main(["bench", *args, "--repeats", "2", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    timed = {row["dtype"] for row in result["rows"]}
    assert result["device"] == "cuda" and "fp32" in timed and "int8" not in timed
    assert all(row["clips_per_s"] > 0 and row["fraction_of_peak"] > 0 for row in result["rows"])
