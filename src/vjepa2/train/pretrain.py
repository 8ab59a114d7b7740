"""V-JEPA 2 self-supervised pretraining: predict the EMA target encoder's features of masked tokens.

One step (paper section 2, reference app/vjepa/train.py):
  targets = layer_norm(target_encoder(clips))                    no grad, full clip
  for each mask generator g: z = encoder(clips, context_idx[g]); pred = predictor(z, ...)
  loss = mean over g of mean |pred - targets[target_idx[g]]|      L1
  AdamW step (warmup-constant-decay LR), then target <- m * target + (1 - m) * encoder   (EMA)

``loss.recipe=2.1`` trains with the V-JEPA 2.1 objective instead (``train.jepa21``: multi-level
targets, a dense loss on the context tokens, and image batches from ``images``).

The run is a pure function of its config: model init, data order and augmentation, and masks
are all seeded by (seed, step), so a run killed at any moment and resumed from its last
checkpoint produces the same losses as one that was never interrupted.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vjepa2.data.shards.manifest import is_shard_source, read_manifest
from vjepa2.errors import MissingPathError, UserError
from vjepa2.masks import rank_masks
from vjepa2.models.encoder import EncoderConfig, VideoEncoder
from vjepa2.models.precision import autocast
from vjepa2.models.predictor import MaskPredictor, PredictorConfig
from vjepa2.models.presets import encoder_config, paired_predictor
from vjepa2.runtime import distributed as dist
from vjepa2.train.jepa import Student, ema_update, param_groups
from vjepa2.train.jepa21 import DenseStudent, check_recipe, make_objective
from vjepa2.train.log import collapse_stats
from vjepa2.train.pretrain_config import ModelConfig, PretrainConfig
from vjepa2.train.pretrain_data import (
    Phase,
    Stream,
    draw_view,
    open_stream,
    phases,
    synthetic_source,
)
from vjepa2.train.run import Run, Trained
from vjepa2.train.schedules import ema_momentum, set_lr, warmup_constant_decay


# -- models ---------------------------------------------------------------------------------------
def model_configs(cfg: ModelConfig) -> tuple[EncoderConfig, PredictorConfig]:
    try:
        enc_cfg = encoder_config(cfg.encoder_preset, checkpointing=cfg.checkpointing, **cfg.encoder_overrides)
        overrides = {"checkpointing": cfg.checkpointing, **cfg.predictor_overrides}
        return enc_cfg, paired_predictor(enc_cfg, cfg.predictor_preset, **overrides)
    except TypeError as err:  # dataclasses.replace on an unknown field
        raise UserError(f"model.encoder_overrides / predictor_overrides: {err}") from None


def build_models(cfg: ModelConfig) -> tuple[VideoEncoder, MaskPredictor]:
    enc_cfg, pred_cfg = model_configs(cfg)
    return VideoEncoder(enc_cfg), MaskPredictor(pred_cfg)


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
    objective: Callable  # the recipe's loss: jepa.JepaObjective (2.0) or jepa21.DenseObjective

    @property
    def others(self) -> dict[str, nn.Module]:
        """Modules checkpointed beside the student's encoder and predictor."""
        return {"target_encoder": self.target}


def train_step(cfg: PretrainConfig, run: Run, step: int, stream: Stream, nets: Nets) -> dict:
    """One optimizer step over ``run.accum`` micro-batches, then the EMA update -> metrics."""
    info, optimizer = run.info, nets.optimizer
    lr = warmup_constant_decay(step, cfg.schedule)
    set_lr(optimizer, lr)
    loss_sum, stats, seen, skipped = torch.zeros((), device=info.device), {}, [0, 0], 0
    streams = [s for s in (stream, stream.images) if s is not None]  # clips, then images (2.1)
    masks = [  # this step, this rank
        rank_masks(s.generators, step, info.rank, info.world_size, s.phase.batch_size * cfg.run.accum)
        for s in streams
    ]
    for micro in range(cfg.run.accum):
        views = []
        for s, m, modality in zip(streams, masks, ("video", "image")):
            view, bad = draw_view(s, m, micro, info.device, modality)
            views.append(view)
            skipped += bad
        with dist.grad_sync(nets.model, micro == cfg.run.accum - 1):
            with autocast(info.device, run.dtype):
                loss, parts, features = nets.objective(nets.model_fn, nets.target_fn, views, step)
            (loss / cfg.run.accum).backward()
        loss_sum += loss.detach()
        stats = {key: stats.get(key, 0) + value / cfg.run.accum for key, value in parts.items()}
        for i, view in enumerate(views):
            seen[i] += len(view.clips)
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
        clips=seen[0],
        images=seen[1],
        skipped=skipped,
        stats=stats,
        scalars=nets.objective.scalars(step),
    )


