"""Shard sets from elsewhere: member names that try to leave the output folder, links, truncated
and oversized members, bad manifests, partial copies. Nothing may be written outside the output
folder or the cache; every refused member is named in errors.json."""

import json
import tarfile

import numpy as np
import pytest
from hostile import Loopback, declare_size, member, sample, snapshot, tiny_video, write_set

from vjepa2.cli import main
from vjepa2.data.shards.local import local_copy
from vjepa2.data.shards.manifest import read_manifest
from vjepa2.errors import UserError
from vjepa2.safe_names import UnsafeNameError, inside, refusal

EXTRACT = ["--encoder", "random:tiny", "--num-frames", "4", "--crop", "32", "dtype=fp32"]


@pytest.fixture()
def loopback():
    server = Loopback()
    yield server
    server.close()


@pytest.mark.parametrize(
    "name",
    ["../x", "a/../../x", "/etc/x", "a\\b", "a/./b", "./a", "a//b", "a/", "", ".hidden", "x\0y",
     "x\ny", "x\u202ey", "caf\u0065\u0301", " x", "x" * 256],
)  # fmt: skip
def test_unsafe_names_are_refused(name):
    assert refusal(name) is not None


def test_safe_names_stay_inside_even_through_links(tmp_path):
    assert refusal("a/b c/d-e_f.mp4") is None and refusal("caf\u00e9") is None
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir(), elsewhere.mkdir()
    (out / "link").symlink_to(elsewhere)
    (out / "file.npy").symlink_to(elsewhere / "victim.npy")
    (out / "near").symlink_to(out)  # a link that stays inside is fine
    assert inside(out, "near/x.npy") == out / "near" / "x.npy"
    for name in ("link/x.npy", "file.npy"):
        with pytest.raises(UnsafeNameError, match="symbolic link"):
            inside(out, name)


def hostile_members(tmp_path, video: bytes) -> list:
    """One shard: two good samples and eight that must not be written where their names say."""
    link = [
        member("link.json", b'{"label": 0}'),
        member("link.mp4", kind=tarfile.SYMTYPE, link="/etc/passwd"),
    ]
    hard = [member("hard.json", b'{"label": 0}'), member("hard.mp4", kind=tarfile.LNKTYPE, link="good.mp4")]
    bad = ["../../victim", f"{tmp_path}/abs/x", "dir\\evil", "ctl\x07name", "sub/./x"]
    return [*sample("good", video, 3), *sample("nested/ok", video, 1), *link, *hard,
            *[m for key in bad for m in sample(key, video)], *sample("escape/x", video)]  # fmt: skip


def test_extract_writes_nothing_outside_out_and_names_each_refused_member(tmp_path):
    video = tiny_video(tmp_path / "v.mp4")
    shards = write_set(tmp_path / "set", [hostile_members(tmp_path, video)])
    out, outside = tmp_path / "work" / "out", tmp_path / "outside"
    out.mkdir(parents=True), outside.mkdir()
    (out / "escape").symlink_to(outside)  # already in the output folder, leading out of it
    (tmp_path / "victim.npy").write_bytes(b"original")  # where ../../victim would land
    before = snapshot(tmp_path, leave_out=(out,))
    assert main(["extract", str(shards), "--out", str(out), *EXTRACT]) == 1  # refused members failed
    assert snapshot(tmp_path, leave_out=(out,)) == before
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npy"))
    assert written == ["good.npy", "nested/ok.npy"] and np.load(out / "good.npy").shape == (1, 192)
    rows = json.loads((out / "errors.json").read_text())
    errors = {e["path"].split("#", 1)[1].removesuffix(".mp4"): e["error"] for e in rows}
    assert len(errors) == 8
    for key in ("../../victim", f"{tmp_path}/abs/x", "dir\\evil", "ctl\x07name", "sub/./x"):
        assert "name refused" in errors[key]
    assert "no video" in errors["link"] and "no video" in errors["hard"]
    assert "symbolic link" in errors["escape/x"]


