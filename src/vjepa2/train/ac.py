"""Training the action-conditioned world model (V-JEPA 2-AC) on trajectories.

The encoder is frozen: every frame is encoded once as a 2-frame clip and layer-normed (paper
section 6), so by default all features are computed before training and cached in a safetensors
file; training then never runs the encoder again. One step on windows of T frames:

  z = features (B, T, K, D);  a = actions (B, T-1, A);  s = states (B, T, S)   (a, s normalized)
  teacher forcing: LN(P(z_0..T-2, a, s_0..T-2))       vs z_1..T-1           L1
  rollout:         z_1' = LN(P(z_0)), z_2' = LN(P(z_0, z_1')) ... (n steps)  vs z_1..n   L1
  (with standardized latents, see ``WorldModelSpec``, predictions are not layer-normed)
  loss = teacher forcing + rollout;  AdamW, warmup-constant-decay LR, bf16 autocast

Runs resume exactly from ``out/latest.pt``; under torchrun the predictor is wrapped in DDP and
each rank draws its own windows. The result is ``out/model``: our weight format plus
``world_model.json`` (crop, state handling, normalization statistics), what ``Planner`` loads.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vjepa2.checkpoints.training import (
    find_latest,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from vjepa2.config import opt, save_yaml, to_dict
from vjepa2.data.trajectories import NormStats, WindowData, read_trajectories, split_trajectories
from vjepa2.models.ac_predictor import ACPredictor, ACPredictorConfig
from vjepa2.models.encoder import VideoEncoder, layer_norm_features
from vjepa2.models.precision import DTYPES, autocast, choose_dtype
from vjepa2.models.world_model import LatentStats, WorldModelSpec, save_world_model
from vjepa2.train import distributed as dist
from vjepa2.train.ac_features import build_encoder, frame_size, latent_source
from vjepa2.train.jepa import param_groups
from vjepa2.train.log import MetricsLogger, progress
from vjepa2.train.schedules import LRScheduleConfig, set_lr, warmup_constant_decay


@dataclass
class ACDataConfig:
    source: list[str] = opt(
        [], help="episode folders/indexes (`vjepa2 worlds collect`) or DROID CSVs; several are concatenated"
    )
    format: str = opt("episodes", help="episodes or droid")
    num_frames: int = opt(8, help="frames per training window T (the reference config: 8; paper: 15)")
    val_fraction: float = opt(0.1, help="fraction of trajectories held out for the validation loss")
    cache: bool = opt(True, help="encode every frame once and train on cached features")
    cache_file: str = opt("", help="feature cache (default: <out>/features.safetensors)")
    droid_camera: str = opt("left_mp4_path", help="DROID: metadata key of the camera to read")
    droid_fps: float = opt(4.0, help="DROID: frames per second kept")


@dataclass
class ACModelConfig:
    encoder: str = opt("random:tiny", help="frozen encoder: random:<preset> (seeded) or a checkpoint path")
    encoder_overrides: dict = opt({}, help="EncoderConfig fields for random:<preset>, e.g. {patch: 8}")
    crop: int = opt(0, help="frames resized to crop x crop before encoding (0: the frames' own size)")
    blur: float = opt(0.0, help="Gaussian blur std (pixels) before encoding (smooths tiny sprites)")
    standardize: bool = opt(False, help="standardize latents per token and feature (mostly static scenes)")
    dim: int = opt(192, help="predictor width (paper: 1024)")
    depth: int = opt(4, help="predictor blocks (paper: 24)")
    heads: int = opt(6, help="predictor heads (paper: 16)")
    mlp_ratio: float = opt(4.0, help="predictor MLP ratio")
    use_states: bool = opt(True, help="condition on states (False: zeros)")
    state_update: str = opt("hold", help="planning guess of future states: hold or add (state += action)")


@dataclass
class ACOptimConfig:
    weight_decay: float = opt(0.04, help="AdamW weight decay (not on biases and 1-D parameters)")
    betas: list[float] = opt([0.9, 0.999], help="AdamW betas")


@dataclass
class ACRunConfig:
    out: str = opt("runs/ac", help="output folder: latest.pt, log.jsonl, model/, features cache")
    steps: int = opt(0, help="optimizer steps (0: warmup + constant + cooldown of the schedule)")
    batch_size: int = opt(32, help="windows per process and step")
    rollout_steps: int = opt(2, help="autoregressive steps of the rollout loss (0: teacher forcing only)")
    dtype: str = opt(
        "auto",
        help="autocast dtype: auto (bf16 only where native: CUDA, AMX / AVX512-BF16 CPUs; else fp32), bf16 or fp32",
    )
    device: str = opt("auto", help="auto, cpu, cuda, cuda:N")
    threads: int = opt(0, help="CPU threads of torch (0: its default; 1 is fastest on a busy machine)")
    parallel: str = opt("ddp", help="under torchrun: ddp or none")
    checkpoint_every: int = opt(200, help="write latest.pt every this many steps (and at the end)")
    log_every: int = opt(10, help="write a log line every this many steps")
    eval_every: int = opt(200, help="validation loss every this many steps (and at the end)")
    seed: int = opt(0, help="seed of the predictor init, window sampling and a random encoder")
    resume: bool = opt(True, help="continue from out/latest.pt when it exists")
    stop_after: int = opt(0, help="stop after this many steps in this invocation (0: run to the end)")


def ac_schedule() -> LRScheduleConfig:
    """The paper's shape (warmup 7.5e-5 -> 4.25e-4, constant, linear decay to 0) at CPU length."""
    return LRScheduleConfig(
        start_lr=7.5e-5, lr=4.25e-4, final_lr=0.0, warmup_steps=100, constant_steps=700, cooldown_steps=200
    )


