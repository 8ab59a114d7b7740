"""`vjepa2 extract` under torchrun: the inputs split over processes, one part each, merged; reruns
skip what is done; shard manifests (over HTTP) as inputs."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file

from vjepa2.cli import main
from vjepa2.data.video import write_video

ARGS = ["--encoder", "random:tiny", "--num-frames", "4", "--crop", "32", "dtype=fp32", "batch_size=2"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    for i in range(5):
        write_video(folder / f"v{i}.mp4", rng.integers(0, 255, (6, 32, 40, 3), dtype=np.uint8), fps=4)
    (folder / "broken.mp4").write_bytes(b"not a video" * 20)
    return folder


def features(out) -> dict[str, np.ndarray]:
    return {p.stem: np.load(p) for p in out.glob("*.npy")}


@pytest.mark.slow
def test_two_processes_write_what_one_writes_and_a_rerun_skips_it(videos, tmp_path, capsys):
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun not on PATH")
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["extract", str(videos), "--out", str(one), *ARGS]) == 1  # the broken file
    args = ["torchrun", "--standalone", "--nproc_per_node=2", "-m", "vjepa2", "extract", str(videos)]
    done = subprocess.run([*args, "--out", str(two), *ARGS], capture_output=True, text=True, timeout=180)
    assert done.returncode != 0 and "1 file(s) failed" in done.stdout, done.stderr[-2000:]
    want, got = features(one), features(two)
    assert sorted(got) == sorted(want) == [f"v{i}" for i in range(5)]
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-5)
    ledgers = sorted(p.name for p in (two / "parts").glob("*.jsonl"))
    assert [name.split("-", 2)[-1] for name in ledgers] == [
        "rank00000-of-00002.jsonl",
        "rank00001-of-00002.jsonl",
    ]
    index = json.loads((two / "index.json").read_text())
    assert sorted(index) == sorted(want) and index["v0"]["shape"] == [1, 192]
    errors = json.loads((two / "errors.json").read_text())
    assert [e["path"] for e in errors] == [str(videos / "broken.mp4")]
    # A rerun (here one process) skips every video done; the broken one is tried again.
    stamps = {p.name: p.stat().st_mtime_ns for p in two.glob("*.npy")}
    capsys.readouterr()
    assert main(["extract", str(videos), "--out", str(two), *ARGS]) == 1
    assert "5 video(s) done by an earlier run, skipped" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in two.glob("*.npy")} == stamps
    # Other settings start afresh.
    assert main(["extract", str(videos), "--out", str(two), *ARGS, "--pooling", "none"]) == 1
    assert features(two)["v0"].shape == (1, 8, 192)


def test_shards_over_http_give_the_features_of_the_files(videos, tmp_path, serve_folder):
    assert (
        main(["shards", "make", str(videos), "--out", str(tmp_path / "shards"), "--shard-size-mb", "0.02"])
        == 1
    )
    url = serve_folder(tmp_path / "shards") + "/manifest.json"
    out = tmp_path / "from-shards"
    assert (
        main(["extract", url, "--out", str(out), "--one-file", "true", "--format", "safetensors", *ARGS]) == 0
    )
    got = load_file(str(out.with_suffix(".safetensors")))
    assert main(["extract", str(videos), "--out", str(tmp_path / "files"), *ARGS]) == 1
    want = features(tmp_path / "files")
    keys = [f"{videos.name}-{i:08d}" for i in range(5)]  # the shard keys, in packing order
    assert sorted(got) == keys
    for i, key in enumerate(keys):
        np.testing.assert_allclose(got[key], want[f"v{i}"], rtol=0, atol=1e-5)
    index = json.loads((tmp_path / "from-shards.safetensors.index.json").read_text())  # the file's own
    assert index[keys[0]]["source"] == f"{url[: -len('manifest.json')]}shard-000000.tar#{keys[0]}.mp4"
