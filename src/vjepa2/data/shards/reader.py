"""Streaming samples out of WebDataset shards: split over ranks and loader workers, shuffled in a
buffer, mixed across sources by weight, decoded in the workers, resumable at an exact position.

``ShardClips`` is the torch ``IterableDataset`` of training: each loader worker of each rank is a
slot of ``plan`` and reads only its own shards (sequentially, one forward stream per shard, which
is what object storage and HTTP serve well). The stream is a function of (seed, rank, world size,
workers): ``set_start(batches)`` puts it where it was after this rank had taken ``batches``
batches, re-reading at most one shuffle buffer. A member that cannot be used (a shard cut short,
no video, a refused name) is a ``Lost`` saying why; the stream gives None in its place (as for a
member that cannot be decoded), so positions stay exact and ``collate_skip_bad`` counts it.
Shards are read with their manifest's ``Network`` (timeouts, tries).
"""

from __future__ import annotations

import json
import logging
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from vjepa2.data.clips import load_clips
from vjepa2.data.shards.manifest import Manifest, read_manifest
from vjepa2.data.shards.plan import BLOCK, Piece, SourcePlan, mixture_block, mixture_counts, worker_start
from vjepa2.data.shards.remote import Network, RemoteError, open_url
from vjepa2.data.video import MEDIA_SUFFIXES, EncodedVideo, VideoReadError, read_clip
from vjepa2.errors import UserError
from vjepa2.safe_names import refusal

log = logging.getLogger(__name__)

MEDIA = {suffix.lstrip(".") for suffix in MEDIA_SUFFIXES}
MAX_MEMBER_BYTES = 8 * 2**30  # a member larger than this is not read (where the shard's size is not known)


class ShardError(tarfile.TarError):
    """A shard that cannot be read on (the reason in words)."""


@dataclass
class Sample:
    """One shard member: where it is, its bytes and its sidecar (label, source, path, fps, ...)."""

    shard: int
    member: int  # position in its shard
    key: str
    video: EncodedVideo
    meta: dict


@dataclass
class Lost:
    """A shard member that cannot be used: it never arrived (a shard cut short, a stream that
    broke) or arrived unusable (no video, a broken sidecar, a refused name); ``key`` if known."""

    shard: int
    member: int  # position in its shard
    url: str  # of the shard
    reason: str
    key: str | None = None

    @property
    def name(self) -> str:
        """The member as errors name it: ``<shard url>#<key>`` or ``<shard url>#member <n>``."""
        return f"{self.url}#{self.key}" if isinstance(self.key, str) else f"{self.url}#member {self.member}"


@dataclass
class ShardSource:
    """One source of one manifest, and its weight in the mixture."""

    manifest: Manifest
    index: int  # in manifest.sources
    weight: float

    @property
    def shards(self) -> list[int]:
        return [i for i, s in enumerate(self.manifest.shards) if s.source == self.index and s.count > 0]


def shard_sources(
    sources: list[str], weights: list[float] | None = None, network: Network | None = None
) -> list[ShardSource]:
    """The sources of the manifests ``sources`` (paths, URLs or folders); ``weights``, one per
    manifest, scale each manifest's own source weights (normalised within it); ``network``: how
    the manifests and shards are read (default ``remote.DEFAULT``)."""
    out = []
    for i, source in enumerate(sources):
        manifest = read_manifest(source, network)
        total = sum(s.weight for s in manifest.sources if s.count)
        for index, info in enumerate(manifest.sources):
            if info.count and info.weight > 0:
                scale = weights[i] / total if weights else 1.0
                out.append(ShardSource(manifest, index, info.weight * scale))
    if not out:
        raise UserError(f"no samples in the shards of {', '.join(sources)}")
    return out


def read_shard(manifest: Manifest, piece: Piece, skip: int = 0) -> Iterator[Sample | Lost]:
    """The samples of ``piece`` from its ``skip``-th on; a ``Lost`` for each one that is unusable
    or that the shard lacks (cut short, or its stream broke ``network.tries`` times)."""
    url, info, network = manifest.url(piece.shard), manifest.shards[piece.shard], manifest.network
    wanted = range(piece.offset, info.count, piece.stride)
    done, attempt, reason = skip, 0, "the shard ends before it"
    while done < piece.count:
        try:
            # A shard longer than the manifest says is another file: stop reading it there.
            with open_url(url, network, limit=info.bytes or None) as stream:
                for member, sample in enumerate(shard_members(stream, url, piece.shard, info.bytes or None)):
                    if done >= piece.count:
                        break
                    if member == wanted[done]:
                        done += 1
                        yield sample
            break
        except _stream_errors() as err:
            attempt, reason = attempt + 1, error_text(err)
            if attempt >= network.tries or not _transient(err):
                log.warning("%s: giving up after %d tries (%s); %d samples skipped", url, attempt,
                            reason, piece.count - done)  # fmt: skip
                break
            pause = network.pause(attempt)
            log.warning("%s: %s; reopening in %.1f s (try %d of %d)", url, reason, pause, attempt + 1,
                        network.tries)  # fmt: skip
            time.sleep(pause)
    for position in range(done, piece.count):  # members the shard lacks: keep every later position
        yield Lost(piece.shard, wanted[position], url, reason)