@dataclass
class TrainACConfig:
    data: ACDataConfig = opt(ACDataConfig, help="trajectories and windows")
    model: ACModelConfig = opt(ACModelConfig, help="frozen encoder and AC predictor")
    optim: ACOptimConfig = opt(ACOptimConfig, help="AdamW")
    schedule: LRScheduleConfig = opt(help="warmup-constant-decay learning rate", default_factory=ac_schedule)
    run: ACRunConfig = opt(ACRunConfig, help="run folder, steps, batch, precision, checkpoints")


# -- the loss ------------------------------------------------------------------------------------
def ac_losses(
    predictor: torch.nn.Module,
    latents: torch.Tensor,
    actions: torch.Tensor,
    states: torch.Tensor,
    grid_hw: tuple[int, int],
    rollout_steps: int,
    renorm: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forcing and rollout L1 losses on a batch of windows (see the module docstring).

    latents (B, T, K, D) layer-normed; actions (B, T-1, A); states (B, T, S), both normalized.
    renorm: layer-norm predictions as the targets are (False for standardized latents).
    """
    norm = layer_norm_features if renorm else (lambda x: x)
    B, T, K, D = latents.shape
    pred = predictor(latents[:, :-1].flatten(1, 2), actions, states[:, :-1], grid_hw=grid_hw)
    pred = norm(pred).view(B, T - 1, K, D)
    teacher = (pred - latents[:, 1:]).abs().mean()
    if rollout_steps <= 0:
        return teacher, torch.zeros_like(teacher)
    imagined = [latents[:, 0], pred[:, 0]]  # the first step is the teacher-forced one
    for n in range(1, rollout_steps):
        history = torch.stack(imagined, dim=1).flatten(1, 2)  # (B, (n+1) K, D)
        nxt = predictor(history, actions[:, : n + 1], states[:, : n + 1], grid_hw=grid_hw)[:, -K:]
        imagined.append(norm(nxt))
    rollout = (torch.stack(imagined[1:], dim=1) - latents[:, 1 : rollout_steps + 1]).abs().mean()
    return teacher, rollout


class ACObjective(torch.nn.Module):
    """The predictor with its losses as one forward, so DDP sees one forward per backward."""

    def __init__(self, predictor: ACPredictor):
        super().__init__()
        self.predictor = predictor
        if not predictor.cfg.use_extrinsics:  # unused: DDP would wait for its gradients
            predictor.extrinsics_encoder.requires_grad_(False)

    def forward(self, latents, actions, states, grid_hw, rollout_steps: int, renorm: bool):
        return ac_losses(self.predictor, latents, actions, states, grid_hw, rollout_steps, renorm)


# -- the run -------------------------------------------------------------------------------------
@torch.no_grad()
def validation_loss(
    predictor, data: WindowData, windows: np.ndarray, latents_of, grid_hw, cfg: ACRunConfig, device, renorm
):
    """Mean teacher-forcing and rollout losses over ``windows`` (eval mode, batches of run.batch_size)."""
    predictor.eval()
    totals, count = np.zeros(2), 0
    for start in range(0, len(windows), cfg.batch_size):
        chunk = windows[start : start + cfg.batch_size]
        latents, actions, states = (x.to(device) for x in data.batch(chunk, latents_of))
        with autocast(device, cfg.dtype):
            losses = ac_losses(predictor, latents, actions, states, grid_hw, cfg.rollout_steps, renorm)
        totals += np.array([float(x) for x in losses]) * len(chunk)
        count += len(chunk)
    predictor.train()
    return {"val_teacher": totals[0] / count, "val_rollout": totals[1] / count}


@dataclass
class Prepared:
    """Everything training reads, built once from the config."""

    encoder: VideoEncoder
    spec: WorldModelSpec
    data: WindowData
    train_windows: np.ndarray
    val_windows: np.ndarray | None
    latents_of: object
    latent_stats: LatentStats | None
    grid_hw: tuple[int, int]


def prepare(cfg: TrainACConfig, out: Path, device) -> Prepared:
    """Trajectories, split, statistics, frozen encoder, (cached) latents and windows."""
    run = cfg.run
    if run.dtype not in DTYPES:
        raise ValueError(f"unknown run.dtype {run.dtype!r}; expected one of {DTYPES}")
    if not 0 <= run.rollout_steps < cfg.data.num_frames:
        raise ValueError(f"run.rollout_steps must be in 0..num_frames-1, got {run.rollout_steps}")
    d = cfg.data
    trajectories = read_trajectories(d.source, d.format, camera=d.droid_camera, fps=d.droid_fps)
    encoder, description = build_encoder(cfg.model.encoder, cfg.model.encoder_overrides, run.seed)
    encoder.to(device)
    crop = cfg.model.crop or frame_size(trajectories)
    if crop % encoder.cfg.patch:
        raise ValueError(f"model.crop {crop} is not a multiple of the encoder patch {encoder.cfg.patch}")
    train_ids, val_ids = split_trajectories(len(trajectories), cfg.data.val_fraction, run.seed)
    stats = NormStats.compute(
        [trajectories[i].actions for i in train_ids], [trajectories[i].states for i in train_ids]
    )
    data = WindowData(trajectories, stats, cfg.data.num_frames)
    if not cfg.model.use_states:
        data.states.zero_()
    spec = WorldModelSpec(
        crop=crop,
        blur=cfg.model.blur,
        standardize=cfg.model.standardize,
        state_update=cfg.model.state_update,
        action_scale=float(trajectories[0].meta.get("action_scale", 1.0)),
        use_states=cfg.model.use_states,
        stats=stats,
    )
    sources = [str(Path(source).resolve()) for source in cfg.data.source]
    key = json.dumps([description, crop, cfg.model.blur, sources, cfg.data.format, data.lengths])
    train_frames = np.concatenate([data.offsets[i] + np.arange(data.lengths[i]) for i in train_ids])
    cache = (Path(d.cache_file) if d.cache_file else out / "features.safetensors") if d.cache else None
    latents_of, latent_stats = latent_source(trajectories, encoder, spec, cache, key, train_frames, device)
    val_windows = data.windows(val_ids)[:256] if val_ids else None
    grid_hw = (crop // encoder.cfg.patch,) * 2
    return Prepared(
        encoder, spec, data, data.windows(train_ids), val_windows, latents_of, latent_stats, grid_hw
    )


def build_predictor(cfg: ACModelConfig, p: Prepared, seed: int) -> ACPredictor:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ACPredictor(
            ACPredictorConfig(
                enc_dim=p.encoder.cfg.dim,
                dim=cfg.dim,
                depth=cfg.depth,
                heads=cfg.heads,
                mlp_ratio=cfg.mlp_ratio,
                action_dim=p.data.actions.shape[1],
                state_dim=p.data.states.shape[1],
            )
        )


def checkpoint_state(cfg: TrainACConfig, p: Prepared, predictor: ACPredictor, optimizer, step: int) -> dict:
    """Weights (readable by ``vjepa2.load``), optimizer, step and random state for exact resume."""
    return {
        "encoder": p.encoder.state_dict(),
        "predictor": predictor.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "rng": rng_state(),
        "config": {
            "encoder": dataclasses.asdict(p.encoder.cfg),
            "predictor": dataclasses.asdict(predictor.cfg),
        },
        "train_config": to_dict(cfg),
    }


def run_train_ac(cfg: TrainACConfig) -> int:
    """Train the AC predictor on a frozen encoder; writes ``<out>/model`` for the Planner."""
    info = dist.setup(cfg.run.device)
    device, run = info.device, cfg.run
    run.dtype = choose_dtype(run.dtype, device, announce=dist.is_main())
    if run.threads > 0:
        torch.set_num_threads(run.threads)
    out = Path(run.out)
    out.mkdir(parents=True, exist_ok=True)
    p = prepare(cfg, out, device)
    renorm = not p.spec.standardize
    predictor = build_predictor(cfg.model, p, run.seed).to(device)
    optimizer = torch.optim.AdamW(
        param_groups(predictor, cfg.optim.weight_decay),
        lr=cfg.schedule.start_lr,
        betas=tuple(cfg.optim.betas),
    )
    step = 0
    latest = find_latest(out) if run.resume else None
    if latest is not None:
        ckpt = load_checkpoint(latest)
        predictor.load_state_dict(ckpt["predictor"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["step"])
        set_rng_state(ckpt["rng"])
    model = dist.wrap_model(ACObjective(predictor), info, "none" if run.parallel == "none" else "ddp")
    total = run.steps or cfg.schedule.total_steps
    if dist.is_main():
        save_yaml(cfg, out / "config.yaml")
    log = MetricsLogger(out / "log.jsonl", resume_step=step if latest else None) if dist.is_main() else None
    bar = progress(total, initial=step, enabled=dist.is_main(), desc="train-ac")
    done, tick = 0, time.perf_counter()
    model.train()
    while step < total and not (run.stop_after and done >= run.stop_after):
        lr = warmup_constant_decay(step, cfg.schedule)
        set_lr(optimizer, lr)
        rng = np.random.default_rng([run.seed, step, info.rank])  # windows depend on the step only
        windows = p.train_windows[rng.integers(0, len(p.train_windows), run.batch_size)]
        latents, actions, states = (x.to(device) for x in p.data.batch(windows, p.latents_of))
        with autocast(device, run.dtype):
            teacher, rollout = model(latents, actions, states, p.grid_hw, run.rollout_steps, renorm)
            loss = teacher + rollout
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step, done = step + 1, done + 1
        bar.update(1)
        if step % run.log_every == 0 or step == total:
            losses = {
                k: dist.all_reduce_mean(v.detach())
                for k, v in (("loss", loss), ("teacher", teacher), ("rollout", rollout))
            }
            seconds, tick = (time.perf_counter() - tick) / run.log_every, time.perf_counter()
            if log is not None:
                log.log(step, **losses, lr=lr, sec_per_step=seconds, dtype=run.dtype)
                bar.set_postfix(loss=f"{float(losses['loss']):.4f}")
        if p.val_windows is not None and log is not None and (step % run.eval_every == 0 or step == total):
            log.log(
                step,
                **validation_loss(
                    predictor, p.data, p.val_windows, p.latents_of, p.grid_hw, run, device, renorm
                ),
            )
        if step % run.checkpoint_every == 0 or step == total:
            if dist.is_main():
                save_checkpoint(checkpoint_state(cfg, p, predictor, optimizer, step), out, step)
            dist.barrier()
    bar.close()
    if dist.is_main():
        if step % run.checkpoint_every and step != total:
            save_checkpoint(checkpoint_state(cfg, p, predictor, optimizer, step), out, step)
        save_world_model(out / "model", p.encoder, predictor, p.spec, p.latent_stats)
        log.close()
    dist.cleanup(wait=True)
    return 0
