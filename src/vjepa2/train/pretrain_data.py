"""What pretraining draws: the phases (main, cooldown), and per phase a stream of this rank's
micro-batches with the mask generators of their token grid (the sections it reads are in
``pretrain_config``).

With 2.1 image batches (``images.batch_size``) each stream carries a second stream of 1-frame
clips from the image sources, or from the clip sources' videos (one random frame each) when none
is given, with its own mask generators; a step draws one micro-batch of each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from vjepa2.atomic import atomic_write_json
from vjepa2.data.datasets import MixtureDataset, VideoDataset, WeightedDistributedSampler, collate_skip_bad
from vjepa2.data.memory import DecodedVideos
from vjepa2.data.shards.manifest import is_shard_source
from vjepa2.data.shards.reader import ShardClips, shard_sources
from vjepa2.masks import MaskGenerator, make_generators
from vjepa2.models.encoder import VideoEncoder
from vjepa2.runtime import distributed as dist
from vjepa2.train.jepa import View
from vjepa2.train.pretrain_config import DataConfig, PretrainConfig


@dataclass
class Phase:
    """A stretch of steps with one clip setting: the main phase, then optionally the cooldown."""

    index: int
    start: int
    end: int
    frames: int
    crop: int
    batch_size: int
    images: int = 0  # images per micro-batch (2.1)


def phases(cfg: PretrainConfig) -> list[Phase]:
    total = cfg.run.steps or cfg.schedule.total_steps
    main = Phase(0, 0, total, cfg.data.num_frames, cfg.data.crop, cfg.run.batch_size, cfg.images.batch_size)
    cool, c = cfg.schedule.warmup_steps + cfg.schedule.constant_steps, cfg.cooldown
    if not 0 < cool < total or not (c.num_frames or c.crop or c.batch_size or c.image_batch_size):
        return [main]
    main.end = cool
    sizes = (c.num_frames or main.frames, c.crop or main.crop, c.batch_size or main.batch_size)
    return [main, Phase(1, cool, total, *sizes, c.image_batch_size or main.images)]


def synthetic_source(data: DataConfig, frames: int, size: int) -> Path:
    """A folder of generated physics videos (made once, then reused from the cache)."""
    from vjepa2.worlds.scenes import WORLD_VERSION, MakeVideosConfig, run_make_videos

    texture = f"-texture{data.synthetic_texture:g}" if data.synthetic_texture else ""
    name = f"synthetic-{data.synthetic_videos}x{frames}f-{size}px{texture}"
    folder = Path(data.synthetic_dir or Path.home() / ".cache" / "vjepa2" / name)
    marker = folder / "complete.json"
    clips = {"num_videos": data.synthetic_videos, "num_frames": frames, "size": size, "fps": data.fps}
    if data.synthetic_texture:  # flat-world markers stay as they were: no remaking of old caches
        clips["texture"] = data.synthetic_texture
    want = {**clips, "world_version": WORLD_VERSION}
    if dist.is_main() and not (marker.is_file() and json.loads(marker.read_text()) == want):
        print(f"generating {data.synthetic_videos} synthetic videos in {folder}")
        workers = max(1, data.workers)
        run_make_videos(MakeVideosConfig(out=str(folder), **clips, workers=workers, task="direction"))
        atomic_write_json(marker, want, indent=None)
    dist.barrier()
    return folder / "videos"


CHUNK_STEPS = 500  # the sampler draws its stream this many optimizer steps at a time


def micro_batches(
    cfg: PretrainConfig,
    phase: Phase,
    sources: list[str],
    info: dist.DistInfo,
    step: int,
    weights: list[float] | None = None,
    seed: int = 0,
    start_batches: int = 0,
):
    """This rank's micro-batches (clips of ``phase.frames`` frames, ``phase.crop`` pixels, of the
    ``sources`` mixed by ``weights``, drawn with ``cfg.run.seed + seed``) from optimizer step
    ``step`` of ``phase`` on, forever.

    Files and folders: the global stream of samples does not depend on the number of processes:
    rank r takes positions r, r + world_size, ... so N processes with batch B see what one process
    with batch N * B sees. The stream position is a function of the step: resuming needs no
    loader state. Shard sources (manifests): see ``shard_batches``; ``start_batches`` is the
    number of batches this rank had taken from this phase's stream.
    """
    if all(map(is_shard_source, sources)):  # pretrain.check refuses a mix of shards and files
        return shard_batches(cfg, phase, sources, info, weights, cfg.run.seed + seed, start_batches)
    return file_batches(cfg, phase, sources, info, step, weights, seed)


def file_batches(cfg, phase, sources, info, step, weights, seed):
    """``micro_batches`` of files and folders."""
    memory = DecodedVideos(cfg.data.memory_mb) if cfg.data.memory_mb else None  # one budget for all sources
    seed = cfg.run.seed + seed
    parts = [
        VideoDataset(s, phase.frames, cfg.data.fps, crop=phase.crop, seed=seed, memory=memory)
        for s in sources
    ]
    dataset = parts[0] if len(parts) == 1 else MixtureDataset(parts, weights)
    per_step = phase.batch_size * cfg.run.accum  # this rank's samples per optimizer step
    chunk = per_step * CHUNK_STEPS
    seed, world = seed + phase.index, info.world_size
    sampler = WeightedDistributedSampler(dataset.sample_weights, chunk * world, info.rank, world, seed)
    loader = torch.utils.data.DataLoader(
        dataset,
        phase.batch_size,
        sampler=sampler,
        num_workers=cfg.data.workers,
        collate_fn=collate_skip_bad,
        persistent_workers=cfg.data.workers > 0,  # workers keep their decoded videos between chunks
    )
    epoch, start = divmod((step - phase.start) * per_step, chunk)
    while True:
        sampler.set_epoch(epoch, start)
        yield from loader
        epoch, start = epoch + 1, 0


def shard_batches(cfg, phase, sources, info, weights, seed, start_batches):
    """``micro_batches`` streamed from WebDataset shards (``vjepa2.data.shards.reader``): each
    loader worker of each rank reads its own shards, so the stream depends on the number of
    processes and workers; it starts after this rank's first ``start_batches`` batches."""
    dataset = ShardClips(
        shard_sources(sources, weights, cfg.network.network()),
        phase.frames,
        cfg.data.fps,
        phase.crop,
        seed=seed + phase.index,
        buffer=cfg.data.shuffle_buffer,
        rank=info.rank,
        world_size=info.world_size,
        batch_size=phase.batch_size,
    )
    dataset.set_start(start_batches)
    loader = torch.utils.data.DataLoader(
        dataset, phase.batch_size, num_workers=cfg.data.workers, collate_fn=collate_skip_bad
    )
    return iter(loader)  # endless


