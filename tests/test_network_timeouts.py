"""Remote reads end: a loopback server (127.0.0.1, started and stopped here) that hangs, drops the
connection, cuts its answer short or fails for a while; a refused port. Every case finishes in a
few seconds with small timeouts, and its error names the URL and what happened."""

import json
import socket
import time

import pytest
from hostile import Loopback, sample, tiny_video, write_set

from vjepa2.cli import main
from vjepa2.data.shards.local import local_copy
from vjepa2.data.shards.manifest import read_manifest
from vjepa2.data.shards.reader import Lost, iter_samples
from vjepa2.data.shards.remote import Network, RemoteError, open_url, retried

QUICK = Network(connect=1.0, read=0.3, tries=2, backoff=0.01)
FLAGS = ["--connect-timeout", "1", "--read-timeout", "0.3", "--tries", "2"]


@pytest.fixture()
def loopback():
    server = Loopback()
    yield server
    server.close()


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def failure(url: str, network: Network = QUICK) -> RemoteError:
    """The error of reading ``url`` whole, with retries, checked to come within a few seconds."""
    start = time.monotonic()

    def read():
        with open_url(url, network) as fh:
            return fh.read()

    with pytest.raises(RemoteError) as caught:
        retried(network, read)
    assert time.monotonic() - start < 5
    assert str(caught.value).startswith(f"{url}: ")
    return caught.value


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("hang", "no answer for 0.3 s (read timeout) (2 tries)"),
        (("stall", b"x" * 100, 10), "no answer for 0.3 s (read timeout) (2 tries)"),
        ("drop", "connection dropped (2 tries)"),
        (("cut", b"x" * 1000, 10), "connection dropped after 10 of 1000 bytes (2 tries)"),
        (503, "HTTP 503 Service Unavailable (2 tries)"),
    ],
)
def test_each_failure_ends_and_says_what_happened(loopback, answer, reason):
    loopback.routes["/f"] = answer
    assert failure(f"{loopback.url}/f").reason == reason
    assert loopback.hits["/f"] == 2  # tried again once


def test_a_refused_port_is_connection_refused_not_file_not_found():
    url = f"http://127.0.0.1:{refused_port()}/shards/manifest.json"
    error = failure(url)
    assert error.reason == "connection refused (2 tries)"
    with pytest.raises(RemoteError, match="connection refused"):
        read_manifest(url, QUICK)


def test_missing_files_are_not_tried_again_and_passing_failures_are(loopback):
    loopback.routes["/gone"] = 404
    assert failure(f"{loopback.url}/gone").reason == "HTTP 404 Not Found"
    assert loopback.hits["/gone"] == 1
    loopback.routes["/flaky"] = lambda hit: 503 if hit < 3 else b"at last"
    with pytest.raises(RemoteError, match="HTTP 503"):  # one try: it fails
        open_url(f"{loopback.url}/flaky", QUICK)
    patient = Network(connect=1.0, read=0.3, tries=4, backoff=0.01)
    assert retried(patient, lambda: open_url(f"{loopback.url}/flaky", patient).read()) == b"at last"
    assert loopback.hits["/flaky"] == 3


def test_redirects_stay_within_http(loopback):
    loopback.routes["/here"] = b"content"
    loopback.routes["/moved"] = ("redirect", f"{loopback.url}/here")
    loopback.routes["/away"] = ("redirect", "file:///etc/passwd")
    with open_url(f"{loopback.url}/moved", QUICK) as fh:
        assert fh.read() == b"content"
    assert "not an http(s) URL" in failure(f"{loopback.url}/away").reason


def test_extract_from_a_hanging_server_stops_with_one_line(loopback, tmp_path, user_error):
    loopback.routes["/set/manifest.json"] = "hang"
    start = time.monotonic()
    line = user_error(["extract", f"{loopback.url}/set", "--encoder", "random:tiny",
                       "--out", str(tmp_path / "out"), *FLAGS])  # fmt: skip
    assert time.monotonic() - start < 20
    assert f"{loopback.url}/set/manifest.json: no answer for 0.3 s (read timeout) (2 tries)" in line


def test_lost_shards_are_named_member_by_member(loopback, tmp_path):
    video = tiny_video(tmp_path / "v.mp4")
    shards = write_set(tmp_path / "set", [[*sample("a", video), *sample("b", video)], [*sample("c", video)]])
    loopback.serve_folder(shards, "/set")
    loopback.routes["/set/shard-000001.tar"] = "hang"
    items = list(iter_samples([f"{loopback.url}/set"], network=QUICK))
    assert [getattr(item, "key", None) for item in items] == ["a", "b", None]
    assert isinstance(items[2], Lost) and items[2].reason == "no answer for 0.3 s (read timeout)"
    assert items[2].name == f"{loopback.url}/set/shard-000001.tar#member 0"
    out = tmp_path / "out"
    args = ["extract", f"{loopback.url}/set", "--encoder", "random:tiny", "--out", str(out)]
    assert main([*args, "--num-frames", "4", "--crop", "32", "dtype=fp32", *FLAGS]) == 1
    (error,) = json.loads((out / "errors.json").read_text())
    assert error["path"] == items[2].name and "read timeout" in error["error"]
    loopback.routes["/set/shard-000001.tar"] = ("cut", (shards / "shard-000001.tar").read_bytes(), 700)
    with pytest.raises(Exception, match="connection dropped after 700 of"):
        local_copy(f"{loopback.url}/set", cache=tmp_path / "cache", network=QUICK)


def test_pretrain_reads_remote_shards_with_its_network_options(loopback, tmp_path, user_error):
    loopback.routes["/set/manifest.json"] = "hang"
    start = time.monotonic()
    line = user_error(["pretrain", f"{loopback.url}/set", "model.encoder_preset=tiny", f"run.out={tmp_path / 'out'}",
                       "network.read_timeout=0.3", "network.tries=2"])  # fmt: skip
    assert time.monotonic() - start < 20
    assert f"{loopback.url}/set/manifest.json: no answer for 0.3 s (read timeout) (2 tries)" in line
