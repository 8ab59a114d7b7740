"""Training the action-conditioned world model (V-JEPA 2-AC) on trajectories.

The encoder is frozen: every frame is encoded once as a 2-frame clip and layer-normed (paper
section 6), so by default all features are computed before training and cached in a safetensors
file; training then never runs the encoder again. One step on windows of T frames:

  z = features (B, T, K, D);  a = actions (B, T-1, A);  s = states (B, T, S)   (a, s normalized)
  teacher forcing: LN(P(z_0..T-2, a, s_0..T-2))       vs z_1..T-1           L1
  rollout:         z_1' = LN(P(z_0)), z_2' = LN(P(z_0, z_1')) ... (n steps)  vs z_1..n   L1
  loss = teacher forcing + rollout;  AdamW, warmup-constant-decay LR, bf16 autocast

Runs resume exactly from ``out/latest.pt``; under torchrun the predictor is wrapped in DDP and
each rank draws its own windows. The result is ``out/model``: our weight format plus
``world_model.json`` (crop, state handling, normalization statistics), what ``Planner`` loads.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vjepa2.config import opt, save_yaml, to_dict
from vjepa2.data.trajectories import NormStats, Trajectory, read_droid, read_episodes, window_index
from vjepa2.models.ac_predictor import ACPredictor, ACPredictorConfig
from vjepa2.models.encoder import VideoEncoder, layer_norm_features
from vjepa2.models.model import VJEPA2
from vjepa2.models.presets import encoder_config
from vjepa2.models.weights import save_model
from vjepa2.planning.world_model import LatentStats, WorldModelSpec, encode_frames
from vjepa2.train import distributed as dist
from vjepa2.train.checkpoint import find_latest, load_checkpoint, rng_state, save_checkpoint, set_rng_state
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
    dtype: str = opt("bf16", help="autocast dtype: bf16 or fp32")
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


# -- frozen encoder and features --------------------------------------------------------------
def build_encoder(cfg: ACModelConfig, seed: int) -> tuple[VideoEncoder, str]:
    """The frozen encoder and a description of it (part of the feature cache key)."""
    if cfg.encoder.startswith("random:"):
        preset = cfg.encoder.split(":", 1)[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = VideoEncoder(encoder_config(preset, **cfg.encoder_overrides))
        description = f"{cfg.encoder} seed={seed} {sorted(cfg.encoder_overrides.items())}"
    else:
        import vjepa2

        path = Path(cfg.encoder)
        encoder = vjepa2.load(path).encoder
        stat = path.stat()
        description = f"{path.resolve()} {stat.st_size} {stat.st_mtime_ns}"
    return encoder.eval().requires_grad_(False), description


def load_trajectories(cfg: ACDataConfig) -> list[Trajectory]:
    if not cfg.source:
        raise ValueError("train-ac: set data.source (episode folders/indexes or DROID CSVs)")
    if cfg.format not in ("episodes", "droid"):
        raise ValueError(f"unknown data.format {cfg.format!r}; expected 'episodes' or 'droid'")
    trajectories = []
    for source in cfg.source:
        if cfg.format == "episodes":
            trajectories += read_episodes(source)
        else:
            trajectories += read_droid(source, camera=cfg.droid_camera, fps=cfg.droid_fps)
    return trajectories


def _frame_size(trajectories: list[Trajectory]) -> int:
    sizes = {t.frames.shape[1:3] for t in trajectories}
    if len(sizes) != 1:
        raise ValueError(f"trajectories have different frame sizes {sorted(sizes)}; set model.crop")
    return max(sizes.pop())


def cached_features(
    trajectories: list[Trajectory], encoder: VideoEncoder, spec: WorldModelSpec, path: Path, key: str, device
) -> torch.Tensor:
    """Latents (sum T_i, K, D) of every frame, read from ``path`` when its key matches, else
    encoded (with a progress bar) and written there as float16."""
    if path.is_file():
        with open(path, "rb") as fh:  # the key sits in the safetensors header
            header_len = int.from_bytes(fh.read(8), "little")
            meta = json.loads(fh.read(header_len)).get("__metadata__", {})
        if meta.get("key") == key:
            return load_file(path)["features"].float()
    chunks = []
    bar = progress(len(trajectories), desc="encode frames", enabled=dist.is_main())
    for traj in trajectories:
        chunks.append(encode_frames(encoder, traj.frames, spec.crop, spec.blur, device=device).half().cpu())
        bar.update(1)
    bar.close()
    features = torch.cat(chunks)
    if dist.is_main():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save_file({"features": features}, tmp, metadata={"key": key})
        tmp.replace(path)
    return features.float()


class WindowData:
    """All trajectories laid end to end: per-frame states and actions (the action of a
    trajectory's last frame is a zero pad), normalized; windows of ``num_frames`` index into them."""

    def __init__(self, trajectories: list[Trajectory], stats: NormStats, num_frames: int):
        self.num_frames = num_frames
        self.lengths = [len(t.frames) for t in trajectories]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        padded = [np.concatenate([t.actions, np.zeros_like(t.actions[:1])]) for t in trajectories]
        self.actions = stats.normalize_actions(torch.from_numpy(np.concatenate(padded)))
        self.states = stats.normalize_states(
            torch.from_numpy(np.concatenate([t.states for t in trajectories]))
        )

    def windows(self, ids: list[int]) -> np.ndarray:
        """(W, 2) rows (trajectory, start) of every window of the trajectories ``ids``."""
        rows = window_index([self.lengths[i] for i in ids], self.num_frames)
        rows[:, 0] = np.asarray(ids)[rows[:, 0]]
        return rows

    def batch(self, windows: np.ndarray, latents_of) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """latents (B, T, K, D), actions (B, T-1, A), states (B, T, S) of ``windows`` (B, 2)."""
        starts = torch.from_numpy(self.offsets[windows[:, 0]] + windows[:, 1])
        idx = starts[:, None] + torch.arange(self.num_frames)  # (B, T) frame indices
        return latents_of(idx), self.actions[idx[:, :-1]], self.states[idx]


def split_trajectories(num: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train ids, validation ids): a seeded shuffle, the last ceil(fraction * num) held out."""
    order = np.random.default_rng(seed).permutation(num).tolist()
    n_val = min(num - 1, math.ceil(val_fraction * num)) if val_fraction > 0 else 0
    return sorted(order[: num - n_val]), sorted(order[num - n_val :])


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


# -- the run -------------------------------------------------------------------------------------
def _param_groups(module: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay = [p for p in module.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in module.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _autocast(device: torch.device, dtype: str):
    if dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if dtype == "fp32":
        return nullcontext()
    raise ValueError(f"unknown run.dtype {dtype!r}; expected bf16 or fp32")


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
        with _autocast(device, cfg.dtype):
            losses = ac_losses(predictor, latents, actions, states, grid_hw, cfg.rollout_steps, renorm)
        totals += np.array([float(x) for x in losses]) * len(chunk)
        count += len(chunk)
    predictor.train()
    return {"val_teacher": totals[0] / count, "val_rollout": totals[1] / count}


def _latent_source(
    cfg: TrainACConfig,
    trajectories,
    encoder,
    spec: WorldModelSpec,
    key,
    out: Path,
    device,
    train_frames: np.ndarray,
):
    """(latents_of, latent stats or None): latents_of maps (B, T) frame indices to latents
    (B, T, K, D), from cached features or encoded on the fly, standardized if the spec says so
    (statistics of the training frames ``train_frames``, global indices)."""
    if cfg.data.cache:
        path = Path(cfg.data.cache_file) if cfg.data.cache_file else out / "features.safetensors"
        if dist.is_main():
            features = cached_features(trajectories, encoder, spec, path, key, device)
        dist.barrier()
        if not dist.is_main():
            features = cached_features(trajectories, encoder, spec, path, key, device)
        if not spec.standardize:
            return (lambda idx: features[idx]), None
        stats = LatentStats.compute(features[torch.from_numpy(train_frames)])
        features = stats.apply(features)
        return (lambda idx: features[idx]), stats
    frames = np.concatenate([t.frames for t in trajectories])

    def encode(idx: np.ndarray) -> torch.Tensor:
        return encode_frames(encoder, frames[idx], spec.crop, spec.blur, device=device).cpu()

    stats = None
    if spec.standardize:  # statistics of (up to) 2048 training frames
        picks = np.random.default_rng(0).permutation(train_frames)[:2048]
        stats = LatentStats.compute(encode(np.sort(picks)))

    def latents_of(idx: torch.Tensor) -> torch.Tensor:
        latents = encode(idx.flatten().numpy())
        latents = stats.apply(latents) if stats is not None else latents
        return latents.view(*idx.shape, *latents.shape[1:])

    return latents_of, stats


def run_train_ac(cfg: TrainACConfig) -> int:
    """Train the AC predictor on a frozen encoder; writes ``<out>/model`` for the Planner."""
    info = dist.setup(cfg.run.device)
    device, run = info.device, cfg.run
    if run.threads > 0:
        torch.set_num_threads(run.threads)
    out = Path(run.out)
    out.mkdir(parents=True, exist_ok=True)
    trajectories = load_trajectories(cfg.data)
    encoder, description = build_encoder(cfg.model, run.seed)
    encoder.to(device)
    crop = cfg.model.crop or _frame_size(trajectories)
    if crop % encoder.cfg.patch:
        raise ValueError(f"model.crop {crop} is not a multiple of the encoder patch {encoder.cfg.patch}")
    grid_hw = (crop // encoder.cfg.patch,) * 2
    if not 0 <= run.rollout_steps < cfg.data.num_frames:
        raise ValueError(f"run.rollout_steps must be in 0..num_frames-1, got {run.rollout_steps}")
    train_ids, val_ids = split_trajectories(len(trajectories), cfg.data.val_fraction, run.seed)
    stats = NormStats.compute(
        [trajectories[i].actions for i in train_ids], [trajectories[i].states for i in train_ids]
    )
    data = WindowData(trajectories, stats, cfg.data.num_frames)
    if not cfg.model.use_states:
        data.states.zero_()
    train_windows = data.windows(train_ids)
    val_windows = data.windows(val_ids)[:256] if val_ids else None
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
    latents_of, latent_stats = _latent_source(
        cfg, trajectories, encoder, spec, key, out, device, train_frames
    )
    renorm = not spec.standardize

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed)
        predictor = ACPredictor(
            ACPredictorConfig(
                enc_dim=encoder.cfg.dim,
                dim=cfg.model.dim,
                depth=cfg.model.depth,
                heads=cfg.model.heads,
                mlp_ratio=cfg.model.mlp_ratio,
                action_dim=trajectories[0].actions.shape[1],
                state_dim=trajectories[0].states.shape[1],
            )
        ).to(device)
    optimizer = torch.optim.AdamW(
        _param_groups(predictor, cfg.optim.weight_decay),
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
    model = dist.wrap_model(predictor, info, "none" if run.parallel == "none" else "ddp")
    total = run.steps or cfg.schedule.total_steps
    if dist.is_main():
        save_yaml(cfg, out / "config.yaml")
    log = MetricsLogger(out / "log.jsonl", resume_step=step if latest else None) if dist.is_main() else None

    def save(step: int) -> None:
        state = {
            "encoder": encoder.state_dict(),
            "predictor": predictor.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "rng": rng_state(),
            "config": {
                "encoder": dataclasses.asdict(encoder.cfg),
                "predictor": dataclasses.asdict(predictor.cfg),
            },
            "train_config": to_dict(cfg),
        }
        save_checkpoint(state, out, step)

    bar = progress(total, initial=step, enabled=dist.is_main(), desc="train-ac")
    done, tick = 0, time.perf_counter()
    model.train()
    while step < total and not (run.stop_after and done >= run.stop_after):
        lr = warmup_constant_decay(step, cfg.schedule)
        set_lr(optimizer, lr)
        rng = np.random.default_rng([run.seed, step, info.rank])
        windows = train_windows[rng.integers(0, len(train_windows), run.batch_size)]
        latents, actions, states = (x.to(device) for x in data.batch(windows, latents_of))
        with _autocast(device, run.dtype):
            teacher, rollout = ac_losses(model, latents, actions, states, grid_hw, run.rollout_steps, renorm)
            loss = teacher + rollout
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step, done = step + 1, done + 1
        bar.update(1)
        if step % run.log_every == 0 or step == total:
            metrics = {
                "loss": dist.all_reduce_mean(loss.detach()),
                "teacher": dist.all_reduce_mean(teacher.detach()),
                "rollout": dist.all_reduce_mean(rollout.detach()),
                "lr": lr,
                "sec_per_step": (time.perf_counter() - tick) / run.log_every,
            }
            tick = time.perf_counter()
            if log is not None:
                log.log(step, **metrics)
                bar.set_postfix(loss=f"{float(metrics['loss']):.4f}")
        if val_windows is not None and log is not None and (step % run.eval_every == 0 or step == total):
            val = validation_loss(predictor, data, val_windows, latents_of, grid_hw, run, device, renorm)
            log.log(step, **val)
        if step % run.checkpoint_every == 0 or step == total:
            if dist.is_main():
                save(step)
            dist.barrier()
    bar.close()
    if dist.is_main():
        if step % run.checkpoint_every and step != total:
            save(step)
        export(encoder, predictor, spec, out / "model", latent_stats)
        log.close()
    dist.cleanup()
    return 0


def export(
    encoder: VideoEncoder,
    predictor: ACPredictor,
    spec: WorldModelSpec,
    directory: Path,
    latent_stats: LatentStats | None = None,
) -> None:
    """Write the world model for planning: weights + config.json + world_model.json (and
    latent_stats.safetensors for standardized latents)."""
    save_model(VJEPA2(encoder, ac_predictor=predictor), directory)
    spec.save(directory)
    if latent_stats is not None:
        latent_stats.save(directory)
