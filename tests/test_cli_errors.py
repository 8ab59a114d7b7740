"""The CLI answers a user's mistakes in one line, ``vjepa2 <command>: error: ...``, exit status 2,
before anything is written; ``--debug`` shows the traceback, and a bug of ours keeps its own."""

import pytest
import torch

import vjepa2
from vjepa2.cli import main, parse
from vjepa2.errors import UserError
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.presets import encoder_config


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ours")
    vjepa2.VJEPA2(VideoEncoder(encoder_config("tiny", depth=1))).save(folder)
    return folder


def test_a_wrong_value_is_one_line_and_debug_shows_the_traceback(user_error, tmp_path):
    out = tmp_path / "run"
    line = user_error(["pretrain", "run.batch_size=abc", f"run.out={out}"])
    assert line == "vjepa2 pretrain: error: run.batch_size: expected an integer, got 'abc'"
    with pytest.raises(UserError, match="run.batch_size: expected an integer"):
        main(["pretrain", "run.batch_size=abc", f"run.out={out}", "--debug"])
    assert not out.exists()


def test_a_bug_of_ours_keeps_its_traceback(monkeypatch):
    from vjepa2.checkpoints import convert

    def broken(cfg):
        raise KeyError("an internal key")

    monkeypatch.setattr(convert, "run_convert", broken)
    with pytest.raises(KeyError, match="an internal key"):
        main(["convert", "anything.pt"])


def test_unknown_keys_are_refused_before_anything_is_written(user_error, tmp_path):
    out = tmp_path / "run"
    line = user_error(["pretrain", "run.batchsize=8", f"run.out={out}"])
    assert "unknown option 'run.batchsize' (did you mean run.batch_size?)" in line
    line = user_error(["pretrain", "--run.batchsize", "8", f"run.out={out}"])
    assert "unrecognized arguments: --run.batchsize (did you mean --run.batch-size?)" in line
    assert user_error(["pretrian"]) == "vjepa2: error: unknown command 'pretrian' (did you mean 'pretrain'?)"
    assert not out.exists()
    # a word with '=' that names an existing file stays a data path
    odd = tmp_path / "a=b.mp4"
    odd.write_bytes(b"")
    assert parse(["pretrain", str(odd)])[1].sources == [str(odd)]


def test_flags_are_spelled_like_the_fields_or_with_hyphens():
    for args in (
        ["--run.batch_size", "8"],
        ["--run.batch-size", "8"],
        ["--run.batch_size=8"],
        ["run.batch_size=8"],
    ):
        assert parse(["pretrain", *args])[1].run.batch_size == 8


def test_negative_counts_are_refused(user_error):
    assert "batch_size: must be 1 or more, got -3" in user_error(["probe", "train", "--batch-size", "-3"])
    assert "run.steps: must be 0 or more, got -3" in user_error(["train-ac", "--run.steps", "-3"])
    assert "run.batch_size: must be 1 or more, got 0" in user_error(["pretrain", "--run.batch-size", "0"])


def test_a_missing_data_file_writes_nothing(user_error, tmp_path):
    out = tmp_path / "run"
    line = user_error(["pretrain", str(tmp_path / "nowhere"), f"run.out={out}"])
    assert line == f"vjepa2 pretrain: error: data source not found: {tmp_path / 'nowhere'}"
    line = user_error(["train-ac", "--data.source", str(tmp_path / "nowhere"), "--run.out", str(out)])
    assert f"{tmp_path / 'nowhere'}" in line and "not found" in line
    assert not out.exists()


def test_files_that_are_not_checkpoints_are_named(user_error, tmp_path, model_dir):
    empty, junk, unsafe = tmp_path / "empty.pt", tmp_path / "junk.pt", tmp_path / "unsafe.pt"
    empty.write_bytes(b"")
    junk.write_bytes(b"not a checkpoint at all")
    torch.save({"obj": ValueError("x")}, unsafe)
    assert user_error(["convert", str(empty)]).endswith(
        f"{empty}: the file is empty, not a PyTorch checkpoint"
    )
    line = user_error(["convert", str(junk)])
    assert f"{junk}: cannot read the checkpoint (" in line and "()" not in line
    line = user_error(["convert", str(unsafe)])
    assert f"{unsafe}: not a plain-tensor checkpoint" in line and "ValueError" in line
    assert "weights_only" not in line and "trust" not in line
    bare = tmp_path / "bare.safetensors"
    bare.write_bytes((model_dir / "model.safetensors").read_bytes())
    assert f"{bare}: no config.json beside this file" in user_error(["convert", str(bare)])
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "config.json").write_text((model_dir / "config.json").read_text())
    data = (model_dir / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])
    line = user_error(["convert", str(cut)])
    assert f"{cut / 'model.safetensors'}: cannot read the safetensors file" in line and "truncated" in line
    assert "unknown encoder preset 'nope'" in user_error(["extract", str(bare), "--encoder", "random:nope"])
