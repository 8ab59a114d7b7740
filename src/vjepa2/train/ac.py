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

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vjepa2.checkpoints.world_models import save_world_model
from vjepa2.config import opt
from vjepa2.data.lerobot.hub import is_lerobot
from vjepa2.data.trajectories import NormStats, Trajectory, WindowData, read_trajectories, split_trajectories
from vjepa2.errors import UserError
from vjepa2.models.ac_predictor import ACPredictor, ACPredictorConfig
from vjepa2.models.encoder import VideoEncoder, layer_norm_features
from vjepa2.models.precision import autocast
from vjepa2.models.world_model import LatentStats, WorldModelSpec
from vjepa2.runtime import distributed as dist
from vjepa2.train.ac_features import build_encoder, frame_size, latent_source
from vjepa2.train.jepa import param_groups
from vjepa2.train.run import Run, RunConfig, Trained
from vjepa2.train.schedules import LRScheduleConfig, set_lr, warmup_constant_decay


@dataclass
class ACDataConfig:
    source: list[str] = opt(
        [],
        help="episode folders/indexes (`vjepa2 worlds collect`), DROID CSVs or lerobot:<folder or hub id> "
        "(a LeRobot v3.0/v2.1 dataset); several are concatenated",
    )
    format: str = opt("episodes", help="episodes or droid")
    num_frames: int = opt(8, help="frames per training window T (the reference config: 8; paper: 15)", min=2)
    val_fraction: float = opt(0.1, help="fraction of trajectories held out for the validation loss")
    cache: bool = opt(True, help="encode every frame once and train on cached features")
    cache_file: str = opt("", help="feature cache (default: <out>/features.safetensors)")
    droid_camera: str = opt("left_mp4_path", help="DROID: metadata key of the camera to read")
    droid_fps: float = opt(4.0, help="DROID: frames per second kept")
    camera: str = opt("", help="LeRobot: the camera key (empty: the dataset's first video feature)")
    fps: float = opt(4.0, help="LeRobot: frames per second the world model sees (paper: 4; 0: all)", min=0)
    action: str = opt(
        "given",
        help="LeRobot: given (its action column), sum (summed over each kept step: delta actions) or ee-delta (from 7-D states, as DROID's)",
    )
    stats: str = opt(
        "dataset",
        help="LeRobot: normalisation from the dataset's stats (dataset) or the training split (train)",
    )


@dataclass
class ACModelConfig:
    encoder: str = opt("random:tiny", help="frozen encoder: random:<preset> (seeded) or a checkpoint path")
    encoder_overrides: dict = opt({}, help="EncoderConfig fields for random:<preset>, e.g. {patch: 8}")
    crop: int = opt(0, help="frames resized to crop x crop before encoding (0: the frames' own size)")
    blur: float = opt(0.0, help="Gaussian blur std (pixels) before encoding (smooths tiny sprites)")
    standardize: bool = opt(False, help="standardize latents per token and feature (mostly static scenes)")
    dim: int = opt(192, help="predictor width (paper: 1024)", min=1)
    depth: int = opt(4, help="predictor blocks (paper: 24)", min=1)
    heads: int = opt(6, help="predictor heads (paper: 16)", min=1)
    mlp_ratio: float = opt(4.0, help="predictor MLP ratio")
    use_states: bool = opt(True, help="condition on states (False: zeros)")
    state_update: str = opt("hold", help="planning guess of future states: hold or add (state += action)")


@dataclass
class ACOptimConfig:
    weight_decay: float = opt(0.04, help="AdamW weight decay (not on biases and 1-D parameters)")
    betas: list[float] = opt([0.9, 0.999], help="AdamW betas")


@dataclass
class ACRunConfig(RunConfig):
    rollout_steps: int = opt(2, help="autoregressive steps of the rollout loss (0: teacher forcing only)")
    eval_every: int = opt(200, help="validation loss every this many steps (and at the end)", min=1)