class Counted:
    """An iterator that counts what it has given (``count``, from ``start``)."""

    def __init__(self, items: Iterator, start: int = 0):
        self.items, self.count = items, start

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self.items)
        self.count += 1
        return item


@dataclass
class Stream:
    """What one phase draws: this rank's micro-batches and the mask generators of its clip grid;
    with 2.1 image batches, the images' own stream (a phase of 1-frame clips)."""

    phase: Phase
    batches: Counted  # of dicts
    generators: list[MaskGenerator]
    images: Stream | None = None

    def position(self, workers: int) -> dict:
        """Where the streams are: {"phase", "workers" (data.workers), "clips": batches taken,
        "images": ...}; what ``open_stream`` takes to go on from there (shard sources need it)."""
        out = {"phase": self.phase.index, "workers": workers, "clips": self.batches.count}
        if self.images is not None:
            out["images"] = self.images.batches.count
        return out


IMAGE_SEED = 1000  # the image stream's seed offset: its draws are unrelated to the clips'


def open_stream(
    cfg: PretrainConfig,
    phase: Phase,
    sources: list[str],
    info: dist.DistInfo,
    encoder: VideoEncoder,
    step: int,
    position: dict | None = None,
) -> Stream:
    """The stream of ``phase`` from ``step`` on; ``encoder`` gives the token grids of its masks;
    ``position``: a ``Stream.position()`` saved in the checkpoint resumed from."""
    taken = position if position and position.get("phase") == phase.index else {}
    if taken and taken.get("workers", cfg.data.workers) != cfg.data.workers:
        if info.is_main:  # shard streams are split over loader workers: another count, other streams
            print(f"pretrain: the data position was saved with data.workers={taken['workers']}, not "
                  f"{cfg.data.workers}: shard streams start again")  # fmt: skip
        taken = {}
    grid = encoder.grid((1, phase.frames, 3, phase.crop, phase.crop))
    clips = taken.get("clips", 0)
    batches = micro_batches(cfg, phase, sources, info, step, cfg.data.weights or None, 0, clips)
    stream = Stream(phase, Counted(batches, clips), make_generators(cfg.masks, grid, cfg.run.seed))
    if phase.images:
        # Images from their own sources, else one frame of each drawn clip source's video.
        shots = replace(phase, frames=1, crop=cfg.images.crop or cfg.data.crop, batch_size=phase.images)
        image_sources = cfg.images.sources or sources
        weights = None if cfg.images.sources else cfg.data.weights or None
        images = taken.get("images", 0)
        batches = micro_batches(cfg, shots, image_sources, info, step, weights, IMAGE_SEED, images)
        grid = encoder.grid((1, 1, 3, shots.crop, shots.crop))  # (1, h, w)
        # The image generators are numbered on after the clip generators (their seeds).
        generators = make_generators(cfg.images.masks, grid, cfg.run.seed + len(cfg.masks))
        stream.images = Stream(shots, Counted(batches, images), generators)
    return stream


def draw_view(
    stream: Stream, masks: tuple[list, list], micro: int, device, modality: str
) -> tuple[View, int]:
    """Micro-batch ``micro`` of ``stream`` with its rows of this step's ``masks`` -> (view, files
    skipped). A micro-batch whose every file was unreadable is replaced by the next one."""
    batch = next(stream.batches)
    skipped = batch["num_skipped"]
    while batch["clip"] is None:
        batch = next(stream.batches)
        skipped += batch["num_skipped"]
    clips = batch["clip"].to(device, non_blocking=True)
    rows = slice(micro * stream.phase.batch_size, micro * stream.phase.batch_size + len(clips))
    context_idx, target_idx = ([m[rows].to(device) for m in group] for group in masks)
    return View(clips, context_idx, target_idx, modality), skipped
