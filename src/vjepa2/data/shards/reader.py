"""Streaming samples out of WebDataset shards: split over ranks and loader workers, shuffled in a
buffer, mixed across sources by weight, decoded in the workers, resumable at an exact position.

``ShardClips`` is the torch ``IterableDataset`` of training: each loader worker of each rank is a
slot of ``plan`` and reads only its own shards (sequentially, one forward stream per shard, which
is what object storage and HTTP serve well). The stream is a function of (seed, rank, world size,
workers): ``set_start(batches)`` puts it where it was after this rank had taken ``batches``
batches, re-reading at most one shuffle buffer. A member that cannot be decoded (or a shard cut
short) gives None in its place, so positions stay exact and ``collate_skip_bad`` counts it.
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

from vjepa2.data.datasets import MEDIA_SUFFIXES, load_clips
from vjepa2.data.shards.manifest import Manifest, open_url, read_manifest
from vjepa2.data.shards.plan import BLOCK, Piece, SourcePlan, mixture_block, mixture_counts, worker_start
from vjepa2.data.video import EncodedVideo, VideoReadError, read_clip
from vjepa2.errors import UserError

log = logging.getLogger(__name__)

MEDIA = {suffix.lstrip(".") for suffix in MEDIA_SUFFIXES}
RETRIES = 3  # a shard whose stream breaks is reopened this many times (then its rest is skipped)


@dataclass
class Sample:
    """One shard member: where it is, its bytes and its sidecar (label, source, path, fps, ...)."""

    shard: int
    member: int  # position in its shard
    key: str
    video: EncodedVideo
    meta: dict


@dataclass
class ShardSource:
    """One source of one manifest, and its weight in the mixture."""

    manifest: Manifest
    index: int  # in manifest.sources
    weight: float

    @property
    def shards(self) -> list[int]:
        return [i for i, s in enumerate(self.manifest.shards) if s.source == self.index and s.count > 0]


def shard_sources(sources: list[str], weights: list[float] | None = None) -> list[ShardSource]:
    """The sources of the manifests ``sources`` (paths, URLs or folders); ``weights``, one per
    manifest, scale each manifest's own source weights (normalised within it)."""
    out = []
    for i, source in enumerate(sources):
        manifest = read_manifest(source)
        total = sum(s.weight for s in manifest.sources if s.count)
        for index, info in enumerate(manifest.sources):
            if info.count and info.weight > 0:
                scale = weights[i] / total if weights else 1.0
                out.append(ShardSource(manifest, index, info.weight * scale))
    if not out:
        raise UserError(f"no samples in the shards of {', '.join(sources)}")
    return out


def read_shard(manifest: Manifest, piece: Piece, skip: int = 0) -> Iterator[Sample | None]:
    """The samples of ``piece`` from its ``skip``-th on; None for each one the shard lacks (cut
    short, or its stream broke ``RETRIES`` times)."""
    from webdataset.tariterators import group_by_keys, tar_file_iterator

    url, wanted = (
        manifest.url(piece.shard),
        range(piece.offset, manifest.shards[piece.shard].count, piece.stride),
    )
    done, attempt = skip, 0
    while done < piece.count:
        try:
            with open_url(url) as stream:
                files = ({**f, "__url__": url} for f in tar_file_iterator(stream))
                for member, sample in enumerate(group_by_keys(files)):
                    if done >= piece.count:
                        break
                    if member == wanted[done]:
                        done += 1
                        yield _sample(url, piece.shard, member, sample)
            break
        except _stream_errors() as err:
            attempt += 1
            if attempt > RETRIES:
                log.warning("%s: giving up after %d tries (%s); %d samples skipped", url, attempt,
                            err, piece.count - done)  # fmt: skip
                break
            log.warning("%s: %s; reopening (try %d of %d)", url, err, attempt, RETRIES)
            time.sleep(0.2 * attempt)
    for _ in range(done, piece.count):  # members the shard lacks: keep every later position
        yield None


def _stream_errors() -> tuple[type[BaseException], ...]:
    """What a broken shard stream raises: file and network errors, a bad tar, a bad group."""
    errors = (OSError, tarfile.TarError, ValueError, UserError)
    try:
        import aiohttp

        return (*errors, aiohttp.ClientError)
    except ImportError:
        return errors


def _sample(url: str, shard: int, member: int, sample: dict) -> Sample | None:
    suffix = next((k for k in sample if k in MEDIA), None)
    if suffix is None or "json" not in sample:
        log.warning("%s: member %s has no video or no sidecar", url, sample.get("__key__"))
        return None
    try:
        meta = json.loads(sample["json"])
    except ValueError:
        log.warning("%s: member %s has a broken sidecar", url, sample["__key__"])
        return None
    key = sample["__key__"]
    return Sample(shard, member, key, EncodedVideo(f"{url}#{key}.{suffix}", sample[suffix]), meta)


def source_stream(manifest: Manifest, plan: SourcePlan, start: int = 0, epochs: int | None = None):
    """(epoch, Sample or None) of one source for one slot from stream position ``start`` on, for
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


def _inputs(manifest: Manifest, pieces: list[Piece], skip: int) -> Iterator[Sample | None]:
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

    def item(self, source: int, epoch: int, sample: Sample | None) -> dict | None:
        """Decode and transform one sample (in the loader worker) -> the item, or None."""
        if sample is None:
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


def iter_samples(sources: list[str], rank: int = 0, world_size: int = 1) -> Iterator[Sample | None]:
    """Every sample of the shard sources once, in shard order, this rank's share (shards split
    over ranks as over loader slots): what extraction reads."""
    for i, s in enumerate(shard_sources(sources)):
        plan = SourcePlan(
            i, s.shards, [s.manifest.shards[k].count for k in s.shards], rank, world_size, 0, 1, False
        )
        for _, sample in source_stream(s.manifest, plan, 0, 1):
            yield sample
