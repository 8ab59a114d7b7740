"""Shards as a local index, for what reads samples by index (probes, anticipation, physics-eval).

Training streams shards; an evaluation reads its set many times, in any order, several clips a
video: it is fetched once into a cache folder (one file per member, named by its key, and
``index.csv`` of ``path label`` lines), and ``read_index`` reads that. The cache is keyed by the
manifest's URL and contents, so a changed manifest is fetched again.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from vjepa2.atomic import atomic_path
from vjepa2.data.shards.manifest import manifest_url, read_manifest

log = logging.getLogger(__name__)

CACHE = Path.home() / ".cache" / "vjepa2" / "shards"
DONE = "complete"


def local_copy(source: str, cache: str | Path | None = None) -> Path:
    """The ``index.csv`` of a local copy of shard source ``source`` (fetched on first use)."""
    from vjepa2.data.shards.reader import iter_samples  # the reader imports the data sets

    manifest = read_manifest(source)
    digest = hashlib.sha1((manifest_url(source) + manifest.to_json()).encode()).hexdigest()[:16]
    folder = Path(cache or CACHE) / digest
    index = folder / "index.csv"
    if (folder / DONE).is_file():
        return index
    folder.mkdir(parents=True, exist_ok=True)
    lines, missing = [], 0
    for sample in iter_samples([source]):
        if sample is None:
            missing += 1
            continue
        name = f"{sample.key}{Path(sample.video.name).suffix}"
        with atomic_path(folder / name) as tmp:
            tmp.write_bytes(sample.video.data)
        lines.append(f"{name} {int(sample.meta.get('label', 0))}\n")
    if missing:
        log.warning("%s: %d shard members missing, left out of the local copy", source, missing)
    index.write_text("".join(lines))
    (folder / DONE).write_text(manifest_url(source) + "\n")
    print(f"fetched {len(lines)} samples of {source} into {folder}")
    return index