def shard_members(stream, url: str, shard: int, limit: int | None = None) -> Iterator[Sample | Lost]:
    """Every member of the tar stream of shard number ``shard`` in order: a ``Sample``, or a
    ``Lost`` for one without video or sidecar, with a broken sidecar or a refused name. Links and
    other non-files in the tar are passed over (a member of only those has no video). A file that
    declares more than ``limit`` bytes (default ``MAX_MEMBER_BYTES``) ends the shard: ``ShardError``."""
    from webdataset.tariterators import group_by_keys

    for member, group in enumerate(group_by_keys(_tar_files(stream, url, limit or MAX_MEMBER_BYTES))):
        yield _sample(url, shard, member, group)


def _tar_files(stream, url: str, limit: int) -> Iterator[dict]:
    """The regular files of a tar stream as webdataset's file dicts (fname, data, __url__).

    Every header's declared size is checked before the stream moves past it: skipping a member
    in a stream reads its data, and a header declaring petabytes would never be got past."""
    tar = tarfile.open(fileobj=stream, mode="r|*")
    for info in tar:
        if info.size > limit:
            raise ShardError(
                f"member {info.name!r} declares {info.size} bytes, more than the {limit} expected"
            )
        if info.isreg():
            yield {"fname": info.name, "data": tar.extractfile(info).read(), "__url__": url}
        tar.members = []  # a stream of many members: keep none of their headers


def error_text(err: BaseException) -> str:
    """A read error in words (webdataset appends the stream to an error's text: left out)."""
    if isinstance(err, RemoteError):
        return err.reason
    text = str(err.args[0]) if err.args else ""
    return f"{type(err).__name__}: {text.split(' @ ')[0]}" if text else type(err).__name__


def _stream_errors() -> tuple[type[BaseException], ...]:
    """What a broken shard stream raises: file and network errors, a bad tar, a bad group."""
    return (OSError, EOFError, tarfile.TarError, ValueError, UserError)


def _transient(err: BaseException) -> bool:
    """Whether reading the shard again may go further: a network failure that may pass, an I/O
    error; not a bad tar or a missing file (the same bytes would come again)."""
    if isinstance(err, RemoteError):
        return err.transient
    return isinstance(err, OSError)


def _sample(url: str, shard: int, member: int, group: dict) -> Sample | Lost:
    key = group.get("__key__")
    refused = refusal(key)
    suffix = next((k for k in group if k in MEDIA), None)
    if refused is not None:
        reason = f"name refused: {refused}"
    elif suffix is None or "json" not in group:
        reason = "no video or no sidecar"
    else:
        meta = _sidecar(group["json"])
        if meta is not None:
            return Sample(shard, member, key, EncodedVideo(f"{url}#{key}.{suffix}", group[suffix]), meta)
        reason = "a sidecar that is not a JSON object with an integer label"
    log.warning("%s: member %d (%r): %s; skipped", url, member, key, reason)
    return Lost(shard, member, url, reason, key)


def _sidecar(data: bytes) -> dict | None:
    """A member's sidecar, or None when it is not a JSON object with an integer label."""
    try:
        meta = json.loads(data)
    except ValueError:
        return None
    label = meta.get("label", 0) if isinstance(meta, dict) else None
    whole = (isinstance(label, int) and not isinstance(label, bool)) or (
        isinstance(label, float) and label.is_integer()
    )
    return meta if whole else None


