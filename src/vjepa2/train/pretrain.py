"""V-JEPA 2 self-supervised pretraining: predict the EMA target encoder's features of masked tokens.

One step (paper section 2, reference app/vjepa/train.py):
  targets = layer_norm(target_encoder(clips))                    no grad, full clip
  for each mask generator g: z = encoder(clips, context_idx[g]); pred = predictor(z, ...)
  loss = mean over g of mean |pred - targets[target_idx[g]]|      L1
  AdamW step (warmup-constant-decay LR), then target <- m * target + (1 - m) * encoder   (EMA)

The run is a pure function of its config: model init, data order and augmentation, and masks
are all seeded by (seed, step), so a run killed at any moment and resumed from its last
checkpoint produces the same losses as one that was never interrupted.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vjepa2.config import opt
from vjepa2.data.datasets import MixtureDataset, VideoDataset, WeightedDistributedSampler, collate_skip_bad
from vjepa2.data.memory import DecodedVideos
from vjepa2.errors import MissingPathError, UserError
from vjepa2.masks import MaskGenerator, MaskSpec, make_generators, rank_masks, vjepa2_masks
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.precision import autocast
from vjepa2.models.predictor import MaskPredictor
from vjepa2.models.presets import encoder_config, paired_predictor
from vjepa2.train import distributed as dist
from vjepa2.train.jepa import Student, ema_update, jepa_loss, param_groups
from vjepa2.train.log import collapse_stats
from vjepa2.train.run import Run, RunConfig
from vjepa2.train.schedules import EMAConfig, LRScheduleConfig, ema_momentum, set_lr, warmup_constant_decay


@dataclass
class ModelConfig:
    encoder: str = opt("vitl", help="encoder preset: tiny, small, vitl, vith, vitg")
    encoder_overrides: dict = opt({}, help="EncoderConfig fields to change, e.g. {depth: 2}")
    predictor: str = opt("default", help="predictor preset: tiny, small, default (384 wide, 12 deep)")
    predictor_overrides: dict = opt({}, help="PredictorConfig fields to change")
    checkpointing: bool = opt(True, help="activation checkpointing per block (less memory, slower)")
    mask_index: int = opt(0, help="predictor mask token used for every generator (reference: 0)")
    init_from: str = opt("", help="training checkpoint to start from (weights + optimizer; the cooldown)")


@dataclass
class DataConfig:
    weights: list[float] = opt([], help="sampling weight of each source (default: equal)")
    frames: int = opt(16, help="frames per clip")
    crop: int = opt(256, help="crop size in pixels")
    fps: float = opt(4.0, help="frames per second sampled from the videos")
    workers: int = opt(2, help="DataLoader worker processes (0: load in the main process)")
    synthetic_dir: str = opt("", help="cache of generated videos (default: ~/.cache/vjepa2/synthetic-...)")
    synthetic_videos: int = opt(256, help="number of synthetic videos to generate when no source is given")
    synthetic_texture: float = opt(
        0.0, help="synthetic videos' background pattern contrast, levels (0: flat; see worlds make-videos)"
    )
    memory_mb: float = opt(
        0.0, help="decoded videos each loader process keeps in memory, MB (0: decode every clip)"
    )


@dataclass
class OptimConfig:
    weight_decay: float = opt(0.04, help="AdamW weight decay (not on biases and 1-D parameters)")
    betas: list[float] = opt([0.9, 0.999], help="AdamW betas")
    eps: float = opt(1e-8, help="AdamW epsilon")
    grad_clip: float = opt(0.0, help="clip the gradient norm to this (0: off, as V-JEPA 2; V-JEPA 1: 10)")


@dataclass
class CooldownConfig:
    frames: int = opt(0, help="frames per clip during the cooldown (0: keep data.frames)")
    crop: int = opt(0, help="crop size during the cooldown (0: keep data.crop)")
    batch_size: int = opt(0, help="per-process batch during the cooldown (0: keep run.batch_size)")


@dataclass
class PretrainRunConfig(RunConfig):
    compile: bool = opt(False, help="torch.compile the encoder, target encoder and predictor")


def pretrain_run() -> PretrainRunConfig:
    return PretrainRunConfig(out="runs/pretrain", batch_size=24, checkpoint_every=100, log_every=1, seed=239)


@dataclass
class PretrainConfig:
    sources: list[str] = opt(
        [],
        help="CSV indexes ('path label' lines) or folders of videos/images; none: synthetic videos",
        positional=True,
    )
    model: ModelConfig = opt(ModelConfig, help="encoder / predictor")
    data: DataConfig = opt(DataConfig, help="data sources and clips")
    masks: list[MaskSpec] = opt(vjepa2_masks(), help="mask generators (default: short + long range)")
    optim: OptimConfig = opt(OptimConfig, help="AdamW")
    schedule: LRScheduleConfig = opt(LRScheduleConfig, help="warmup-constant-decay learning rate")
    ema: EMAConfig = opt(EMAConfig, help="target encoder EMA momentum")
    cooldown: CooldownConfig = opt(CooldownConfig, help="clip settings of the cooldown phase")
    run: PretrainRunConfig = opt(
        help="run folder, steps, batch, precision, checkpoints", default_factory=pretrain_run
    )


# -- models ---------------------------------------------------------------------------------------
def build_models(cfg: ModelConfig) -> tuple[VideoEncoder, MaskPredictor]:
    try:
        enc_cfg = encoder_config(cfg.encoder, checkpointing=cfg.checkpointing, **cfg.encoder_overrides)
        overrides = {"checkpointing": cfg.checkpointing, **cfg.predictor_overrides}
        pred_cfg = paired_predictor(enc_cfg, cfg.predictor, **overrides)
    except TypeError as err:  # dataclasses.replace on an unknown field
        raise UserError(f"model.encoder_overrides / predictor_overrides: {err}") from None
    return VideoEncoder(enc_cfg), MaskPredictor(pred_cfg)


# -- data -----------------------------------------------------------------------------------------
@dataclass
class Phase:
    """A stretch of steps with one clip setting: the main phase, then optionally the cooldown."""

    index: int
    start: int
    end: int
    frames: int
    crop: int
    batch_size: int


def phases(cfg: PretrainConfig) -> list[Phase]:
    total = cfg.run.steps or cfg.schedule.total_steps
    main = Phase(0, 0, total, cfg.data.frames, cfg.data.crop, cfg.run.batch_size)
    cool, c = cfg.schedule.warmup_steps + cfg.schedule.constant_steps, cfg.cooldown
    if not 0 < cool < total or not (c.frames or c.crop or c.batch_size):
        return [main]
    main.end = cool
    return [
        main,
        Phase(1, cool, total, c.frames or main.frames, c.crop or main.crop, c.batch_size or main.batch_size),
    ]


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
        marker.write_text(json.dumps(want))
    dist.barrier()
    return folder / "videos"


CHUNK_STEPS = 500  # the sampler draws its stream this many optimizer steps at a time


def micro_batches(cfg: PretrainConfig, phase: Phase, sources: list[str], info: dist.DistInfo, step: int):
    """This rank's micro-batches from optimizer step ``step`` of ``phase`` on, forever.

    The global stream of samples does not depend on the number of processes: rank r takes
    positions r, r + world_size, ... so N processes with batch B see what one process with batch
    N * B sees. The stream position is a function of the step: resuming needs no loader state.
    """
    memory = DecodedVideos(cfg.data.memory_mb) if cfg.data.memory_mb else None  # one budget for all sources
    parts = [
        VideoDataset(s, phase.frames, cfg.data.fps, crop=phase.crop, seed=cfg.run.seed, memory=memory)
        for s in sources
    ]
    dataset = parts[0] if len(parts) == 1 else MixtureDataset(parts, cfg.data.weights or None)
    per_step = phase.batch_size * cfg.run.accum  # this rank's samples per optimizer step
    chunk = per_step * CHUNK_STEPS
    seed, world = cfg.run.seed + phase.index, info.world_size
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


# -- the loop -------------------------------------------------------------------------------------
@dataclass
class Nets:
    """What a pretraining step updates."""

    model: nn.Module  # the student (encoder + predictor) as wrapped for training: DDP, FSDP2 or plain
    student: Student  # the same, unwrapped
    target: nn.Module  # the EMA target encoder (FSDP2-sharded under run.parallel=fsdp)
    model_fn: Callable  # model, or torch.compile(model)
    target_fn: Callable  # target, or torch.compile(target)
    optimizer: torch.optim.Optimizer

    @property
    def others(self) -> dict[str, nn.Module]:
        """Modules checkpointed beside the student's encoder and predictor."""
        return {"target_encoder": self.target}