def ac_run() -> ACRunConfig:
    return ACRunConfig(out="runs/ac", batch_size=32, checkpoint_every=200, log_every=10, seed=0)


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
    run: ACRunConfig = opt(help="run folder, steps, batch, precision, checkpoints", default_factory=ac_run)


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

    @property
    def renorm(self) -> bool:
        """Whether predictions are layer-normed as the targets are (not for standardized latents)."""
        return not self.spec.standardize


def prepare(cfg: TrainACConfig, out: Path, device) -> Prepared:
    """Trajectories, split, statistics, frozen encoder, (cached) latents and windows."""
    run = cfg.run
    if not 0 <= run.rollout_steps < cfg.data.num_frames:
        raise UserError(f"run.rollout_steps must be in 0..num_frames-1, got {run.rollout_steps}")
    d = cfg.data
    trajectories, given_stats = read_sources(d)
    encoder, description = build_encoder(cfg.model.encoder, cfg.model.encoder_overrides, run.seed)
    encoder.to(device)
    crop = cfg.model.crop or frame_size(trajectories)
    if crop % encoder.cfg.patch:
        raise UserError(f"model.crop {crop} is not a multiple of the encoder patch {encoder.cfg.patch}")
    train_ids, val_ids = split_trajectories(len(trajectories), cfg.data.val_fraction, run.seed)
    stats = given_stats or NormStats.compute(
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
    key = [description, crop, cfg.model.blur, sources, cfg.data.format, data.lengths]
    if any(is_lerobot(source) for source in d.source):  # what a LeRobot source reads depends on these
        key += [d.camera, d.fps, d.action]
    key = json.dumps(key)
    train_frames = np.concatenate([data.offsets[i] + np.arange(data.lengths[i]) for i in train_ids])
    cache = (Path(d.cache_file) if d.cache_file else out / "features.safetensors") if d.cache else None
    latents_of, latent_stats = latent_source(trajectories, encoder, spec, cache, key, train_frames, device)
    val_windows = data.windows(val_ids)[:256] if val_ids else None
    grid_hw = (crop // encoder.cfg.patch,) * 2
    return Prepared(
        encoder, spec, data, data.windows(train_ids), val_windows, latents_of, latent_stats, grid_hw
    )


def read_sources(d: ACDataConfig) -> tuple[list[Trajectory], NormStats | None]:
    """Trajectories of every source (ours, DROID CSVs, ``lerobot:`` datasets) and the statistics
    to normalise with when they come from one LeRobot dataset (``data.stats: dataset``), else None."""
    from vjepa2.data.lerobot.trajectories import read_lerobot

    if d.stats not in ("dataset", "train"):
        raise UserError(f"data.stats must be dataset or train, got {d.stats!r}")
    trajectories, stats = [], []
    others = [source for source in d.source if not is_lerobot(source)]
    for source in d.source:
        if is_lerobot(source):
            found, given = read_lerobot(source, d.camera, d.fps, d.action)
            trajectories += found
            stats.append(given)
    if others or not d.source:
        trajectories += read_trajectories(others, d.format, camera=d.droid_camera, fps=d.droid_fps)
    widths = {(t.actions.shape[1], t.states.shape[1]) for t in trajectories}
    if len(widths) > 1:
        first = trajectories[0]
        odd = next(t for t in trajectories if (t.actions.shape[1], t.states.shape[1]) != widths_of(first))
        raise UserError(
            f"{odd.meta.get('path', 'a trajectory')}: actions/states of width {widths_of(odd)}, "
            f"{first.meta.get('path', 'the first')} has {widths_of(first)}: one model takes one width"
        )
    single = len(stats) == 1 and not others and d.stats == "dataset"
    return trajectories, stats[0] if single else None


def widths_of(t: Trajectory) -> tuple[int, int]:
    """(action width, state width) of a trajectory."""
    return t.actions.shape[1], t.states.shape[1]


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


@torch.no_grad()
def validation_loss(predictor: ACPredictor, p: Prepared, run: Run, rollout_steps: int) -> dict:
    """Mean teacher-forcing and rollout losses over the validation windows (eval mode, batches of
    run.batch_size)."""
    predictor.eval()
    totals, count, batch_size = np.zeros(2), 0, run.settings.batch_size
    for start in range(0, len(p.val_windows), batch_size):
        chunk = p.val_windows[start : start + batch_size]
        latents, actions, states = (x.to(run.device) for x in p.data.batch(chunk, p.latents_of))
        with autocast(run.device, run.dtype):
            losses = ac_losses(predictor, latents, actions, states, p.grid_hw, rollout_steps, p.renorm)
        totals += np.array([float(x) for x in losses]) * len(chunk)
        count += len(chunk)
    predictor.train()
    return {"val_teacher": totals[0] / count, "val_rollout": totals[1] / count}


def train_step(cfg: TrainACConfig, run: Run, step: int, p: Prepared, model, optimizer) -> dict:
    """One AdamW step on ``run.batch_size * run.accum`` windows drawn for this step and rank."""
    settings = cfg.run
    lr = warmup_constant_decay(step, cfg.schedule)
    set_lr(optimizer, lr)
    rng = np.random.default_rng([settings.seed, step, run.info.rank])  # windows depend on the step only
    draws = p.train_windows[rng.integers(0, len(p.train_windows), settings.batch_size * settings.accum)]
    optimizer.zero_grad(set_to_none=True)
    sums = torch.zeros(3, device=run.device)
    for micro in range(settings.accum):
        windows = draws[micro * settings.batch_size : (micro + 1) * settings.batch_size]
        latents, actions, states = (x.to(run.device) for x in p.data.batch(windows, p.latents_of))
        with dist.grad_sync(model, micro == settings.accum - 1):
            with autocast(run.device, run.dtype):
                teacher, rollout = model(
                    latents, actions, states, p.grid_hw, settings.rollout_steps, p.renorm
                )
                loss = teacher + rollout
            (loss / settings.accum).backward()
        sums += torch.stack([loss, teacher, rollout]).detach().float()
    optimizer.step()
    return dict(zip(("loss", "teacher", "rollout"), sums / settings.accum), lr=lr)


def run_train_ac(cfg: TrainACConfig) -> int:
    """Train the AC predictor on a frozen encoder; writes ``<out>/model`` for the Planner."""
    with Run("train-ac", cfg, cfg.run, parallel=("ddp", "none")) as run:
        settings = cfg.run
        p = prepare(cfg, run.out, run.device)
        predictor = build_predictor(cfg.model, p, settings.seed).to(run.device)
        # built before ACObjective freezes the unused extrinsics: the optimizer holds every parameter
        optimizer = torch.optim.AdamW(
            param_groups(predictor, cfg.optim.weight_decay),
            lr=cfg.schedule.start_lr,
            betas=tuple(cfg.optim.betas),
        )
        model = dist.wrap_model(ACObjective(predictor), run.info, settings.parallel)
        frozen = {"encoder": p.encoder}
        step = run.restore(model, optimizer, frozen)
        run.start(step, settings.steps or cfg.schedule.total_steps)
        model.train()

        def row(metrics: dict, seconds: float) -> dict:
            losses = {k: dist.all_reduce_mean(metrics[k]) for k in ("loss", "teacher", "rollout")}
            return {**losses, "lr": metrics["lr"], "sec_per_step": seconds, "dtype": run.dtype}

        def validate(step: int) -> None:
            if (
                p.val_windows is not None
                and run.is_main
                and (step % settings.eval_every == 0 or step == run.total)
            ):
                run.log(step, **validation_loss(predictor, p, run, settings.rollout_steps))

        step = run.loop(
            step,
            lambda step: train_step(cfg, run, step, p, model, optimizer),
            Trained(model, optimizer, frozen),
            row=row,
            after_step=validate,
        )
        if run.is_main:
            save_world_model(run.out / "model", p.encoder, predictor, p.spec, p.latent_stats)
        run.finish(step, "model/")
    return 0