def log_row(metrics: dict, phase: Phase, seconds: float, info: dist.DistInfo) -> dict:
    """Reduce over ranks and turn a step's metrics into a log row."""
    loss = dist.all_reduce_mean(metrics["loss"]).item()
    counts = dist.all_reduce_mean(torch.tensor([metrics["clips"], metrics["skipped"]], dtype=torch.float64))
    clips, skipped = (counts * info.world_size).tolist()
    row = {"loss": loss, "lr": metrics["lr"], "ema": metrics["ema"], "grad_norm": float(metrics["grad_norm"])}
    row.update(clips_per_s=clips / seconds, skipped=int(skipped), frames=phase.frames, crop=phase.crop)
    if metrics["images"]:
        row["images_per_s"] = metrics["images"] * info.world_size / seconds
    row.update({key: dist.all_reduce_mean(value).item() for key, value in metrics["stats"].items()})
    row.update(metrics["scalars"])
    row.update(collapse_stats(metrics["features"]))
    if info.device.type == "cuda":
        row["max_mem_gb"] = torch.cuda.max_memory_allocated(info.device) / 2**30
    return row


def build(cfg: PretrainConfig, info: dist.DistInfo) -> Nets:
    """Models (seeded), wrappers and the optimizer."""
    torch.manual_seed(cfg.run.seed)
    encoder, predictor = build_models(cfg.model)
    target = copy.deepcopy(encoder).requires_grad_(False).to(info.device)
    dense = cfg.loss.recipe == "2.1"
    student = (DenseStudent if dense else Student)(encoder, predictor, cfg.model.mask_index).to(info.device)
    # 2.1 leaves parameters without gradient when no images are drawn (the image tokenizer and
    # embeddings) or when the predictor reads the plain output (the lower level norms).
    unused = dense and not (cfg.images.batch_size and student.levels)
    model = dist.wrap_model(student, info, cfg.run.parallel, find_unused=unused)
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
    objective = make_objective(cfg.loss, cfg.schedule, encoder)
    return Nets(model, student, target, model_fn, target_fn, optimizer, objective)


def check(cfg: PretrainConfig) -> None:
    given = cfg.sources + cfg.images.sources
    missing = [s for s in given if not is_shard_source(s) and not Path(s).exists()]
    if missing:
        raise MissingPathError(f"data source not found: {missing[0]}")
    for sources in (cfg.sources, cfg.images.sources):
        if any(map(is_shard_source, sources)) and not all(map(is_shard_source, sources)):
            raise UserError(f"sources: give shard manifests or files and folders, not both: {sources}")
    for source in filter(is_shard_source, given):
        read_manifest(source, cfg.network.network())  # a bad manifest fails here, before any model
    if not cfg.masks:
        raise UserError("masks: give at least one mask generator")
    if cfg.data.weights and len(cfg.data.weights) != len(cfg.sources):
        raise UserError(f"data.weights: {len(cfg.data.weights)} weights for {len(cfg.sources)} sources")
    if cfg.images.batch_size and not cfg.images.masks:
        raise UserError("images.masks: give at least one mask generator for the images")
    encoder_cfg, predictor_cfg = model_configs(cfg.model)
    check_recipe(
        cfg.loss, encoder_cfg, predictor_cfg, max(cfg.images.batch_size, cfg.cooldown.image_batch_size)
    )
    for key, crop, frames in (
        ("data", cfg.data.crop, cfg.data.num_frames),
        ("cooldown", cfg.cooldown.crop, cfg.cooldown.num_frames),
    ):
        if crop and crop % encoder_cfg.patch:
            raise UserError(f"{key}.crop: {crop} px is not a whole number of {encoder_cfg.patch} px patches")
        if frames and frames % encoder_cfg.tubelet:
            raise UserError(
                f"{key}.num_frames: {frames} is not a whole number of {encoder_cfg.tubelet}-frame tubelets"
            )


class PhaseStreams:
    """The data stream of the phase a step belongs to, opened when the phase begins; the first
    one starts where the checkpoint resumed from left its data."""

    def __init__(self, cfg: PretrainConfig, plan: list[Phase], sources: list[str], run: Run, encoder):
        self.cfg, self.plan, self.sources, self.run, self.encoder = cfg, plan, sources, run, encoder
        self.current: Stream | None = None

    def at(self, step: int) -> Stream:
        if self.current is None or step >= self.current.phase.end:
            phase = next(p for p in self.plan if p.start <= step < p.end)
            position = self.run.data_position() if self.current is None else None
            self.current = open_stream(
                self.cfg, phase, self.sources, self.run.info, self.encoder, step, position
            )
        return self.current

    def position(self):
        return self.current.position(self.cfg.data.workers)


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
        streams = PhaseStreams(cfg, plan, sources, run, nets.student.encoder)
        trained = Trained(nets.model, nets.optimizer, nets.others, streams.position)
        step = run.loop(
            step,
            lambda step: train_step(cfg, run, step, streams.at(step), nets),
            trained,
            row=lambda metrics, seconds: {
                **log_row(metrics, streams.current.phase, seconds, run.info),
                "dtype": run.dtype,
            },
        )
        run.finish(step)
    return 0
