"""dtype auto: bf16 only where the hardware does it natively; the CLI's OpenMP wait policy."""

import json
import os
import subprocess
import sys

import pytest
import torch

from vjepa2.models import precision


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """Pretend CPU flags (None: unreadable) and a private timing cache."""
    monkeypatch.setattr(precision, "CACHE_FILE", tmp_path / "precision.json")

    def set_flags(flags):
        monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
        precision.fast_bf16.cache_clear()

    yield set_flags
    precision.fast_bf16.cache_clear()


@pytest.mark.parametrize(
    "flags, want",
    [({"avx2", "fma"}, "fp32"), ({"avx2", "avx512_bf16"}, "bf16"), ({"amx_bf16", "amx_tile"}, "bf16")],
)
def test_auto_follows_the_cpu_flags(cpu, flags, want):
    cpu(flags)
    assert precision.resolve_dtype("auto", "cpu") == want
    assert (
        precision.resolve_dtype("fp32", "cpu") == "fp32" and precision.resolve_dtype("bf16", "cpu") == "bf16"
    )
    assert precision.autocast("cpu", "auto").fast_dtype == torch.bfloat16
    assert precision.autocast("cpu", "auto")._enabled == (want == "bf16")
    assert f"precision: {want} (auto" in precision.describe("auto", "cpu")


def test_unreadable_flags_time_a_matmul_once_per_machine(cpu, monkeypatch):
    cpu(None)
    calls = []
    monkeypatch.setattr(precision, "timed_bf16_ratio", lambda: calls.append(1) or 7.5)  # bf16 7.5x slower
    assert precision.resolve_dtype("auto", "cpu") == "fp32"
    precision.fast_bf16.cache_clear()
    assert precision.resolve_dtype("auto", "cpu") == "fp32" and len(calls) == 1  # read from the cache
    cached = json.loads(precision.CACHE_FILE.read_text())
    assert [v["bf16_over_fp32_seconds"] for v in cached.values()] == [7.5]


def test_timed_ratio_is_a_real_measurement():
    ratio = precision.timed_bf16_ratio(size=64, repeats=1)
    assert ratio > 0 and ratio != 1.0


def test_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="unknown dtype 'fp16'"):
        precision.resolve_dtype("fp16")


@pytest.mark.parametrize(
    "gpu, bf16, want", [(False, False, "fp32"), (True, False, "fp32"), (True, True, "bf16")]
)
def test_auto_on_cuda_follows_the_gpu(monkeypatch, gpu, bf16, want):
    """On every machine, GPU or not: the answer for each kind of CUDA device is pretended."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    precision.fast_bf16.cache_clear()
    try:
        assert precision.resolve_dtype("auto", "cuda") == want
    finally:
        precision.fast_bf16.cache_clear()


def _policy(env: dict) -> str:
    code = "import os, vjepa2.cli, torch; print(os.environ['OMP_WAIT_POLICY'])"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout


def test_cli_sets_a_passive_wait_policy_before_torch_loads():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy(env).strip() == "PASSIVE"
    assert _policy(env | {"OMP_WAIT_POLICY": "ACTIVE"}).strip() == "ACTIVE"  # the user's choice wins
    out = subprocess.run(
        [sys.executable, "-c", "import sys, vjepa2.cli; print('torch' in sys.modules)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "False"
