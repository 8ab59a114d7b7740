"""Released weights by name: the table, downloads through a mirror on a loopback server (resumed,
checked, refused), the offline switch, and Hugging Face repositories from a hand-made cache."""

import hashlib
import json
import shutil

import pytest
import torch
from release_server import WeightsServer, reference_checkpoint, reference_probe

import vjepa2
from vjepa2.checkpoints.hf import export_transformers
from vjepa2.checkpoints.loading import random_model
from vjepa2.cli import main
from vjepa2.errors import MissingPathError, UserError
from vjepa2.models.probe import AttentiveClassifier
from vjepa2.weights import cache, http
from vjepa2.weights.fetch import fetch
from vjepa2.weights.table import TABLE, all_names, find

HF_REPO = "facebook/vjepa2-vitl-fpc64-256"


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A fresh cache, no switch set, retries without pauses."""
    for name in ("VJEPA2_OFFLINE", "HF_HUB_OFFLINE", "VJEPA2_MIRROR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VJEPA2_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(http, "BACKOFF", 0.0)
    monkeypatch.setattr(http, "TIMEOUT", 5.0)
    return monkeypatch


@pytest.fixture
def release(tmp_path):
    """A folder laid out as the release: vitl.pt and evals/ssv2-vitl-16x2x3.pt."""
    root = tmp_path / "release"
    model = reference_checkpoint(root / "vitl.pt")
    probe = reference_probe(root / "evals" / "ssv2-vitl-16x2x3.pt")
    return root, model, probe


@pytest.fixture
def server(release, env):
    with WeightsServer(release[0]) as server:
        env.setenv("VJEPA2_MIRROR", server.url)
        yield server


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_every_name_is_unique_and_every_release_is_listed():
    names = all_names()
    assert len(names) == len(set(names))
    for name in ("vitl", "vjepa2-vitl", "vith", "vitg", "vitg-384", "vjepa2-ac-vitg", "vjepa2_ac_vit_giant",
                 "vjepa2.1-vitb", "vjepa2.1-vitl", "vjepa2.1-vitg", "vjepa2.1-vitG", "ssv2-vitl",
                 "diving48-vitg-384", "ek100-vitl", "facebook/vjepa2-vitg-fpc64-384"):  # fmt: skip
        assert find(name) is not None, name
    assert find("vjepa2.1-vitg").file == "vjepa2_1_vitg_384.pt"
    assert find("vjepa2.1-vitG").file == "vjepa2_1_vitG_384.pt"  # g and G: two models, case counts
    assert find("VITL") is find("vitl")  # elsewhere case does not
    assert find("vitl").url == "https://dl.fbaipublicfiles.com/vjepa2/vitl.pt"
    assert find("ssv2-vitl").url == "https://dl.fbaipublicfiles.com/vjepa2/evals/ssv2-vitl-16x2x3.pt"
    assert find("hf:someone/else").repo == "someone/else"
    assert {e.kind for e in TABLE} == {"encoder", "ac", "probe", "hf"}
    assert all((e.file or e.repo) and e.what for e in TABLE)


def test_download_through_the_mirror_then_load_from_the_cache(server, release, tmp_path):
    root, model, _ = release
    loaded = vjepa2.load("vitl")
    assert same_weights(loaded.encoder, model.encoder) and same_weights(loaded.predictor, model.predictor)
    cached = tmp_path / "cache" / "vitl.pt"
    assert cached.read_bytes() == (root / "vitl.pt").read_bytes()
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    assert cache.sidecar(cached).read_text().split() == [digest, "vitl.pt"]
    assert not cached.with_name("vitl.pt.part").exists()
    asked = len(server.requests)
    vjepa2.load("vjepa2_vit_large")  # another name of the same file: from the cache
    assert len(server.requests) == asked == 1
    probe = vjepa2.load_probe("ssv2-vitl")
    assert same_weights(probe, release[2])
    assert (tmp_path / "cache" / "evals" / "ssv2-vitl-16x2x3.pt").is_file()


def test_a_dropped_connection_resumes_with_a_range_request(server, release, tmp_path):
    server.cut["/vitl.pt"] = 100_000
    path = fetch(find("vitl"))
    assert server.requests == [("/vitl.pt", None), ("/vitl.pt", "bytes=100000-")]
    data = (release[0] / "vitl.pt").read_bytes()
    assert server.if_ranges == [None, server.etag(data)]
    assert path.read_bytes() == data
    assert not http.validator_file(tmp_path / "cache" / "vitl.pt.part").exists()


def _changed_between_runs(server, release, tmp_path):
    """What a run cut after 5,000 bytes of an older release left: the part and the ETag it came
    with (the older file's bytes stand as ``o``s, so that a splice would show)."""
    part = tmp_path / "cache" / "vitl.pt.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"o" * 5000)
    http.validator_file(part).write_text(server.etag(b"the older release") + "\n")
    return (release[0] / "vitl.pt").read_bytes()


def test_a_file_changed_on_the_server_comes_whole_instead_of_spliced(server, release, tmp_path):
    new = _changed_between_runs(server, release, tmp_path)
    assert fetch(find("vitl")).read_bytes() == new
    assert server.requests[-1] == ("/vitl.pt", "bytes=5000-")  # asked, with If-Range: got all of it


def test_a_server_ignoring_if_range_is_caught_by_the_changed_validator(server, release, tmp_path):
    new = _changed_between_runs(server, release, tmp_path)
    server.honour_if_range = False
    assert fetch(find("vitl")).read_bytes() == new
    assert server.requests[-2:] == [("/vitl.pt", "bytes=5000-"), ("/vitl.pt", None)]


def test_a_part_left_by_an_earlier_run_is_resumed(server, release, tmp_path):
    data = (release[0] / "vitl.pt").read_bytes()
    part = tmp_path / "cache" / "vitl.pt.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:5000])
    assert fetch(find("vitl")).read_bytes() == data
    assert server.requests == [("/vitl.pt", "bytes=5000-")]


def test_a_corrupted_file_is_caught_by_its_checksum_and_not_loaded(server, tmp_path, user_error, capsys):
    vjepa2.load("vitl")
    cached = tmp_path / "cache" / "vitl.pt"
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cached.write_bytes(bytes(data))
    with pytest.raises(cache.ChecksumError, match="SHA-256 .* differs .* not loaded"):
        vjepa2.load("vitl")
    assert main(["weights", "verify", "vitl"]) == 1
    assert "BAD vitl" in capsys.readouterr().out
    assert main(["weights", "download", "vitl"]) == 0  # asked to download: fetched again
    assert main(["weights", "verify"]) == 0
    assert "ok  vitl" in capsys.readouterr().out
    vjepa2.load("vitl")


def test_a_download_that_does_not_match_the_pinned_digest_or_size_is_refused(server, env):
    import dataclasses

    wrong = dataclasses.replace(find("vitl"), sha256="0" * 64)
    with pytest.raises(cache.ChecksumError, match="pinned"):
        fetch(wrong)
    assert (
        not cache.cached_file(wrong).exists()
        and not cache.cached_file(wrong).with_suffix(".pt.part").exists()
    )
    with pytest.raises(http.DownloadError, match="offers .* bytes, but this file has 12"):
        fetch(dataclasses.replace(find("vitl"), size=12))


def test_404_is_one_clear_line(server, user_error):
    with pytest.raises(http.DownloadError, match=r"vith.pt: HTTP 404"):
        vjepa2.load("vith")
    line = user_error(["weights", "download", "vith"])
    assert "/vith.pt: HTTP 404" in line
    assert server.requests[-1] == ("/vith.pt", None)  # not retried: the address is wrong


def test_offline_without_a_cache_says_which_file_from_where_to_where(env, tmp_path, user_error):
    env.setenv("VJEPA2_OFFLINE", "1")
    with pytest.raises(MissingPathError) as err:
        vjepa2.load("vjepa2.1-vitl")
    message = str(err.value)
    assert "\n" not in message
    assert "https://dl.fbaipublicfiles.com/vjepa2/vjepa2_1_vitl_dist_vitG_384.pt" in message
    assert str(tmp_path / "cache" / "vjepa2_1_vitl_dist_vitG_384.pt") in message
    assert "VJEPA2_OFFLINE" in message
    assert "downloads are off" in user_error(["extract", "--encoder", "vitl", "x.mp4"])


def test_offline_with_a_cache_or_a_mirror_folder(server, release, env, tmp_path):
    vjepa2.load("vitl")
    env.setenv("HF_HUB_OFFLINE", "1")
    asked = len(server.requests)
    vjepa2.load("vitl")
    assert len(server.requests) == asked
    # a folder mirror is no network: an air-gapped site copies from it (flat layout works too)
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(release[0] / "evals" / "ssv2-vitl-16x2x3.pt", flat)
    env.setenv("VJEPA2_MIRROR", str(flat))
    assert same_weights(vjepa2.load_probe("ssv2-vitl"), release[2])
    with pytest.raises(MissingPathError, match="not in the mirror folder"):
        vjepa2.load("vith")


def test_names_that_are_not_for_this_loader_or_not_known(env):
    with pytest.raises(UserError, match=r"attentive probe.*vjepa2.load_probe\('ssv2-vitl'\)"):
        vjepa2.load("ssv2-vitl")
    with pytest.raises(UserError, match=r"pretrained model.*vjepa2.load\('vitl'\)"):
        vjepa2.load_probe("vitl")
    with pytest.raises(MissingPathError, match="did you mean vitl"):
        vjepa2.load("vitl2")
    with pytest.raises(MissingPathError, match="runs/none.pt: no such file"):
        vjepa2.load("runs/none.pt")


def test_probe_eval_by_a_released_name_reads_clips_as_its_eval_config(server, tmp_path, monkeypatch, capsys):
    """ssv2-vitl: encoder vitl, 16 frames every 4th, 2 segments joined, 3 views, 256 px."""
    from test_probe_train import write_colour_videos

    index = write_colour_videos(tmp_path / "data", [0, 1, 2], "val", frames=24)
    seen = []
    monkeypatch.setattr(AttentiveClassifier, "forward", _recording(AttentiveClassifier.forward, seen))
    out = tmp_path / "eval"
    assert main(["probe", "eval", "--probe", "ssv2-vitl", "--data", str(index), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["encoder"], metrics["num_views"], metrics["num_samples"]) == ("vitl", 3, 3)
    # 3 views a video; 2 segments of 16 frames at 256 px: 2 x 8 x 16 x 16 tokens of ViT-tiny
    assert {tuple(x.shape[1:]) for x in seen} == {(2 * 8 * 16 * 16, 192)}
    assert sum(x.shape[0] for x in seen) == 3 * 3
    assert main(["probe", "eval", "--probe", "ek100-vitl", "--data", str(index), "--out", str(out)]) == 2
    assert "anticipation probe" in capsys.readouterr().err


def _recording(forward, seen):
    def record(self, x):
        seen.append(x)
        return forward(self, x)

    return record


def test_random_by_a_released_name_downloads_nothing(env):
    with torch.device("meta"):
        model = vjepa2.load("random:vjepa2.1-vitl", device="meta")
    assert (model.version, model.encoder.cfg.dim, model.predictor.cfg.out_dim) == ("2.1", 1024, 1664)


def _blob(blobs, data: bytes, lfs: bool) -> str:
    """Store ``data`` as the hub cache does: named by SHA-256 (LFS) or git blob SHA-1."""
    name = (
        hashlib.sha256(data).hexdigest() if lfs else hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    )
    (blobs / name).write_bytes(data)
    return name


def hf_cache(root, model):
    """A huggingface_hub cache holding HF_REPO, made by hand: blobs, a snapshot of links, refs/main."""
    export_transformers(model, root / "export")
    repo = root / "hub" / ("models--" + HF_REPO.replace("/", "--"))
    blobs, snap = repo / "blobs", repo / "snapshots" / ("a1" * 20)
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    for file in ("config.json", "model.safetensors"):
        data = (root / "export" / file).read_bytes()
        (snap / file).symlink_to(f"../../blobs/{_blob(blobs, data, file.endswith('.safetensors'))}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a1" * 20)
    return root / "hub", snap


def test_hub_ids_read_a_prefilled_huggingface_cache_offline(env, tmp_path, capsys, user_error):
    pytest.importorskip("huggingface_hub")
    model = random_model("tiny", depth=1)
    hub, snap = hf_cache(tmp_path, model)
    env.setenv("HF_HUB_CACHE", str(hub))
    env.setenv("HF_HUB_OFFLINE", "1")
    loaded = vjepa2.load(HF_REPO)
    assert same_weights(loaded.encoder, model.encoder)
    assert main(["weights", "path", HF_REPO]) == 0
    assert capsys.readouterr().out.strip() == str(snap)
    assert main(["weights", "verify", HF_REPO]) == 0
    (snap / "config.json").resolve().write_text(json.dumps({"changed": True}))
    assert main(["weights", "verify", HF_REPO]) == 1
    assert "damaged config.json" in capsys.readouterr().out
    line = user_error(["convert", "facebook/vjepa2-vith-fpc64-256"])  # not in the cache
    assert "models--facebook--vjepa2-vith-fpc64-256" in line and "HF_HUB_OFFLINE" in line


def test_cli_list_and_path(env, tmp_path, capsys):
    env.setenv("COLUMNS", "200")  # no name folded over two lines
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("vitl", "vjepa2.1-vitG", "ssv2-vitl", "facebook/vjepa2-vitl-fpc64-256"):
        assert name in out
    assert main(["weights", "list", "--kind", "probe"]) == 0
    assert "vjepa2.1-vitG" not in capsys.readouterr().out
    assert main(["weights", "path", "vitl"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(tmp_path / "cache" / "vitl.pt")
    assert "not downloaded yet" in captured.err


def test_a_server_without_ranges_sends_the_whole_file_again(env, release, serve_folder, tmp_path):
    data = (release[0] / "vitl.pt").read_bytes()
    part = tmp_path / "cache" / "vitl.pt.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 5000)  # not even this file's first bytes: a 200 answer replaces them
    env.setenv("VJEPA2_MIRROR", serve_folder(release[0]) + "/")  # a trailing slash is fine
    assert fetch(find("vitl")).read_bytes() == data
