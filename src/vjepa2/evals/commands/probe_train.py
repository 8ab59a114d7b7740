"""``vjepa2 probe train``: attentive probes on a frozen encoder, many heads in one pass.

Every head is a full attentive probe (self-attention blocks, then one learned query that
cross-attends, then a linear layer) with its own learning rate and weight decay; all heads see
the same batch of frozen features, so a grid of 20 costs one pass over the data and one encoder
call per clip. The reference grid is 5 learning rates x 4 weight decays, AdamW, cosine decay to
0 without warmup. The head with the best validation top-1 is saved (``vjepa2.save_probe``) with
``features.json`` (how to make its input, ``evals.probes.feature_spec``) and ``heads.json`` (every
head's results).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vjepa2.atomic import atomic_write_json
from vjepa2.checkpoints.probes import PROBE_DIR, save_probe
from vjepa2.config import opt
from vjepa2.data.datasets import balanced_subset, read_index
from vjepa2.errors import UserError
from vjepa2.evals.classification import accuracy_counts
from vjepa2.evals.features import CachedClips, FeatureCache, FeatureExtractor, load_encoder, make_loader
from vjepa2.evals.head_grid import GridSteps, best_head, cosine_factor, make_heads, make_optimizer
from vjepa2.evals.probes import FEATURES_FILE, clip_dataset, evaluate_heads, feature_spec, label_names
from vjepa2.models.precision import DEVICE_HELP, DTYPE_HELP
from vjepa2.models.probe import AttentiveClassifier, ProbeConfig
from vjepa2.train.run import Run, RunConfig, Trained

log = logging.getLogger(__name__)

REFERENCE_LRS = [5e-3, 3e-3, 1e-3, 3e-4, 1e-4]
REFERENCE_WDS = [0.01, 0.1, 0.4, 0.8]
METRICS_FILE = "metrics.jsonl"


@dataclass
class ProbeTrainConfig:
    train: str = opt("", help="training index: CSV of 'path label' lines, or a folder of class folders")
    val: str = opt("", help="validation index (same format); the best head is picked on it")
    labels: str = opt(
        "", help="label names: text file, one per line (default: labels.json of worlds make-videos)"
    )
    out: str = opt("runs/probe", help="output folder: probe/, heads.json, metrics.jsonl")
    encoder: str = opt(
        "random:tiny",
        help="checkpoint to probe; random:<preset> or random:<checkpoint> for a random encoder of that shape",
    )
    encoder_key: str = opt("target_encoder", help="encoder entry of a pretraining checkpoint")
    seed: int = opt(0, help="seed of the heads, the data order and a random:<preset> encoder")
    train_clips: int = opt(
        0, help="low-shot: train on this many clips, class-balanced, drawn with the seed (0: all)"
    )
    num_frames: int = opt(16, help="frames per clip segment", min=1)
    fps: float = opt(4.0, help="frames per second sampled from the videos")
    frame_step: int = opt(0, help="take every n-th frame instead of sampling at fps (0: use fps)")
    crop: int = opt(0, help="input size in pixels (0: the encoder's pretraining crop)")
    num_segments: int = opt(1, help="windows per video whose tokens are concatenated (reference SSv2: 2)")
    layers: list[int] = opt([], help="encoder blocks to read, e.g. [-7,-5,-3,-1] (empty: the output)")
    levels: bool = opt(
        False,
        help="V-JEPA 2.1: read the encoder's 4 levels (each through its own level norm) instead of layers",
    )
    layer_concat: str = opt(
        "tokens", help="join several layers (or levels) along 'tokens' (reference) or 'features'"
    )
    single_frame: bool = opt(False, help="baseline: replace every clip by its middle frame repeated")
    augment: bool = opt(
        False, help="probe-time augmentation (random windows and resized crops); disables the cache"
    )
    aug_scale: list[float] = opt([0.08, 1.0], help="random resized crop: area fraction range")
    aug_ratio: list[float] = opt([0.75, 4 / 3], help="random resized crop: aspect ratio range")
    aug_flip: float = opt(0.0, help="horizontal flip probability (0: flips change left/right labels)")
    cache: bool = opt(
        True, help="cache features on disk when augmentation is off (encoder runs once per clip)"
    )
    cache_dir: str = opt("", help="feature cache folder (default: <out>/features)")
    probe_depth: int = opt(4, help="probe blocks: depth - 1 self-attention blocks + 1 cross-attention")
    probe_heads: int = opt(16, help="attention heads in the probe")
    lrs: list[float] = opt(REFERENCE_LRS, help="learning rates of the head grid")
    wds: list[float] = opt(REFERENCE_WDS, help="weight decays of the head grid (heads = lrs x wds)")
    epochs: int = opt(20, help="passes over the training set", min=1)
    eval_every: int = opt(
        1, help="validate every n epochs and after the last (low-shot runs with many short epochs)", min=1
    )
    batch_size: int = opt(16, help="clips per step", min=1)
    warmup_epochs: float = opt(0.0, help="linear warmup from 0, in epochs (reference: 0)")
    device: str = opt("auto", help=DEVICE_HELP)
    dtype: str = opt(
        "auto",
        help=f"precision of the encoder and the heads: {DTYPE_HELP}",
    )
    workers: int = opt(2, help="data loader worker processes")


def run_probe_train(cfg: ProbeTrainConfig) -> int:
    if not cfg.train:
        raise UserError("give a training index with --train (CSV 'path label' or a folder)")
    train_samples = read_index(cfg.train)  # before anything is written
    if cfg.train_clips:
        train_samples = balanced_subset(train_samples, cfg.train_clips, cfg.seed)
    settings = RunConfig(
        out=cfg.out,
        batch_size=cfg.batch_size,
        dtype=cfg.dtype,
        device=cfg.device,
        seed=cfg.seed,
        parallel="none",
    )
    with Run("probe train", cfg, settings, parallel=("none",), section="", log_file=METRICS_FILE) as run:
        cfg.dtype = run.dtype  # the feature spec and config.yaml record what runs, not 'auto'
        train_grid(cfg, run, train_samples)
    return 0


def train_grid(cfg: ProbeTrainConfig, run: Run, train_samples: list) -> None:
    """Train the head grid on ``train_samples`` and save the best head in ``run.out``; a run
    stopped part way resumes from its last epoch (``latest.pt``) to the same heads."""
    out = run.out
    model = load_encoder(cfg.encoder, run.device, cfg.seed, cfg.encoder_key)
    crop = cfg.crop or model.encoder.cfg.crop
    spec = feature_spec(cfg, model, crop)
    use_cache = cfg.cache and not cfg.augment
    cache = FeatureCache(cfg.cache_dir or out / "features", spec) if use_cache else None
    extract = FeatureExtractor(model, spec["layers"], cfg.layer_concat, cfg.single_frame, cfg.dtype, cache)

    train_set = clip_dataset(train_samples, spec, train=cfg.augment, cfg=cfg)
    num_classes = max(train_set.labels) + 1
    val_set = clip_dataset(cfg.val, spec) if cfg.val else None
    if val_set is not None:
        num_classes = max(num_classes, max(val_set.labels) + 1)
    names = label_names(cfg.train, cfg.labels, num_classes)
    train_loader = make_loader(CachedClips(train_set, cache), cfg.batch_size, True, cfg.workers, cfg.seed)
    val_loader = (
        make_loader(CachedClips(val_set, cache), cfg.batch_size, False, cfg.workers) if val_set else None
    )

    probe_cfg = ProbeConfig(
        dim=extract.dim, heads=cfg.probe_heads, depth=cfg.probe_depth, num_classes=num_classes
    )
    heads = make_heads(lambda: AttentiveClassifier(probe_cfg).to(run.device), cfg.lrs, cfg.wds, cfg.seed)
    optimizer = make_optimizer(heads)
    steps_per_epoch = len(train_loader)
    total, warmup = cfg.epochs * steps_per_epoch, int(cfg.warmup_epochs * steps_per_epoch)
    # one log line and one checkpoint per epoch: a resume starts an epoch, never the middle of one
    run.settings.log_every = run.settings.checkpoint_every = steps_per_epoch
    grid = nn.ModuleList([h.module for h in heads])
    step = run.restore(grid, optimizer)
    history: dict[int, list[float]] = {}  # evaluated epoch -> every head's top-1 (%)
    position = run.data_position()
    if position is not None:
        train_loader.generator.set_state(position["order"])
        history.update(position["history"])
    run.start(step, total, desc="probe train")
    print(f"probe train: {len(heads)} heads, {len(train_set)} train / {len(val_set or [])} val clips, "
          f"{num_classes} classes, tokens of width {extract.dim}")  # fmt: skip

    tally = EpochTally(len(heads))

    def epoch_batches(epoch: int):
        train_set.set_epoch(epoch)
        tally.start(epoch)
        return train_loader

    def prepare(items):
        tokens, labels = extract(items)
        return tokens[:, 0], labels  # (B, N, D'): one clip, one view

    def loss_of(module, inputs):
        tokens, labels = inputs
        with extract.autocast():  # the heads train in the encoder's precision (bf16: ~2x faster)
            logits = module(tokens).float()
        return F.cross_entropy(logits, labels), logits

    def epoch_row(metrics: dict, seconds: float) -> dict:
        epoch = tally.epoch + 1
        # Validation costs a pass over the whole val split: low-shot runs skip most epochs.
        validate = val_loader is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs)
        val_top1 = evaluate_heads(heads, val_loader, extract) if validate else None
        train_loss, train_top1 = tally.means()
        if validate or val_loader is None:
            history[epoch] = val_top1 or train_top1
        best = max(val_top1 or train_top1)
        run.bar.write(f"epoch {epoch}: best {'val' if validate else 'train'} top-1 {best:.2f}%")
        return dict(
            epoch=epoch,
            lr_factor=cosine_factor(epoch * steps_per_epoch - 1, total, warmup),
            train_loss=train_loss,
            train_top1=train_top1,
            val_top1=val_top1,
            best_top1=best,
            encoder_calls=extract.encoder_calls,
            seconds=seconds * steps_per_epoch,
        )

    steps = GridSteps(
        heads, optimizer, steps_per_epoch, total, epoch_batches, loss_of, prepare, warmup, tally.add
    )
    trained = Trained(
        grid, optimizer, position=lambda: {"order": train_loader.generator.get_state(), "history": history}
    )
    step = run.loop(step, steps, trained, row=epoch_row)
    save_results(out, heads, history, spec, names, cfg, has_val=val_loader is not None)
    run.finish(step, f"{PROBE_DIR}/", "heads.json")


class EpochTally:
    """Every head's mean training loss and top-1 (%) over the epoch so far."""

    def __init__(self, num_heads: int):
        self.num_heads, self.epoch = num_heads, 0
        self.start(0)

    def start(self, epoch: int) -> None:
        self.epoch, self.count = epoch, 0
        self.sums, self.correct = [0.0] * self.num_heads, [0] * self.num_heads

    def add(self, losses: list[float], logits: list[torch.Tensor], inputs) -> None:
        labels = inputs[1]
        for i in range(self.num_heads):
            self.sums[i] += losses[i] * len(labels)
            self.correct[i] += accuracy_counts(logits[i], labels)
        self.count += len(labels)

    def means(self) -> tuple[list[float], list[float]]:
        count = max(1, self.count)
        return [v / count for v in self.sums], [100.0 * c / count for c in self.correct]


def save_results(out: Path, heads, history, spec, names, cfg, has_val: bool) -> None:
    """Save the best head (our probe format + features.json) and every head's results;
    ``history`` maps each evaluated epoch to every head's top-1 (%), the last one picks the head."""
    final = history[max(history)] if history else [0.0] * len(heads)
    best = best_head(final)
    probe_dir = out / PROBE_DIR
    save_probe(heads[best].module.cpu(), probe_dir, names)
    atomic_write_json(probe_dir / FEATURES_FILE, spec)
    metric = "val_top1" if has_val else "train_top1"
    results = {
        "metric": metric,
        "best": {"index": best, "lr": heads[best].lr, "wd": heads[best].wd, metric: final[best]},
        "heads": [
            {
                "lr": h.lr,
                "wd": h.wd,
                metric: final[i],
                f"{metric}_per_epoch": [e[i] for e in history.values()],
            }
            for i, h in enumerate(heads)
        ],
        "evaluated_epochs": list(history),
        "config": asdict(cfg),
    }
    atomic_write_json(out / "heads.json", results)
    print(f"best head {best} (lr {heads[best].lr:g}, wd {heads[best].wd:g}): {metric} {final[best]:.2f}%")