def test_the_local_copy_writes_nothing_outside_the_cache(tmp_path):
    video = b"\0not decoded by a copy\0"
    shards = write_set(tmp_path / "set", [hostile_members(tmp_path, video)])
    (tmp_path / "victim.mp4").write_bytes(b"original")
    cache = tmp_path / "cache"
    before = snapshot(tmp_path)
    index = local_copy(str(shards), cache=cache)
    assert snapshot(tmp_path, leave_out=(cache,)) == before
    lines = index.read_text().splitlines()
    assert lines == ["./good.mp4 3", "./nested/ok.mp4 1", "./escape/x.mp4 0"]
    assert all(p.resolve().is_relative_to(cache.resolve()) for p in cache.rglob("*"))
    errors = json.loads((index.parent / "errors.json").read_text())
    assert len(errors) == 7 and all(e["path"].startswith(str(shards / "shard-000000.tar#")) for e in errors)


def test_a_member_declaring_a_huge_size_is_lost_not_read(tmp_path):
    video = tiny_video(tmp_path / "v.mp4")
    shards = write_set(tmp_path / "set", [[*sample("a", video), *sample("b", video)]], sizes=False)
    declare_size(shards / "shard-000000.tar", 3, 10**15)  # b.mp4 claims a petabyte
    with pytest.raises(UserError, match="did not arrive whole"):
        local_copy(str(shards), cache=tmp_path / "cache")
    out = tmp_path / "out"
    assert main(["extract", str(shards), "--out", str(out), *EXTRACT]) == 1
    assert [p.name for p in out.glob("*.npy")] == ["a.npy"]
    (error,) = json.loads((out / "errors.json").read_text())
    assert (
        error["path"].endswith("shard-000000.tar#member 1")
        and "declares 1000000000000000 bytes" in error["error"]
    )


def two_shards(folder):
    """Two shards of two samples each, ``s<shard>-<n>`` of video bytes ``video <shard> <n>``."""
    shards = [
        [m for j in range(2) for m in sample(f"s{i}-{j}", f"video {i} {j}".encode(), j)] for i in range(2)
    ]
    return write_set(folder, shards)


def test_a_partial_copy_is_refused_then_fetched_again_once_repaired(tmp_path, serve_folder):
    shards = two_shards(tmp_path / "set")
    url = serve_folder(shards)
    good = (shards / "shard-000001.tar").read_bytes()
    (shards / "shard-000001.tar").write_bytes(good[: len(good) // 2])
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match=r"1 of 2 shards \(2 samples\) did not arrive whole") as caught:
        local_copy(url, cache=cache)
    assert "shard-000001.tar" in str(caught.value) and "bytes arrived" in str(caught.value)
    (folder,) = cache.iterdir()
    assert not (folder / "index.csv").exists()
    assert [e["path"] for e in json.loads((folder / "errors.json").read_text())] == [
        f"{url}/shard-000001.tar"
    ]
    (shards / "shard-000001.tar").write_bytes(good)  # repaired: only that shard is fetched again
    first = (folder / "s0-0.mp4").stat().st_mtime_ns
    assert len(local_copy(url, cache=cache).read_text().splitlines()) == 4
    assert (folder / "s0-0.mp4").stat().st_mtime_ns == first
    # A reused copy is checked: a member gone or changed is fetched again.
    (folder / "s1-1.mp4").unlink()
    (folder / "s0-0.mp4").write_bytes(b"changed in the cache")
    local_copy(url, cache=cache)
    assert (folder / "s1-1.mp4").read_bytes() == b"video 1 1" and (
        folder / "s0-0.mp4"
    ).read_bytes() == b"video 0 0"


def test_a_shard_that_differs_from_its_manifest_is_not_trusted(tmp_path):
    shards = two_shards(tmp_path / "set")
    same_size = (shards / "shard-000000.tar").read_bytes().replace(b"video 0 1", b"video 0 X")
    (shards / "shard-000000.tar").write_bytes(same_size)
    with pytest.raises(UserError, match="sha256"):
        local_copy(str(shards), cache=tmp_path / "cache")
    old = two_shards(tmp_path / "old")  # an older manifest: no sizes, only counts
    manifest = json.loads((old / "manifest.json").read_text())
    for entry in manifest["shards"]:
        entry.pop("bytes"), entry.pop("sha256")
    manifest["shards"][1]["count"] = 3
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="2 members arrived, the manifest lists 3"):
        local_copy(str(old), cache=tmp_path / "cache")


