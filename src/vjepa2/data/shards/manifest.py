"""The manifest of a shard folder, read from wherever it is (local, http(s), s3, gcs) and checked.

A shard folder holds WebDataset tar shards ``shard-000000.tar``, ... (each sample is the members
``<key>.mp4`` (or the file's own suffix) and ``<key>.json``, its sidecar) and ``manifest.json``::

    {"format": "vjepa2-shards", "version": 1,
     "sources": [{"name": "kinetics", "path": "/data/k400.csv", "weight": 1.0, "count": 9, "failed": 1}],
     "shards": [{"url": "shard-000000.tar", "source": 0, "count": 5, "bytes": 123456,
                 "sha256": "9f86d0..."}, ...],
     "failed": [{"path": "/data/bad.mp4", "source": 0, "error": "..."}]}

Every shard holds the samples of one source, so a reader mixes sources by their weights. Shard
urls are relative to the manifest, so the folder can be copied to a web server or a bucket as it
is. ``bytes`` and ``sha256`` (older manifests: no sha256) let a copy be checked.

A manifest from elsewhere is checked entry by entry (one-line errors naming the manifest and the
entry). Its shard urls resolve relative to it and keep its scheme: a remote manifest (http(s),
s3, gs) may list relative urls or absolute urls of its own scheme (http and https count as one),
never a local path or ``file:`` url. A manifest on local disk is the user's own and may list
paths or urls. Reads go through ``remote`` (timeouts, retries).
"""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

from vjepa2.data.shards.remote import DEFAULT, Network, family, open_url, retried
from vjepa2.errors import UserError

MANIFEST = "manifest.json"
FORMAT = "vjepa2-shards"
MAX_BYTES = 256 * 2**20  # a manifest larger than this is not one
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class ShardInfo:
    url: str  # relative to the manifest (or absolute)
    source: int  # index into Manifest.sources
    count: int  # samples
    bytes: int = 0  # size of the tar file (0: not recorded)
    sha256: str = ""  # of the tar file, hex ("": not recorded)


@dataclass
class SourceInfo:
    name: str
    path: str
    weight: float = 1.0
    count: int = 0  # samples packed
    failed: int = 0  # inputs left out (unreadable)


@dataclass
class Manifest:
    sources: list[SourceInfo] = field(default_factory=list)
    shards: list[ShardInfo] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    base: str = ""  # where the manifest was read from (not saved): shard urls are relative to it
    network: Network = DEFAULT  # how its shards are read (not saved)

    def url(self, shard: int) -> str:
        """The full URL (or path) of shard number ``shard``."""
        return shard_location(self.base, self.shards[shard].url)

    def to_json(self) -> str:
        data = {"format": FORMAT, "version": 1, **asdict(self)}
        data.pop("base")
        data.pop("network")
        return json.dumps(data, indent=1)


def join_url(base: str, url: str) -> str:
    if "://" in url or url.startswith("/") or not base:
        return url
    return posixpath.join(base, url) if "://" in base else str(Path(base) / url)


def shard_location(base: str, entry: str) -> str:
    """Where the shard listed as ``entry`` by a manifest in folder (or URL folder) ``base`` is.

    Raises ``UserError`` (the reason, without the manifest's name) for an entry that may not be
    read: a remote manifest's local path, ``file:`` url or url of another scheme."""
    if not isinstance(entry, str) or not entry or any(ord(c) < 32 or ord(c) == 127 for c in entry):
        raise UserError(f"shard url {entry!r} is empty, not text or holds control characters")
    where = family(base) if base else "local"
    if where == "local":
        return join_url(base, entry)
    if "\\" in entry:
        raise UserError(f"shard url {entry!r} holds a backslash")
    if entry.startswith("/"):  # also '//host/...': another host, reached without a scheme
        raise UserError(f"shard url {entry!r}: a {where} manifest may not name an absolute path")
    scheme = urlsplit(entry).scheme.lower()
    if scheme:
        if family(f"{scheme}://") != where:
            raise UserError(
                f"shard url {entry!r}: a {where} manifest may only name shards beside it or {where} urls"
            )
        return entry
    if where == "http":
        return urljoin(base.rstrip("/") + "/", entry)
    parts = urlsplit(base)
    path = posixpath.normpath(posixpath.join(parts.path or "/", entry))
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def is_shard_source(source: str) -> bool:
    """A manifest (path or URL), a folder holding one, or any URL: what the shard reader takes."""
    if "://" in source or source.endswith(MANIFEST):
        return True
    return (Path(source) / MANIFEST).is_file()


