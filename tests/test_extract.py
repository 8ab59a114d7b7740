"""`vjepa2 extract`: files, folders and CSVs in; features out; broken files reported and skipped."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import load_file

from vjepa2.cli import main
from vjepa2.data.transforms import eval_transform
from vjepa2.data.video import read_clip, write_video
from vjepa2.evals.features import load_encoder


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
    args = [str(videos), "--encoder", "random:tiny", "--out", str(out), "--num-frames", "4", "--crop", "32"]
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
        ["extract", str(csv), "--encoder", "random:tiny", "--out", str(out), "--pooling", "none",
         "--format", "safetensors", "--one-file", "true", "--num-frames", "4", "--crop", "32", "--layers", "[1, -1]"]
    )  # fmt: skip
    assert code == 0
    feats = load_file(str(out.with_suffix(".safetensors")))
    # 4 frames x 32 px -> 2 x 2 x 2 tokens; two layers concatenated along features
    assert sorted(feats) == ["a", "c"] and feats["a"].shape == (1, 8, 384)


def test_extract_needs_a_checkpoint(videos, capsys):
    # a user's mistake: one line naming the command, exit status 2
    assert main(["extract", str(videos)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vjepa2 extract: error: --encoder is required") and "\n" not in err
    assert main(["extract", str(videos), "--encoder", "random:tiny", "dtype=fp16"]) == 2
    assert "dtype must be one of" in capsys.readouterr().err


@pytest.fixture()
def v21(tmp_path):
    """A random V-JEPA 2.1 tiny model saved in our format."""
    model = load_encoder("random:tiny-2.1", seed=1)
    model.save(tmp_path / "tiny21")
    return model, str(tmp_path / "tiny21")


def _extract(inputs, checkpoint, out, *extra) -> dict[str, np.ndarray]:
    code = main(
        ["extract", *map(str, inputs), "--encoder", checkpoint, "--out", str(out), "dtype=fp32", *extra]
    )
    assert code == 0
    return {p.stem: np.load(p) for p in out.glob("*.npy")}


def test_extract_v21_levels_are_four_normed_levels(videos, v21, tmp_path):
    model, ckpt = v21
    clip = [videos / "a.mp4"]
    args = ["--num-frames", "4", "--crop", "32", "--pooling", "none"]
    levels = _extract(clip, ckpt, tmp_path / "levels", *args, "--levels", "true")["a"]
    plain = _extract(clip, ckpt, tmp_path / "plain", *args)["a"]
    # 4 frames x 32 px -> 2 x 2 x 2 tokens; 4 levels of 192, the last one the plain output
    assert levels.shape == (1, 8, 4 * 192) and plain.shape == (1, 8, 192)
    np.testing.assert_allclose(levels[..., -192:], plain, atol=1e-5)
    frames = read_clip(videos / "a.mp4", num_frames=4, fps=4.0)[0]
    with torch.no_grad():
        blocks = model.encode(
            eval_transform(frames, 32)[None], out_layers=list(model.encoder.cfg.level_layers)
        )
    np.testing.assert_allclose(levels[0], torch.cat(blocks, -1)[0].numpy(), atol=1e-4)


def test_extract_v21_crop_grid_and_images(videos, v21, tmp_path):
    model, ckpt = v21
    image = tmp_path / "still.png"
    pixels = np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image)
    # default crop: the model's own (64 for tiny-2.1; 384 for the releases); an image is one frame
    # through the image tokenizer, batched apart from the 4-frame clip
    feats = _extract(
        [videos / "a.mp4", image], ckpt, tmp_path / "grid", "--num-frames", "4", "--pooling", "grid"
    )
    assert feats["a"].shape == (1, 2, 4, 4, 192) and feats["still"].shape == (1, 1, 4, 4, 192)
    with torch.no_grad():
        want = model.encode(eval_transform(pixels[None], 64)[None])  # (1, 16, 192): T = 1
    np.testing.assert_allclose(feats["still"].reshape(1, 16, 192), want.numpy(), atol=1e-4)
    big = _extract(
        [videos / "a.mp4"], ckpt, tmp_path / "384", "--num-frames", "2", "--crop", "384", "--pooling", "grid"
    )
    assert big["a"].shape == (1, 1, 24, 24, 192)
    # a 2.0 model has no image tokenizer: the image is repeated into a 4-frame clip
    old = _extract(
        [image], "random:tiny", tmp_path / "v20", "--num-frames", "4", "--crop", "32", "--pooling", "none"
    )
    assert old["still"].shape == (1, 8, 192)


def test_extract_levels_need_v21(videos, user_error):
    line = user_error(["extract", str(videos / "a.mp4"), "--encoder", "random:tiny", "--levels", "true"])
    assert "--levels needs a V-JEPA 2.1 model" in line and "V-JEPA 2.0" in line
    line = user_error(
        ["extract", str(videos), "--encoder", "random:tiny-2.1", "--levels", "true", "--layers", "[1]"]
    )
    assert "not both" in line


def test_layers_past_the_depth_are_refused_before_any_work(videos, tmp_path, user_error):
    out = tmp_path / "feats"
    args = ["extract", str(videos), "--encoder", "random:tiny", "--out", str(out)]
    line = user_error([*args, "--layers", "[99]"])
    assert "layers [99]" in line and "random:tiny has 6 blocks" in line and "-6 to 5" in line
    assert "layers [-7]" in user_error([*args, "--layers", "[-1, -7]"])
    assert not out.exists()  # nothing read, nothing written


def test_two_one_file_outputs_in_one_folder_keep_their_own_records(videos, tmp_path, capsys):
    """index.json, errors.json and the parts carry the one file's name: a second one-file output
    in the same folder overwrites nothing of the first, and a rerun of the first still skips."""
    args = [
        "--encoder",
        "random:tiny",
        "--one-file",
        "true",
        "--num-frames",
        "4",
        "--crop",
        "32",
        "dtype=fp32",
    ]
    assert main(["extract", str(videos), "--out", str(tmp_path / "a.npz"), *args]) == 1  # broken.mp4
    assert main(["extract", str(videos / "b.mp4"), "--out", str(tmp_path / "b.npz"), *args]) == 0
    index = {name: json.loads((tmp_path / f"{name}.npz.index.json").read_text()) for name in "ab"}
    assert sorted(index["a"]) == ["a", "b", "c"] and sorted(index["b"]) == ["b"]
    errors = {name: json.loads((tmp_path / f"{name}.npz.errors.json").read_text()) for name in "ab"}
    assert [e["path"] for e in errors["a"]] == [str(videos / "broken.mp4")] and errors["b"] == []
    assert sorted(dict(np.load(tmp_path / "a.npz"))) == ["a", "b", "c"]
    assert sorted(dict(np.load(tmp_path / "b.npz"))) == ["b"]
    assert not (tmp_path / "index.json").exists() and not (tmp_path / "errors.json").exists()
    assert sorted(p.name for p in tmp_path.glob("*.parts")) == ["a.npz.parts", "b.npz.parts"]
    capsys.readouterr()
    assert main(["extract", str(videos), "--out", str(tmp_path / "a.npz"), *args]) == 1
    assert "3 video(s) done by an earlier run, skipped" in capsys.readouterr().out


def test_read_ahead_keeps_the_order_and_reads_ahead_in_threads():
    import threading
    import time

    from vjepa2.evals.commands.extract import read_ahead

    threads = set()

    def read(job):
        threads.add(threading.current_thread().name)
        time.sleep(0.01 * (5 - job % 5))  # later jobs finish first
        return ValueError(job) if job == 3 else job * 10

    for workers in (0, 1, 3):
        threads.clear()
        got = list(read_ahead(iter(range(8)), read, workers))
        assert [job for job, _ in got] == list(range(8))
        assert [r for _, r in got if not isinstance(r, Exception)] == [0, 10, 20, 40, 50, 60, 70]
        assert str(got[3][1]) == "3"
        reader_threads = {t for t in threads if t.startswith("extract-read")}
        assert 1 <= len(reader_threads) <= workers if workers else threads == {"MainThread"}


def record_compile(monkeypatch) -> list:
    """torch.compile replaced by a recorder that returns the function as it is (no compiling here:
    too slow for a test); the list collects the modules whose calls were compiled."""
    calls = []

    def fake(fn, *args, **kwargs):
        calls.append(fn.__self__)
        return fn

    monkeypatch.setattr(torch, "compile", fake)
    return calls


@pytest.mark.parametrize("compile", [False, True])
def test_extract_compile_reaches_torch_compile(videos, tmp_path, monkeypatch, compile):
    from vjepa2.cli import build_parser
    from vjepa2.models.encoder import VideoEncoder

    help_text = " ".join(build_parser("extract").format_help().split())
    assert "--compile" in help_text and "pays only for long runs" in help_text
    calls = record_compile(monkeypatch)
    args = ["extract", str(videos / "a.mp4"), "--encoder", "random:tiny", "--out", str(tmp_path / "f"),
            "--num-frames", "4", "--crop", "32", "--dtype", "fp32"]  # fmt: skip
    assert main(args + (["--compile"] if compile else [])) == 0
    assert len(calls) == int(compile) and all(isinstance(m, VideoEncoder) for m in calls)
    assert np.load(tmp_path / "f" / "a.npy").shape == (1, 192)
