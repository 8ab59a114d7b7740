"""One writer per output folder (``vjepa2.locks``): a second run stops at once naming the first,
a lock left by a killed run is taken over, a process may nest its own lock."""

import json
import subprocess
import sys
import time

import pytest

from vjepa2.cli import main
from vjepa2.locks import LOCK_FILE, FolderInUseError, folder_lock, lock_path

HOLD = "import sys, time; from vjepa2.locks import folder_lock\n" \
       "with folder_lock(sys.argv[1], 'holder'):\n    print('held', flush=True); time.sleep(60)"  # fmt: skip


@pytest.fixture
def held(tmp_path):
    """A folder whose lock another live process holds."""
    folder = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    yield folder, child.pid
    child.kill()
    child.wait()


def test_a_second_writer_stops_at_once_naming_the_first(held):
    folder, pid = held
    start = time.time()
    with pytest.raises(FolderInUseError, match=rf"{folder} is in use by holder \(pid {pid} on "):
        with folder_lock(folder, "second"):
            pass
    assert time.time() - start < 1


def test_a_training_command_on_a_held_folder_exits_2_with_one_line(held, capsys):
    folder, pid = held
    assert main(["pretrain", f"run.out={folder}", "model.encoder_preset=tiny", "run.steps=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"in use by holder (pid {pid}" in err[0], err


def test_a_lock_left_by_a_killed_run_is_taken_over_and_said(tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / LOCK_FILE).write_text(
        json.dumps({"command": "pretrain", "pid": 999999, "host": "h", "since": "t"})
    )
    with folder_lock(folder, "mine"):
        assert json.loads((folder / LOCK_FILE).read_text())["command"] == "mine"
        with folder_lock(folder, "mine, nested"):  # the same process may take it again
            pass
    assert "taking over the lock of pretrain (pid 999999 on h, since t)" in capsys.readouterr().err
    assert not (folder / LOCK_FILE).exists()  # a clean exit leaves nothing behind


def test_a_run_that_writes_nothing_leaves_no_folder(tmp_path):
    with folder_lock(tmp_path / "new", "x"):
        assert (tmp_path / "new" / LOCK_FILE).is_file()
    assert not (tmp_path / "new").exists()
    assert lock_path(tmp_path / "features.npz") == tmp_path / ".features.npz.lock"


def writing_commands() -> list[tuple[str, str]]:
    """(command, its output option) for every command of the CLI that writes a folder or file."""
    from vjepa2.cli import COMMANDS, _load_command, output_of

    found = []
    for name in COMMANDS:
        cls, _ = _load_command(name)
        cfg = cls()
        for key, holder in (("out", cfg), ("run.out", getattr(cfg, "run", None))):
            if holder is not None and isinstance(getattr(holder, "out", None), str):
                found.append((name, key))
                break
        else:
            assert output_of(cfg) == "", name
    return found


def test_every_writing_command_stops_on_a_held_output(held, capsys):
    folder, pid = held
    commands = writing_commands()
    assert {"extract", "shards make", "pretrain", "train-ac", "vqa train", "probe train"} <= {
        c for c, _ in commands
    }
    for command, key in commands:
        assert main([*command.split(), f"{key}={folder}"]) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{folder} is in use by holder (pid {pid}" in err[0], (command, err)