def manifest_url(source: str) -> str:
    """The manifest's URL for a shard source: itself, or ``<folder>/manifest.json``."""
    if source.endswith(".json"):
        return source
    return join_url(source.rstrip("/"), MANIFEST) if "://" in source else str(Path(source) / MANIFEST)


def read_manifest(source: str, network: Network | None = None) -> Manifest:
    """The manifest of a shard source (see ``manifest_url``), checked, with ``base`` set; its
    shards are read with ``network`` (default: ``remote.DEFAULT``)."""
    url, network = manifest_url(source), network or DEFAULT

    def fetch() -> bytes:
        with open_url(url, network, limit=MAX_BYTES) as fh:
            return fh.read()

    try:
        data = json.loads(retried(network, fetch))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{url}: not a JSON manifest ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f'{url}: not a shard manifest (no "format": "{FORMAT}")')
    manifest = Manifest(
        sources=[
            _entry(SourceInfo, s, f"sources[{i}]", url) for i, s in enumerate(_list(data, "sources", url))
        ],
        shards=[_entry(ShardInfo, s, f"shards[{i}]", url) for i, s in enumerate(_list(data, "shards", url))],
        failed=[row for row in data.get("failed") or [] if isinstance(row, dict)],
        base=posixpath.dirname(url) if "://" in url else str(Path(url).parent),
        network=network,
    )
    for i, shard in enumerate(manifest.shards):
        if not 0 <= shard.source < len(manifest.sources):
            raise UserError(f"{url}: shards[{i}]: source {shard.source} is not one of its "
                            f"{len(manifest.sources)} sources")  # fmt: skip
        if shard.sha256 and not SHA256.fullmatch(shard.sha256):
            raise UserError(f"{url}: shards[{i}]: sha256 {shard.sha256!r} is not 64 hex digits")
        try:
            manifest.url(i)
        except UserError as err:
            raise UserError(f"{url}: shards[{i}]: {err}") from None
    return manifest


def _list(data: dict, key: str, url: str) -> list:
    value = data.get(key)
    if not isinstance(value, list):
        raise UserError(f'{url}: "{key}" must be a list, got {type(value).__name__}')
    return value


KINDS = {"str": (str,), "int": (int,), "float": (int, float)}


def _entry(cls, row, what: str, url: str):
    """``cls(**row)`` for a ``sources`` or ``shards`` entry, every field of its type (numbers
    finite and >= 0); fields this version does not know are left out."""
    if not isinstance(row, dict):
        raise UserError(f"{url}: {what} must be an object, got {type(row).__name__}")
    values = {}
    for f in fields(cls):
        if f.name not in row:
            if f.default is MISSING:
                raise UserError(f'{url}: {what} has no "{f.name}"')
            continue
        value, kinds = row[f.name], KINDS[f.type]
        number = kinds != (str,)
        if (
            isinstance(value, bool)
            or not isinstance(value, kinds)
            or (number and not (math.isfinite(value) and value >= 0))
        ):
            want = "a number >= 0" if number else "text"
            raise UserError(f"{url}: {what}: {f.name} must be {want}, got {value!r}")
        values[f.name] = value
    return cls(**values)


def file_sha256(path: Path) -> str:
    """The sha256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
