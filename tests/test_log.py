import json

import matplotlib.image
import pytest
import torch

from vjepa2.cli import main
from vjepa2.train.log import MetricsLogger, collapse_stats, read_log


def test_jsonl_and_csv_rows(tmp_path):
    logger = MetricsLogger(tmp_path / "log.jsonl", csv_path=tmp_path / "log.csv")
    for step in range(3):
        logger.log(step, loss=torch.tensor(1.0 / (step + 1)), lr=1e-3 * step, note="x")
    logger.close()
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 1, 2]
    assert json.loads(lines[1])["loss"] == pytest.approx(0.5)
    rows = read_log(tmp_path / "log.csv")
    assert [r["loss"] for r in rows] == pytest.approx([1.0, 0.5, 1 / 3])
    assert rows[0]["note"] == "x"


def test_resume_drops_lines_after_the_checkpoint(tmp_path):
    path = tmp_path / "log.jsonl"
    first = MetricsLogger(path, csv_path=tmp_path / "log.csv")
    for step in range(1, 6):
        first.log(step, loss=float(step))
    # The run was killed after step 5 but its checkpoint is at step 3: steps 4 and 5 are redone.
    resumed = MetricsLogger(path, csv_path=tmp_path / "log.csv", resume_step=3)
    for step in (4, 5):
        resumed.log(step, loss=10.0 * step)
    assert [(r["step"], r["loss"]) for r in read_log(path)] == [
        (1, 1.0),
        (2, 2.0),
        (3, 3.0),
        (4, 40.0),
        (5, 50.0),
    ]
    assert [r["step"] for r in read_log(tmp_path / "log.csv")] == [1, 2, 3, 4, 5]
    # A fresh (not resumed) logger starts a new file.
    MetricsLogger(path)
    assert read_log(path) == []


def test_bad_log_line_names_the_file(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match="broken.jsonl:2"):
        read_log(path)


def test_collapse_stats():
    torch.manual_seed(0)
    healthy = collapse_stats(torch.randn(8, 50, 16))
    assert healthy["std_tokens"] == pytest.approx(1.0, abs=0.1)
    # Mean-pooling 50 unit-variance tokens leaves a batch spread of about 1/sqrt(50).
    assert healthy["std_batch"] == pytest.approx(50**-0.5, rel=0.25)
    # Every token of a clip the same: spatial collapse; every clip the same: batch collapse.
    per_clip = torch.randn(8, 1, 16).expand(8, 50, 16)
    assert collapse_stats(per_clip)["std_tokens"] == pytest.approx(0.0, abs=1e-6)
    assert collapse_stats(per_clip)["std_batch"] > 0.5
    same_clip = torch.randn(1, 50, 16).expand(8, 50, 16)
    assert collapse_stats(same_clip)["std_batch"] == pytest.approx(0.0, abs=1e-6)
    assert "std_batch" not in collapse_stats(torch.randn(1, 5, 4))
    with pytest.raises(ValueError, match="B, N, D"):
        collapse_stats(torch.randn(5, 4))


def test_effective_rank_sees_dimensional_collapse():
    torch.manual_seed(0)
    # Isotropic tokens fill every dimension; tokens on a 3-dim subspace (with the spread per
    # token unchanged, so std_tokens stays up) have rank 3, however wide the features are.
    assert collapse_stats(torch.randn(4, 500, 16))["rank"] == pytest.approx(16, rel=0.05)
    flat = torch.randn(4, 500, 3) @ torch.randn(3, 16)
    stats = collapse_stats(flat)
    assert stats["rank"] == pytest.approx(3, rel=0.15)
    assert stats["std_tokens"] > 0.5
    # Unequal variances count less than equal ones: one dominant axis is close to rank 1.
    skewed = torch.randn(4, 500, 16) * torch.tensor([10.0] + [0.1] * 15)
    assert collapse_stats(skewed)["rank"] < 1.5


def test_plot_log_command(tmp_path, user_error):
    logger = MetricsLogger(tmp_path / "log.jsonl")
    for step in range(20):
        logger.log(step, loss=1.0 / (step + 1), lr=1e-4 * step, std_tokens=0.5, tag="a")
    out = tmp_path / "curves.png"
    assert (
        main(["plot-log", str(tmp_path / "log.jsonl"), "keys=[loss, lr]", "smooth=5", "--out", str(out)]) == 0
    )
    image = matplotlib.image.imread(out)
    assert image.shape[0] > image.shape[1] / 2  # two stacked subplots
    # Default: every numeric column, next to the log.
    assert main(["plot-log", str(tmp_path / "log.jsonl")]) == 0
    assert (tmp_path / "log.png").is_file()
    assert "no numeric column ['tag']" in user_error(["plot-log", str(tmp_path / "log.jsonl"), "keys=[tag]"])
