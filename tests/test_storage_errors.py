"""A full disk and a read-only folder are one line naming the folder, exit 2, and nothing torn left
behind (no temporary file, no file cut short). Needs a small tmpfs: mounted when the tests run as
root with the right to mount (CI does), skipped with that reason otherwise."""

import os
import subprocess
import sys

import numpy as np
import pytest

from vjepa2.data.video import write_video

TINY_PRETRAIN = ["model.encoder_preset=tiny", "model.predictor_preset=tiny", "model.encoder_overrides={depth: 2}",
                 "model.predictor_overrides={depth: 1}", "data.num_frames=4", "data.crop=32", "data.workers=0",
                 "run.batch_size=2", "run.dtype=fp32", "run.steps=2", "run.checkpoint_every=1"]  # fmt: skip


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    for i in range(6):
        write_video(folder / f"v{i}.mp4", rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8), fps=4)
    return folder


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {done.stderr.decode().strip()}"
        )
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(mount, leave: int) -> None:
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    (mount / "filler").write_bytes(b"\0" * max(0, free - leave))


def vjepa2(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vjepa2", *args], capture_output=True, text=True, timeout=300
    )


def left_behind(folder) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".tmp-" in p.name]


COMMANDS = {
    "pretrain": lambda videos, out: ["pretrain", str(videos), *TINY_PRETRAIN, f"run.out={out}"],
    "extract": lambda videos, out: [
        "extract",
        str(videos),
        "--encoder",
        "random:tiny",
        "--num-frames",
        "4",
        "--crop",
        "32",
        "--dtype",
        "fp32",
        "--out",
        str(out),
    ],  # fmt: skip
    "shards make": lambda videos, out: ["shards", "make", str(videos), "--out", str(out)],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_full_disk_is_one_line_and_leaves_nothing_torn(command, videos, small_disk):
    fill(small_disk, leave=4096)
    out = small_disk / "out"
    done = vjepa2(*COMMANDS[command](videos, out))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert lines[-1].startswith(f"vjepa2 {command}: error: no space left on ") and str(out) in lines[-1]
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert left_behind(small_disk) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_folder_is_one_line(command, videos, small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        done = vjepa2(*COMMANDS[command](videos, small_disk / "out"))
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"vjepa2 {command}: error: cannot write in {small_disk / 'out'}: Read-only file system"
    ], done.stderr
