"""`vjepa2 extract`: files, folders and CSVs in; features out; broken files reported and skipped."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from vjepa2.cli import main
from vjepa2.data.video import write_video


@pytest.fixture()
def videos(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "videos"
    folder.mkdir()
    for name, (h, w, t) in {"a": (64, 64, 12), "b": (48, 80, 5), "c": (65, 47, 20)}.items():
        write_video(folder / f"{name}.mp4", rng.integers(0, 255, (t, h, w, 3), dtype=np.uint8), fps=8)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video")
    return folder


def test_extract_folder_with_a_broken_file(videos, tmp_path, capsys):
    out = tmp_path / "feats"
    args = [str(videos), "--checkpoint", "random:tiny", "--out", str(out), "--frames", "4", "--crop", "32"]
    code = main(["extract", *args, "num_clips=2", "batch_size=3", "dtype=fp32"])
    assert code == 1  # one file failed, the others were written
    feats = {p.stem: np.load(p) for p in out.glob("*.npy")}
    assert sorted(feats) == ["a", "b", "c"]
    assert all(f.shape == (2, 192) for f in feats.values())
    errors = json.loads((out / "errors.json").read_text())
    assert len(errors) == 1 and "broken.mp4" in errors[0]["path"] and "broken.mp4" in errors[0]["error"]
    assert "1 file(s) failed" in capsys.readouterr().out


def test_extract_tokens_one_file_from_csv(videos, tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_text("videos/a.mp4 0\nvideos/c.mp4 1\n")
    out = tmp_path / "all"
    code = main(
        ["extract", str(csv), "--checkpoint", "random:tiny", "--out", str(out), "--pooling", "none",
         "--format", "safetensors", "--one-file", "true", "--frames", "4", "--crop", "32", "--layers", "[1, -1]"]
    )  # fmt: skip
    assert code == 0
    feats = load_file(str(out.with_suffix(".safetensors")))
    # 4 frames x 32 px -> 2 x 2 x 2 tokens; two layers concatenated along features
    assert sorted(feats) == ["a", "c"] and feats["a"].shape == (1, 8, 384)


def test_extract_needs_a_checkpoint(videos, capsys):
    # a user's mistake: one line naming the command, exit status 2
    assert main(["extract", str(videos)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vjepa2 extract: error: --checkpoint is required") and "\n" not in err
    assert main(["extract", str(videos), "--checkpoint", "random:tiny", "dtype=fp16"]) == 2
    assert "dtype must be one of" in capsys.readouterr().err
