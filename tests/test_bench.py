"""``vjepa2 bench``: its output fields, printed and in bench.json, and the measuring code behind it."""

import json

import pytest
import torch

from vjepa2.cli import main
from vjepa2.models.presets import encoder_config
from vjepa2.runtime import bench

FIELDS = {
    "date", "device", "device_name", "machine", "threads", "torch", "precisions", "matmul_peak_gflops",
    "matmul_size", "encoder", "num_frames", "crop", "batch_size", "repeats", "rows", "skipped", "auto",
}  # fmt: skip
ROW_FIELDS = {"dtype", "seconds", "clips_per_s", "gflops", "fraction_of_peak", "token_cosine"}


@pytest.fixture
def small_peaks(monkeypatch):
    """Matmul peaks measured on small products: the fields, not the figures, are under test."""
    monkeypatch.setattr(bench, "PEAK_SIZE", 256)
    monkeypatch.setattr(bench, "EMULATED_PEAK_SIZE", 64)


def test_bench_prints_and_writes_every_field(tmp_path, capsys, small_peaks):
    args = ["--encoder", "random:tiny", "--num-frames", "4", "--crop", "32", "--batch-size", "2"]
    assert main(["bench", *args, "--repeats", "1", "--out", str(tmp_path / "b")]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert set(result) == FIELDS
    assert (result["device"], result["crop"], result["batch_size"]) == ("cpu", 32, 2)
    timed = [row["dtype"] for row in result["rows"]]
    assert timed[0] == "fp32" and set(timed) | set(result["skipped"]) == set(result["precisions"])
    assert all(result["precisions"][d].startswith("native") for d in timed)
    assert set(result["matmul_peak_gflops"]) >= set(timed)
    for row in result["rows"]:
        assert set(row) == ROW_FIELDS and row["seconds"] > 0
        assert row["clips_per_s"] == pytest.approx(2 / row["seconds"])
        peak = result["matmul_peak_gflops"][row["dtype"]]
        assert row["fraction_of_peak"] == pytest.approx(row["gflops"] / peak)
        assert 0.99 < row["token_cosine"] <= 1.0 + 1e-6
        assert f"| {row['dtype']} | {row['seconds']:.3f} |" in printed
    assert result["auto"]["dtype"] in ("fp32", "bf16", "int8") and result["auto"]["reason"]
    assert f"dtype auto uses: {result['auto']['dtype']}" in printed
    assert "matmul peak: fp32" in printed


def test_bench_without_out_writes_nothing(tmp_path, monkeypatch, capsys, small_peaks):
    monkeypatch.chdir(tmp_path)
    args = ["--encoder", "random:tiny", "--num-frames", "2", "--crop", "32", "--repeats", "1"]
    assert main(["bench", *args]) == 0
    assert "clips/s" in capsys.readouterr().out and not list(tmp_path.iterdir())


def test_flops_count_the_linear_and_attention_work():
    cfg = encoder_config("tiny")
    n = 128
    linear = cfg.depth * 2 * n * (4 * cfg.dim**2 + 2 * cfg.dim * cfg.mlp_hidden)
    assert linear < bench.encoder_flops(cfg, n) < 1.3 * linear  # attention and embedding: the rest
    assert bench.encoder_flops(cfg, 2 * n) > 2 * bench.encoder_flops(cfg, n)  # attention is n^2


def test_interleaved_keeps_the_minimum(monkeypatch):
    clock = iter([0.0, 3.0, 10.0, 11.0, 20.0, 22.0])  # (start, end) of three rounds: 3, 1, 2 s
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    calls = []
    assert bench.interleaved({"f": lambda: calls.append(1)}, 3, torch.device("cpu")) == {"f": 1.0}
    assert len(calls) == 4  # a warm-up call, untimed, then three timed
