import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vjepa2.checkpoints.training import load_checkpoint
from vjepa2.cli import main, parse
from vjepa2.data.shards.manifest import read_manifest
from vjepa2.data.shards.plan import SourcePlan, mixture_counts, worker_start
from vjepa2.data.shards.reader import ShardClips, iter_samples, shard_sources
from vjepa2.train.pretrain import run_pretrain
from vjepa2.worlds.scenes import MakeVideosConfig, run_make_videos

HERE = Path(__file__).resolve().parent
TINY = [
    "model.encoder_preset=tiny",
    "model.predictor_preset=tiny",
    "model.encoder_overrides={depth: 1}",
    "model.predictor_overrides={depth: 1}",
    "data.num_frames=4",
    "data.crop=32",
    "data.workers=0",
    "data.shuffle_buffer=4",
    "run.batch_size=3",
    "run.dtype=fp32",
    "schedule.warmup_steps=2",
    "schedule.constant_steps=2",
    "schedule.cooldown_steps=0",
    "run.checkpoint_every=2",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """12 synthetic world videos (8 frames, 32 px) with their train / val CSV indexes, and a
    third CSV listing two of them, an unreadable file and an image."""
    out = tmp_path_factory.mktemp("world")
    run_make_videos(MakeVideosConfig(out=str(out), num_videos=12, num_frames=8, size=32, workers=1,
                                     task="direction", val_fraction=0.25))  # fmt: skip
    (out / "videos" / "broken.mp4").write_bytes(b"not a video" * 50)
    Image.fromarray(np.full((24, 32, 3), 200, np.uint8)).save(out / "videos" / "still.png")
    train = (out / "direction_train.csv").read_text().splitlines()
    (out / "mixed.csv").write_text(
        "\n".join([*train[:2], "videos/broken.mp4 0", "videos/still.png 7"]) + "\n"
    )
    return out


def make(world: Path, out: Path, *extra: str) -> int:
    sources = [str(world / f"{name}.csv") for name in ("direction_train", "direction_val", "mixed")]
    return main(["shards", "make", *sources, "--out", str(out), "--shard-size-mb", "0.008", *extra])


@pytest.fixture(scope="module")
def shards(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    assert make(world, out, "--weights", "[2, 1, 1]") == 1  # one input left out
    return out


def test_make_packs_every_readable_input_with_its_sidecar(world, shards):
    manifest = read_manifest(str(shards))
    assert [(s.name, s.count, s.failed, s.weight) for s in manifest.sources] == [
        ("direction_train", 9, 0, 2.0),
        ("direction_val", 3, 0, 1.0),
        ("mixed", 3, 1, 1.0),
    ]
    assert [row["path"] for row in manifest.failed] == [str(world / "videos" / "broken.mp4")]
    assert sum(s.count for s in manifest.shards) == 15 and len(manifest.shards) >= 5
    for i, info in enumerate(manifest.shards):
        assert (shards / info.url).stat().st_size == info.bytes and info.url == f"shard-{i:06d}.tar"
    with tarfile.open(shards / manifest.shards[0].url) as tar:
        names = tar.getnames()
        meta = json.load(tar.extractfile(names[0]))
        data = tar.extractfile(names[1]).read()
    assert names[:2] == ["direction_train-00000000.json", "direction_train-00000000.mp4"]
    first, label = (world / "direction_train.csv").read_text().splitlines()[0].split()
    assert data == (world / first).read_bytes()  # the encoded bytes as they are
    assert meta["label"] == int(label) and meta["path"] == first and meta["source"] == "direction_train"
    assert meta["fps"] == 4.0 and meta["frames"] == 8 and meta["duration"] == pytest.approx(2.0)


def test_rerun_redoes_nothing_and_packs_only_new_inputs(world, tmp_path):
    out = tmp_path / "shards"
    make(world, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    assert make(world, out) == 1  # the broken file is probed again, and left out again
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")} == before
    val = (world / "direction_val.csv").read_text().splitlines()
    (world / "mixed.csv").write_text((world / "mixed.csv").read_text() + val[0] + "\n")
    try:
        make(world, out)
    finally:
        (world / "mixed.csv").write_text((world / "mixed.csv").read_text().replace(val[0] + "\n", ""))
    manifest = read_manifest(str(out))
    assert len(manifest.shards) == len(before) + 1 and manifest.shards[-1].count == 1
    assert [s.count for s in manifest.sources] == [9, 3, 4]


def test_plans_cover_every_sample_once_per_epoch():
    counts = [5, 3, 4]
    for slots in (1, 2, 3, 5, 8):  # more slots than shards too: the slots share a shard
        seen = []
        for slot in range(slots):
            plan = SourcePlan(0, [0, 1, 2], counts, slot, slots, seed=1, buffer=4, shuffle=True)
            for piece in plan.pieces(3):
                seen += [(piece.shard, m) for m in range(piece.offset, counts[piece.shard], piece.stride)]
        assert sorted(seen) == [(s, m) for s in range(3) for m in range(counts[s])], slots
    assert worker_start(7, 0, 2, 4) == 16 and worker_start(7, 1, 2, 4) == 12
    weights = [3.0, 1.0]
    assert sum(mixture_counts(weights, 0, 1, 3000)) == 3000
    assert mixture_counts(weights, 0, 1, 3000)[0] == pytest.approx(2250, abs=100)


def corrupt_one_member(folder: Path) -> str:
    """Overwrite the video bytes of one member of the first shard in place -> its name."""
    path = folder / "shard-000000.tar"
    with tarfile.open(path) as tar:
        member = [m for m in tar.getmembers() if m.name.endswith(".mp4")][1]  # the second sample's video
    with open(path, "r+b") as fh:
        fh.seek(member.offset_data)
        fh.write(b"\0" * member.size)
    return member.name


@pytest.mark.slow
def test_two_gloo_ranks_over_http_read_each_sample_once_resume_exactly_and_train(
    shards, serve_folder, tmp_path
):
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun not on PATH")
    served = tmp_path / "served"
    shutil.copytree(shards, served)
    corrupt_one_member(served)
    url = serve_folder(served) + "/manifest.json"
    out = tmp_path / "out"
    out.mkdir()
    args = ["torchrun", "--standalone", "--nproc_per_node=2", str(HERE / "shard_ranks.py"), url, str(out)]
    args += ["--", *TINY, "data.workers=1", "run.batch_size=2"]  # then train, and resume at step 2
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["ranks"] == [0, 1]
    seen = [tuple(pair) for r in ranks for batch in r["epoch"] for pair in batch[:-1]]
    skipped = sum(batch[-1] for r in ranks for batch in r["epoch"])
    manifest = read_manifest(str(shards))
    everything = [(s, m) for s, info in enumerate(manifest.shards) for m in range(info.count)]
    # The corrupt member is skipped and counted; every other sample is read once, by one rank.
    assert skipped == 1 and (0, 1) not in seen
    assert sorted(seen) == [pair for pair in everything if pair != (0, 1)]
    for r in ranks:  # after a restart at batch 3 the same batches follow
        assert r["resumed"] == r["first"][3:]
    assert ranks[0]["first"] != ranks[1]["first"]
    # Pretraining from the stream, resumed from its step-2 checkpoint by the same 2 processes.
    state = load_checkpoint(out / "cut" / "latest.pt")
    assert state["step"] == 4 and state["data"]["world_size"] == 2
    assert [r["clips"] for r in load_checkpoint(out / "whole" / "step_000002.pt")["data"]["ranks"]] == [2, 2]
    assert len(losses(out / "whole")) == 4
    np.testing.assert_allclose(losses(out / "cut"), losses(out / "whole"), rtol=0, atol=1e-6)


def test_extraction_order_splits_shards_over_ranks(shards):
    total = [s.key for s in iter_samples([str(shards)])]
    split = [s.key for r in range(2) for s in iter_samples([str(shards)], r, 2)]
    assert len(total) == 15 and sorted(split) == sorted(total)


def test_the_mixture_follows_the_weights(shards):
    sources = shard_sources([str(shards)])
    assert [s.weight for s in sources] == [2.0, 1.0, 1.0]  # the manifest's
    stream = iter(ShardClips(sources, num_frames=2, fps=None, crop=16, buffer=2))
    items = [next(stream) for _ in range(40)]
    drawn = [item["dataset"] for item in items]
    assert 12 <= drawn.count(0) <= 28 and set(drawn) == {0, 1, 2}
    still = next(item for item in items if item["path"].endswith(".png"))  # the image: a still clip
    assert still["label"] == 7 and still["clip"].shape == (2, 3, 16, 16)
    assert torch.equal(still["clip"][0], still["clip"][1])


def config(url: str, out, *extra: str):
    return parse(["pretrain", url, *TINY, f"run.out={out}", *extra])[1]


def losses(out) -> list[float]:
    return [json.loads(line)["loss"] for line in open(os.path.join(out, "log.jsonl"))]


def test_pretraining_streams_shards_over_http_and_resumes_exactly(shards, serve_folder, tmp_path):
    url = serve_folder(shards)  # a folder URL: its manifest.json
    run_pretrain(config(url, tmp_path / "whole"))
    run_pretrain(config(url, tmp_path / "cut", "run.stop_after=2"))
    state = load_checkpoint(tmp_path / "cut" / "latest.pt")
    assert state["data"] == {"world_size": 1, "ranks": [{"phase": 0, "workers": 0, "clips": 2}]}
    run_pretrain(config(url, tmp_path / "cut"))
    whole, cut = losses(tmp_path / "whole"), losses(tmp_path / "cut")
    assert len(whole) == 4
    np.testing.assert_allclose(cut, whole, rtol=0, atol=1e-6)
    # Without the saved position the resumed run would read the first batches again.
    run_pretrain(config(url, tmp_path / "lost", "run.stop_after=2"))
    state = load_checkpoint(tmp_path / "lost" / "latest.pt")
    state["data"]["ranks"] = [{"phase": 0, "workers": 0, "clips": 0}]
    torch.save(state, tmp_path / "lost" / "latest.pt")
    run_pretrain(config(url, tmp_path / "lost"))
    assert not np.allclose(losses(tmp_path / "lost")[2:], whole[2:], rtol=0, atol=1e-6)


def test_bad_shard_sources_are_one_line_errors(user_error, tmp_path):
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    assert "not a shard manifest" in user_error(["pretrain", str(tmp_path), *TINY])
    assert "file not found" in user_error(["pretrain", str(tmp_path / "nowhere" / "manifest.json")])
    assert "--weights" in user_error(["shards", "make", str(tmp_path), "--weights", "[1, 2]"])
    (tmp_path / "videos").mkdir()
    assert "not both" in user_error(
        ["pretrain", str(tmp_path / "videos"), "http://127.0.0.1:9/shards", *TINY]
    )


def test_evaluations_read_a_local_copy_of_http_shards(world, shards, serve_folder, tmp_path, monkeypatch):
    from vjepa2.data.datasets import VideoDataset, read_index
    from vjepa2.data.shards import local, reader

    monkeypatch.setattr(local, "CACHE", tmp_path / "cache")
    url = serve_folder(shards) + "/manifest.json"
    samples = read_index(url)  # what probes, anticipation and physics-eval read
    first, label = (world / "direction_train.csv").read_text().splitlines()[0].split()
    assert len(samples) == 15 and samples[0][1] == int(label)
    assert samples[0][0].read_bytes() == (world / first).read_bytes()
    assert VideoDataset(url, 4, None, crop=32)[0]["clip"].shape == (4, 3, 32, 32)
    monkeypatch.setattr(reader, "iter_samples", None)  # a second use fetches nothing
    assert read_index(url) == samples


def test_a_shard_cut_short_gives_none_for_its_lost_members(shards, tmp_path, monkeypatch):
    from vjepa2.data.shards import reader

    monkeypatch.setattr(reader.time, "sleep", lambda seconds: None)  # no waiting between tries
    cut = tmp_path / "cut"
    shutil.copytree(shards, cut)
    path = cut / "shard-000000.tar"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    count = read_manifest(str(cut)).shards[0].count
    items = list(ShardClips(shard_sources([str(cut)])[:1], 2, None, 16, train=False, epochs=1))
    lost = [i for i, item in enumerate(items) if item is None]
    assert len(items) == 9 and 0 < len(lost) < count  # every position kept, the lost ones None
    assert lost == list(range(lost[0], count))
