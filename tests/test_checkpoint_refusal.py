"""A checkpoint whose pickle calls code on load is refused, whatever torch's wording: the message
says that nothing was run and never suggests turning the safety off."""

import os
import pickle

import pytest
import torch

from vjepa2.checkpoints import files
from vjepa2.checkpoints.files import CheckpointError, read_torch

UNSAFE_ADVICE = ("weights_only", "trust", "safe_globals", "corrupt")


class RunsCode:
    """Pickled as a call of os.system: loading it unsafely would create ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("zipped", [True, False])
def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path, zipped):
    marker, path = tmp_path / "ran", tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "x": RunsCode(marker)}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(CheckpointError) as caught:
        read_torch(path)
    message = str(caught.value)
    assert not marker.exists()
    assert message.startswith(f"{path}: not a plain-tensor checkpoint") and "system" in message
    assert "none of that code was run" in message and "\n" not in message
    assert not any(word in message for word in UNSAFE_ADVICE)


def test_the_refusal_is_told_by_its_exception_not_its_wording(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)

    def refuse(*args, **kwargs):  # a future torch, another wording, the same exception type
        raise pickle.UnpicklingError(
            "Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` will "
            "likely succeed. Do it only if you trust the source.\n\nSomething new went wrong: opcode 0x93"
        )

    monkeypatch.setattr(files.torch, "load", refuse)
    with pytest.raises(CheckpointError) as caught:
        read_torch(path)
    message = str(caught.value)
    assert "refused by the safe loader: Something new went wrong: opcode 0x93" in message
    assert "nothing in the file was run" in message
    assert "weights_only" not in message and "trust" not in message


def test_the_cli_refuses_in_one_line(tmp_path, user_error):
    path = tmp_path / "evil.pt"
    torch.save(RunsCode(tmp_path / "ran"), path)
    line = user_error(["convert", str(path)])
    assert "posix.system" in line and "none of that code was run" in line and not (tmp_path / "ran").exists()
