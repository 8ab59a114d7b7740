"""The manifest of a shard folder, and opening shards wherever they are (local, http(s), s3, gcs).

A shard folder holds WebDataset tar shards ``shard-000000.tar``, ... (each sample is the members
``<key>.mp4`` (or the file's own suffix) and ``<key>.json``, its sidecar) and ``manifest.json``::

    {"format": "vjepa2-shards", "version": 1,
     "sources": [{"name": "kinetics", "path": "/data/k400.csv", "weight": 1.0, "count": 9, "failed": 1}],
     "shards": [{"url": "shard-000000.tar", "source": 0, "count": 5, "bytes": 123456}, ...],
     "failed": [{"path": "/data/bad.mp4", "source": 0, "error": "..."}]}

Every shard holds the samples of one source, so a reader mixes sources by their weights. Shard
urls are relative to the manifest, so the folder can be copied to a web server or a bucket as it is.
Any URL ``fsspec`` opens works: plain paths, ``file://``, ``http(s)://`` (through aiohttp),
``s3://`` (the ``s3`` extra: s3fs) and ``gs://`` (the ``gcs`` extra: gcsfs).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vjepa2.errors import MissingPathError, UserError

MANIFEST = "manifest.json"
FORMAT = "vjepa2-shards"
STREAMING = ("http", "https")  # no seeking needed: read these as one forward stream


@dataclass
class ShardInfo:
    url: str  # relative to the manifest (or absolute)
    source: int  # index into Manifest.sources
    count: int  # samples
    bytes: int = 0


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

    def url(self, shard: int) -> str:
        """The full URL (or path) of shard number ``shard``."""
        return join_url(self.base, self.shards[shard].url)

    def to_json(self) -> str:
        data = {"format": FORMAT, "version": 1, **asdict(self)}
        data.pop("base")
        return json.dumps(data, indent=1)


def join_url(base: str, url: str) -> str:
    if "://" in url or url.startswith("/") or not base:
        return url
    return posixpath.join(base, url) if "://" in base else str(Path(base) / url)


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


def open_url(url: str):
    """A binary file object for reading ``url`` with fsspec (close it, or use ``with``)."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as err:  # e.g. s3:// without s3fs
        raise UserError(
            f"{url}: cannot open ({err}); s3/gcs need the extras: pip install vjepa2[s3]"
        ) from None
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    # block_size=0 streams an HTTP body once, in order; without it fsspec asks for byte ranges.
    options = {"block_size": 0} if protocol in STREAMING else {}
    try:
        return fs.open(path, "rb", **options)
    except FileNotFoundError:
        raise MissingPathError(f"file not found: {url}") from None
    except OSError as err:
        raise UserError(f"{url}: cannot open ({err})") from None


def read_manifest(source: str) -> Manifest:
    """The manifest of a shard source (see ``manifest_url``), with ``base`` set."""
    url = manifest_url(source)
    try:
        with open_url(url) as fh:
            data = json.loads(fh.read())
    except json.JSONDecodeError as err:
        raise UserError(f"{url}: not a JSON manifest ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f'{url}: not a shard manifest (no "format": "{FORMAT}")')
    base = posixpath.dirname(url) if "://" in url else str(Path(url).parent)
    return Manifest(
        sources=[SourceInfo(**s) for s in data["sources"]],
        shards=[ShardInfo(**s) for s in data["shards"]],
        failed=list(data.get("failed", [])),
        base=base,
    )
