"""``vjepa2 anticipate``: train and evaluate action-anticipation probes (EK100 protocol) on a
frozen encoder and predictor; the protocol, the probe and the metric are in ``evals.anticipation``.

The features of every annotation's context clip are extracted once (cached in ``<out>/features``),
then a grid of probes (learning rates x weight decays) trains on them; the head with the best
action recall@k is saved in ``<out>/probe`` with every head's results in ``heads.json``. A
distilled V-JEPA 2.1 B/L predictor is refused: probe the encoder alone with ``use_predictor=false``.

Annotations: docs/anticipation-format.md. ``synthetic: N`` makes a demo data set first
(``make_event_videos``): physics scenes of the synthetic world whose "actions" are their events,
a verb (hit the floor, a wall, the ceiling, or collide) and a noun (the object: colour-shape).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from vjepa2.atomic import atomic_write_json
from vjepa2.checkpoints.loading import held
from vjepa2.config import opt
from vjepa2.data.annotations import Annotation, read_annotations
from vjepa2.data.transforms import eval_transform
from vjepa2.data.video import decode_frames
from vjepa2.errors import UserError
from vjepa2.evals.anticipation import (
    OUTPUTS,
    AnticipationProbe,
    Classes,
    anticipation_tokens,
    check_predictor,
    context_times,
    evaluate,
    reads_levels,
    save_anticipation_probe,
    sigmoid_focal_loss,
)
from vjepa2.evals.features import FeatureCache, load_encoder, weights_fingerprint
from vjepa2.evals.head_grid import GridSteps, best_head, make_heads, make_optimizer
from vjepa2.models.precision import DEVICE_HELP, DTYPE_HELP
from vjepa2.models.probe import ProbeConfig
from vjepa2.train.run import Run, RunConfig, Trained
from vjepa2.worlds.events import make_event_videos


@dataclass
class AnticipationConfig:
    train: str = opt("", help="training annotations CSV: video,start_sec,end_sec,verb,noun")
    val: str = opt("", help="validation annotations CSV (same columns)")
    synthetic: int = opt(
        0, help="if > 0 and no --train: first make this many synthetic event videos in <out>/data"
    )
    out: str = opt("runs/anticipate", help="output folder: probe/, heads.json, metrics.jsonl")
    encoder: str = opt("random:tiny", help="checkpoint with encoder and predictor, or random:<preset>")
    encoder_key: str = opt("target_encoder", help="encoder entry of a pretraining checkpoint")
    use_predictor: bool = opt(True, help="append the predictor's future tokens to the encoder tokens")
    seed: int = opt(0, help="seed of the heads, the data order and a random:<preset> encoder")
    num_frames: int = opt(32, help="frames in the context clip (reference: 32)", min=1)
    fps: float = opt(8.0, help="frames per second of the context clip (reference: 8)", above=0)
    anticipation_sec: float = opt(1.0, help="gap between the context's end and the action's start (s)")
    crop: int = opt(0, help="input size in pixels (0: the encoder's pretraining crop)")
    probe_depth: int = opt(4, help="probe blocks: depth - 1 self-attention blocks + 1 cross-attention")
    probe_heads: int = opt(16, help="attention heads in the probe")
    lrs: list[float] = opt([5e-3, 3e-3, 1e-3, 3e-4, 1e-4], help="learning rates of the head grid")
    wds: list[float] = opt([1e-4, 1e-3, 1e-2, 0.1], help="weight decays of the head grid (EK100 values)")
    epochs: int = opt(20, help="passes over the training set", min=1)
    batch_size: int = opt(16, help="clips per step", min=1)
    focal_alpha: float = opt(0.25, help="focal loss weight of positives")
    focal_gamma: float = opt(2.0, help="focal loss focusing exponent")
    top_k: int = opt(5, help="k of mean-class recall@k (EK100: 5)")
    cache: bool = opt(True, help="keep the features on disk (<out>/features) so a rerun skips the encoder")
    batch_clips: int = opt(8, help="clips per encoder call while extracting features")
    device: str = opt("auto", help=DEVICE_HELP)
    dtype: str = opt(
        "auto",
        help=f"encoder precision: {DTYPE_HELP}",
    )


def extract_features(cfg: AnticipationConfig, model, rows: list[Annotation], cache: FeatureCache | None):
    """Tokens (A, N', D) of every annotation's context clip; each video is decoded once."""
    crop = cfg.crop or model.encoder.cfg.crop
    future_steps = int(cfg.anticipation_sec * cfg.fps / model.encoder.cfg.tubelet)
    keys = [f"{r.video}@{r.start_sec:.3f}" for r in rows]
    found = [cache.get(k) if cache else None for k in keys]
    todo = [i for i, f in enumerate(found) if f is None]
    todo.sort(key=lambda i: str(rows[i].video))
    frames_of: dict[Path, tuple] = {}
    for chunk in tqdm(np.array_split(todo, max(1, -(-len(todo) // cfg.batch_clips))), desc="features"):
        clips = []
        for i in chunk:
            video = rows[i].video
            if video not in frames_of:
                frames_of = {video: decode_frames(video)}  # keep one decoded video at a time
            frames, times = frames_of[video]
            wanted = context_times(rows[i].start_sec, cfg.anticipation_sec, cfg.num_frames, cfg.fps)
            nearest = np.abs(times[None] - times[0] - wanted[:, None]).argmin(1)
            clips.append(eval_transform(frames[nearest], crop))
        if not clips:
            continue
        tokens = anticipation_tokens(model, torch.stack(clips), future_steps, cfg.use_predictor, cfg.dtype)
        for i, t in zip(chunk, tokens.cpu()):
            found[i] = t
            if cache:
                cache.put(keys[i], t)
    return torch.stack(found)


def prepare(cfg: AnticipationConfig, model, out: Path):
    """Classes, the feature spec, and (features, labels) of the train and validation rows."""
    if not cfg.train:
        if cfg.synthetic <= 0:
            raise UserError("anticipate: give --train annotations (or synthetic=N for a demo data set)")
        cfg.train, cfg.val = make_event_videos(out / "data", cfg.synthetic, cfg.seed)
    train_rows = read_annotations(cfg.train)
    classes = Classes.from_annotations(train_rows)
    val_rows = classes.known(read_annotations(cfg.val)) if cfg.val else []
    spec = {k: getattr(cfg, k) for k in ("encoder", "encoder_key", "use_predictor", "num_frames", "fps")}
    spec |= {"anticipation_sec": cfg.anticipation_sec, "crop": cfg.crop or model.encoder.cfg.crop}
    spec |= {"encoder_seed": cfg.seed, "weights": weights_fingerprint(model), "dtype": cfg.dtype}
    spec |= {"version": model.version, "levels": cfg.use_predictor and reads_levels(model)}
    # the frozen encoder and predictor held in the run's precision, after their fingerprint
    held(model, cfg.dtype, allow_int8=False)
    cache = FeatureCache(out / "features", spec) if cfg.cache else None
    splits = [
        (extract_features(cfg, model, rows, cache), classes.labels(rows))
        for rows in (train_rows, val_rows)
        if rows
    ]
    print(f"anticipate: {len(train_rows)} train / {len(val_rows)} val actions, "
          f"{ {n: len(getattr(classes, n)) for n in OUTPUTS} } classes, tokens {tuple(splits[0][0].shape[1:])}")  # fmt: skip
    return classes, spec, splits[0], splits[-1]


def run_anticipation(cfg: AnticipationConfig) -> int:
    settings = RunConfig(out=cfg.out, batch_size=cfg.batch_size, dtype=cfg.dtype, device=cfg.device,
                         seed=cfg.seed, parallel="none")  # fmt: skip
    with Run("anticipate", cfg, settings, parallel=("none",), section="", log_file="metrics.jsonl") as run:
        cfg.dtype = run.dtype  # the feature spec and config.yaml record what runs, not 'auto'
        train_heads(cfg, run)
    return 0


def train_heads(cfg: AnticipationConfig, run: Run) -> None:
    """Train the head grid on the anticipation features and save the best head in ``run.out``;
    a run stopped part way resumes from its last epoch (``latest.pt``) to the same heads."""
    out, device = run.out, run.device
    model = load_encoder(cfg.encoder, device, cfg.seed, cfg.encoder_key)
    if cfg.use_predictor and model.predictor is None:
        raise UserError(f"{cfg.encoder}: no predictor in this checkpoint; set use_predictor=false")
    if cfg.use_predictor:
        check_predictor(model, cfg.encoder)
    classes, spec, (train_x, train_y), (val_x, val_y) = prepare(cfg, model, out)
    val_y = {n: v.to(device) for n, v in val_y.items()}
    sizes = {name: len(getattr(classes, name)) for name in OUTPUTS}
    probe_cfg = ProbeConfig(
        dim=train_x.shape[-1], heads=cfg.probe_heads, depth=cfg.probe_depth, num_queries=3
    )
    heads = make_heads(lambda: AnticipationProbe(probe_cfg, sizes).to(device), cfg.lrs, cfg.wds, cfg.seed)
    optimizer = make_optimizer(heads)
    steps = -(-len(train_x) // cfg.batch_size)
    total, order = cfg.epochs * steps, torch.Generator().manual_seed(cfg.seed)
    run.settings.log_every = run.settings.checkpoint_every = steps  # an epoch: resume at its start
    grid = nn.ModuleList([h.module for h in heads])
    step = run.restore(grid, optimizer)
    if (position := run.data_position()) is not None:
        order.set_state(position)
    run.start(step, total, desc="anticipate")
    results: list[dict] = []

    def epoch_batches(epoch: int):
        return torch.randperm(len(train_x), generator=order).split(cfg.batch_size)

    def batch_of(indices):
        return train_x[indices].to(device), {n: v[indices].to(device) for n, v in train_y.items()}

    def loss_of(module, batch):
        x, y = batch
        logits = module(x)
        focal = [sigmoid_focal_loss(logits[n], y[n], cfg.focal_alpha, cfg.focal_gamma) for n in OUTPUTS]
        return sum(focal), logits

    def epoch_row(metrics: dict, seconds: float) -> dict:
        results[:] = evaluate(heads, val_x.to(device), val_y, cfg.top_k)
        scores = [r[f"action_recall@{cfg.top_k}"] for r in results]
        return dict(
            epoch=run.step // steps, loss=metrics["loss"], heads=results, best_action_recall=max(scores)
        )

    grid_steps = GridSteps(heads, optimizer, steps, total, epoch_batches, loss_of, batch_of)
    step = run.loop(step, grid_steps, Trained(grid, optimizer, position=order.get_state), row=epoch_row)
    if not results:  # resumed at the end: the heads as they were saved
        results[:] = evaluate(heads, val_x.to(device), val_y, cfg.top_k)
    scores = [r[f"action_recall@{cfg.top_k}"] for r in results]
    best = best_head(scores)
    save_anticipation_probe(heads[best].module.cpu(), out / "probe", classes, spec)
    summary = {
        "split": "val" if val_x is not train_x else "train",
        "best": {"index": best, "lr": heads[best].lr, "wd": heads[best].wd, **results[best]},
        "heads": [{"lr": h.lr, "wd": h.wd, **r} for h, r in zip(heads, results)],
        "chance_recall": {n: 100.0 * min(1.0, cfg.top_k / sizes[n]) for n in OUTPUTS},
        "config": asdict(cfg),
    }
    atomic_write_json(out / "heads.json", summary)
    k = cfg.top_k
    print(
        "best head: " + ", ".join(f"{n} recall@{k} {results[best][f'{n}_recall@{k}']:.1f}%" for n in OUTPUTS)
    )