@dataclass
class Stream:
    """What one phase draws: this rank's micro-batches and the mask generators of its clip grid."""

    phase: Phase
    batches: Iterator[dict]
    generators: list[MaskGenerator]


def open_stream(
    cfg: PretrainConfig, phase: Phase, sources: list[str], run: Run, nets: Nets, step: int
) -> Stream:
    grid = nets.student.encoder.grid((1, phase.frames, 3, phase.crop, phase.crop))
    batches = micro_batches(cfg, phase, sources, run.info, step)
    return Stream(phase, batches, make_generators(cfg.masks, grid, cfg.run.seed))


def train_step(cfg: PretrainConfig, run: Run, step: int, stream: Stream, nets: Nets) -> dict:
    """One optimizer step over ``run.accum`` micro-batches, then the EMA update -> metrics."""
    info, phase, optimizer = run.info, stream.phase, nets.optimizer
    lr = warmup_constant_decay(step, cfg.schedule)
    set_lr(optimizer, lr)
    loss_sum, clips_seen, skipped = torch.zeros((), device=info.device), 0, 0
    per_rank = phase.batch_size * cfg.run.accum
    masks = rank_masks(stream.generators, step, info.rank, info.world_size, per_rank)  # this step, this rank
    for micro in range(cfg.run.accum):
        batch = next(stream.batches)
        skipped += batch["num_skipped"]
        while batch["clip"] is None:  # every file of the micro-batch was unreadable: take the next
            batch = next(stream.batches)
            skipped += batch["num_skipped"]
        clips = batch["clip"].to(info.device, non_blocking=True)
        rows = slice(micro * phase.batch_size, micro * phase.batch_size + len(clips))
        context_idx, target_idx = ([m[rows].to(info.device) for m in group] for group in masks)
        with dist.grad_sync(nets.model, micro == cfg.run.accum - 1):
            with autocast(info.device, run.dtype):
                loss, features = jepa_loss(nets.model_fn, nets.target_fn, clips, context_idx, target_idx)
            (loss / cfg.run.accum).backward()
        loss_sum += loss.detach()
        clips_seen += len(clips)
    max_norm = cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else math.inf
    grad_norm = torch.nn.utils.clip_grad_norm_(nets.student.parameters(), max_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    momentum = ema_momentum(step, cfg.ema)
    dist.reshard(nets.target)
    ema_update(nets.target, nets.student.encoder, momentum)
    full = getattr(grad_norm, "full_tensor", None)  # FSDP2 returns a DTensor
    grad_norm = full() if full else grad_norm
    return dict(
        loss=loss_sum / cfg.run.accum,
        lr=lr,
        ema=momentum,
        grad_norm=grad_norm,
        features=features,
        clips=clips_seen,
        skipped=skipped,
    )


def log_row(metrics: dict, phase: Phase, seconds: float, info: dist.DistInfo) -> dict:
    """Reduce over ranks and turn a step's metrics into a log row."""
    loss = dist.all_reduce_mean(metrics["loss"]).item()
    counts = dist.all_reduce_mean(torch.tensor([metrics["clips"], metrics["skipped"]], dtype=torch.float64))
    clips, skipped = (counts * info.world_size).tolist()
    row = {"loss": loss, "lr": metrics["lr"], "ema": metrics["ema"], "grad_norm": float(metrics["grad_norm"])}
    row.update(clips_per_s=clips / seconds, skipped=int(skipped), frames=phase.frames, crop=phase.crop)
    row.update(collapse_stats(metrics["features"]))
    if info.device.type == "cuda":
        row["max_mem_gb"] = torch.cuda.max_memory_allocated(info.device) / 2**30
    return row


def build(cfg: PretrainConfig, info: dist.DistInfo) -> Nets:
    """Models (seeded), wrappers and the optimizer."""
    torch.manual_seed(cfg.run.seed)
    encoder, predictor = build_models(cfg.model)
    target = copy.deepcopy(encoder).requires_grad_(False).to(info.device)
    student = Student(encoder, predictor, cfg.model.mask_index).to(info.device)
    model = dist.wrap_model(student, info, cfg.run.parallel)
    if cfg.run.parallel == "fsdp":
        target = dist.wrap_model(target, info, "fsdp")
    optimizer = torch.optim.AdamW(
        param_groups(student, cfg.optim.weight_decay),
        lr=cfg.schedule.start_lr,
        betas=tuple(cfg.optim.betas),
        eps=cfg.optim.eps,
    )
    model_fn, target_fn = (
        (torch.compile(model), torch.compile(target)) if cfg.run.compile else (model, target)
    )
    return Nets(model, student, target, model_fn, target_fn, optimizer)


def check(cfg: PretrainConfig) -> None:
    missing = [source for source in cfg.sources if not Path(source).exists()]
    if missing:
        raise MissingPathError(f"data source not found: {missing[0]}")
    if not cfg.masks:
        raise UserError("masks: give at least one mask generator")
    if cfg.data.weights and len(cfg.data.weights) != len(cfg.sources):
        raise UserError(f"data.weights: {len(cfg.data.weights)} weights for {len(cfg.sources)} sources")


def run_pretrain(cfg: PretrainConfig) -> int:
    """Train (or resume) the run in ``cfg.run.out``; single process or under torchrun."""
    check(cfg)
    with Run("pretrain", cfg, cfg.run, parallel=("ddp", "fsdp")) as run:
        nets = build(cfg, run.info)
        step = run.restore(nets.model, nets.optimizer, nets.others, cfg.model.init_from)
        plan = phases(cfg)
        sources = cfg.sources or [
            str(synthetic_source(cfg.data, max(p.frames for p in plan), max(p.crop for p in plan)))
        ]
        run.start(step, plan[-1].end, desc="train")
        stream = None
        while step < run.stop:
            if stream is None or step >= stream.phase.end:
                stream = open_stream(
                    cfg, next(p for p in plan if p.start <= step < p.end), sources, run, nets, step
                )
            start = time.perf_counter()
            metrics = train_step(cfg, run, step, stream, nets)
            step += 1
            if step % cfg.run.log_every == 0 or step == run.stop:
                row = log_row(metrics, stream.phase, time.perf_counter() - start, run.info)
                if run.log(step, **row, dtype=run.dtype):
                    run.bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.2e}")
            if run.checkpoint_due(step):
                run.save(step, nets.model, nets.optimizer, nets.others, {"loss": float(metrics["loss"])})
            run.bar.update(1)
        run.finish(step)
    return 0