def test_extract_reruns_redo_outputs_that_vanished(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i, name in enumerate("abc"):
        tiny_video(videos / f"{name}.mp4", seed=i)
    out = tmp_path / "out"
    args = ["extract", str(videos), "--out", str(out), *EXTRACT]
    assert main(args) == 0
    first = np.load(out / "a.npy")
    (out / "a.npy").unlink()
    (out / "b.npy").write_bytes(b"cut")
    capsys.readouterr()
    assert main(args) == 0
    assert "1 video(s) done by an earlier run, skipped" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(out / "a.npy"), first)
    assert np.load(out / "b.npy").shape == first.shape
    assert sorted(json.loads((out / "index.json").read_text())) == ["a", "b", "c"]


BAD_MANIFESTS = [
    ("not json", "not a JSON manifest"),
    ({"format": "other"}, "not a shard manifest"),
    ({"shards": {}}, '"shards" must be a list'),
    ({"shards": [{"source": 0, "count": 1}]}, 'shards\\[0\\] has no "url"'),
    ({"shards": [{"url": "a.tar", "source": 0, "count": -1}]}, "count must be a number >= 0"),
    ({"shards": [{"url": "a.tar", "source": 0, "count": "5"}]}, "count must be a number >= 0"),
    ({"shards": [{"url": "a.tar", "source": 3, "count": 1}]}, "source 3 is not one of its 1 sources"),
    ({"shards": [{"url": "a.tar", "source": 0, "count": 1, "sha256": "abc"}]}, "not 64 hex digits"),
    ({"shards": [{"url": "a\0.tar", "source": 0, "count": 1}]}, "control characters"),
    ({"sources": [{"name": "x", "path": "p", "weight": float("nan")}]}, "weight must be a number"),
]


@pytest.mark.parametrize("data, message", BAD_MANIFESTS)
def test_bad_manifests_are_one_line_errors(tmp_path, data, message):
    manifest = {
        "format": "vjepa2-shards",
        "version": 1,
        "sources": [{"name": "x", "path": "p"}],
        "shards": [],
    }
    text = data if isinstance(data, str) else json.dumps({**manifest, **data})
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(UserError, match=message) as caught:
        read_manifest(str(tmp_path))
    assert str(tmp_path / "manifest.json") in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "entry", ["/etc/passwd", "file:///etc/passwd", "file:/etc/passwd", "s3://bucket/a.tar", "//evil/a.tar"]
)
def test_a_remote_manifest_may_not_name_local_files(loopback, entry, user_error):
    manifest = {"format": "vjepa2-shards", "version": 1, "sources": [{"name": "x", "path": "p", "count": 1}],
                "shards": [{"url": entry, "source": 0, "count": 1}]}  # fmt: skip
    loopback.routes["/set/manifest.json"] = json.dumps(manifest).encode()
    url = f"{loopback.url}/set/manifest.json"
    line = user_error(["pretrain", url, "model.encoder_preset=tiny"])
    assert url in line and "shards[0]" in line and repr(entry) in line


def test_a_remote_manifest_names_shards_beside_it_or_of_its_scheme(loopback, tmp_path):
    shards = two_shards(tmp_path / "set")
    manifest = json.loads((shards / "manifest.json").read_text())
    manifest["shards"][0]["url"] = "../elsewhere/shard-000000.tar"
    manifest["shards"][1]["url"] = f"{loopback.url}/set/shard-000001.tar"
    loopback.serve_folder(shards, "/set")
    loopback.routes["/elsewhere/shard-000000.tar"] = (shards / "shard-000000.tar").read_bytes()
    loopback.routes["/set/manifest.json"] = json.dumps(manifest).encode()
    read = read_manifest(f"{loopback.url}/set")
    assert [read.url(i) for i in range(2)] == [f"{loopback.url}/elsewhere/shard-000000.tar",
                                               f"{loopback.url}/set/shard-000001.tar"]  # fmt: skip
    assert len(local_copy(f"{loopback.url}/set", cache=tmp_path / "cache").read_text().splitlines()) == 4