def source_stream(manifest: Manifest, plan: SourcePlan, start: int = 0, epochs: int | None = None):
    """(epoch, Sample or Lost) of one source for one slot from stream position ``start`` on, for
    ``epochs`` epochs (None: forever)."""
    epoch, position = plan.locate(start) if epochs is None else (0, start)
    while epochs is None or epoch < epochs:
        length, size = plan.epoch_length(epoch), plan.buffer
        first = position // size
        inputs = _inputs(manifest, plan.pieces(epoch), first * size)
        for index in range(first, -(-length // size)):
            items = [next(inputs) for _ in range(min(size, length - index * size))]
            order = plan.buffer_order(epoch, index, len(items))
            for j in order[position - index * size if index == first else 0 :]:
                yield epoch, items[j]
        epoch, position = epoch + 1, 0


def _inputs(manifest: Manifest, pieces: list[Piece], skip: int) -> Iterator[Sample | Lost]:
    """The samples of ``pieces`` in order, from the ``skip``-th on (whole pieces skipped unread)."""
    for piece in pieces:
        if skip >= piece.count:
            skip -= piece.count
            continue
        yield from read_shard(manifest, piece, skip)
        skip = 0


class ShardClips(torch.utils.data.IterableDataset):
    """Training clips from shard sources, mixed by weight; each item is dict(clip (T, C, crop,
    crop) float32, label, dataset (source number), shard, member, path) or None (unreadable).

    The clip settings are ``VideoDataset``'s (num_frames, fps, crop, ...); a sample's window, crop
    and flip come from (seed, source, shard, member, epoch), independent of ranks and workers.
    ``epochs``: stop after that many epochs of each source, read one after another (evaluation,
    extraction); None: the endless mixture of training.
    """

    def __init__(self, sources: list[ShardSource], num_frames: int = 16, fps: float | None = 4,
                 crop: int = 256, train: bool = True, seed: int = 0, buffer: int = 64, rank: int = 0,
                 world_size: int = 1, batch_size: int = 1, epochs: int | None = None):  # fmt: skip
        self.sources, self.seed, self.buffer, self.epochs = sources, seed, buffer, epochs
        self.num_frames, self.fps, self.frame_step, self.crop, self.train = num_frames, fps, None, crop, train
        self.num_clips, self.sampling = 1, "auto"
        self.rank, self.world_size, self.batch_size, self.start_batches = rank, world_size, batch_size, 0

    def set_start(self, batches: int) -> None:
        """Start where this rank was after taking ``batches`` batches (before iterating)."""
        self.start_batches = batches

    def plans(self, worker: int, workers: int) -> list[SourcePlan]:
        slot, slots = self.rank * workers + worker, self.world_size * workers
        return [
            SourcePlan(
                i,
                s.shards,
                [s.manifest.shards[k].count for k in s.shards],
                slot,
                slots,
                self.seed,
                self.buffer,
                self.train,
            )  # fmt: skip
            for i, s in enumerate(self.sources)
        ]

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if self.epochs is None:
            # A fresh loader takes its first batch from worker 0, which must play the worker whose
            # turn it was when the ``start_batches``-th batch was taken.
            worker = (worker + self.start_batches) % workers
        plans = self.plans(worker, workers)
        if self.epochs is not None:
            for s, plan in zip(self.sources, plans):
                for epoch, sample in source_stream(s.manifest, plan, 0, self.epochs):
                    yield self.item(plan.source, epoch, sample)
            return
        weights = [0.0 if plan.empty else s.weight for s, plan in zip(self.sources, plans)]
        slot = plans[0].slot
        if not any(weights):
            raise UserError(f"the shard sources hold fewer samples than the {plans[0].slots} loader slots "
                            f"(processes x loader workers): nothing for slot {slot}")  # fmt: skip
        start = worker_start(self.start_batches, worker, workers, self.batch_size)
        counts = mixture_counts(weights, self.seed, slot, start)
        streams = [
            None if p.empty else source_stream(s.manifest, p, c)
            for s, p, c in zip(self.sources, plans, counts)
        ]
        position = start
        while True:
            block = mixture_block(weights, self.seed, slot, position // BLOCK)
            for source in block[position % BLOCK :]:
                epoch, sample = next(streams[source])
                yield self.item(int(source), epoch, sample)
            position = (position // BLOCK + 1) * BLOCK

    def item(self, source: int, epoch: int, sample: Sample | Lost) -> dict | None:
        """Decode and transform one sample (in the loader worker) -> the item, or None."""
        if not isinstance(sample, Sample):
            return None
        rng = (
            np.random.default_rng([self.seed, source, sample.shard, sample.member, epoch])
            if self.train
            else None
        )
        try:
            clip = load_clips(self, read_clip, sample.video, rng)
        except (VideoReadError, OSError) as err:
            log.warning("skipping unreadable shard member %s", err)
            return None
        return {"clip": clip, "label": int(sample.meta.get("label", 0)), "dataset": source,
                "shard": sample.shard, "member": sample.member, "path": sample.video.name}  # fmt: skip


def iter_samples(
    sources: list[str], rank: int = 0, world_size: int = 1, network: Network | None = None
) -> Iterator[Sample | Lost]:
    """Every sample of the shard sources once, in shard order, this rank's share (shards split
    over ranks as over loader slots): what extraction reads. Unusable members are ``Lost``."""
    for i, s in enumerate(shard_sources(sources, network=network)):
        plan = SourcePlan(
            i, s.shards, [s.manifest.shards[k].count for k in s.shards], rank, world_size, 0, 1, False
        )
        for _, sample in source_stream(s.manifest, plan, 0, 1):
            yield sample
