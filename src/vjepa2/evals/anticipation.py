"""``vjepa2 anticipate``: action anticipation with a frozen encoder and predictor (EK100 protocol).

For an action that starts at time s, the context clip is ``num_frames`` frames at ``fps`` ending
``anticipation_sec`` before s (frames before the video's start repeat the first frame). The frozen
encoder gives its tokens; the frozen predictor, given all of them as context, predicts the tokens
of the tubelet at the anticipated time (``anticipation_sec * fps / tubelet`` steps after the
clip's last one). Both token sets, concatenated, feed an attentive probe with three queries (verb,
noun, action) and one linear head each, trained with a sigmoid focal loss over a grid of heads.
The metric is mean-class recall@k (k = 5 on EK100): per class, the share of its samples whose
class is among the k top scores, averaged over the classes present.

V-JEPA 2.1: a g/G predictor reads the encoder's 4-level output and predicts 4 levels; the probe
reads the last level of both (the reference's EK100 eval). A distilled B/L predictor predicts in
its ViT-G teacher's width, not the encoder's: it is refused (``check_predictor``); probe the
encoder alone with ``use_predictor=false``.

Annotations: docs/anticipation-format.md. ``synthetic: N`` makes a demo data set first
(``make_event_videos``): physics scenes of the synthetic world whose "actions" are their events,
a verb (hit the floor, a wall, the ceiling, or collide) and a noun (the object: colour-shape).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from vjepa2.config import opt
from vjepa2.data.annotations import Annotation, read_annotations
from vjepa2.data.transforms import eval_transform
from vjepa2.data.video import decode_frames
from vjepa2.errors import UserError
from vjepa2.evals.features import FeatureCache, load_encoder, weights_fingerprint
from vjepa2.evals.head_grid import GridSteps, best_head, make_heads, make_optimizer
from vjepa2.models.precision import DEVICE_HELP, DTYPE_HELP, autocast
from vjepa2.models.probe import AttentivePooler, ProbeConfig
from vjepa2.train.run import Run, RunConfig, Trained
from vjepa2.worlds.events import make_event_videos

OUTPUTS = ("verb", "noun", "action")


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


# -- classes --------------------------------------------------------------------------------------
@dataclass
class Classes:
    """Class names: verbs, nouns and actions (the (verb, noun) pairs of the training set)."""

    verb: list[str]
    noun: list[str]
    action: list[str]

    @classmethod
    def from_annotations(cls, rows: list[Annotation]) -> Classes:
        return cls(
            sorted({r.verb for r in rows}),
            sorted({r.noun for r in rows}),
            sorted({f"{r.verb} {r.noun}" for r in rows}),
        )

    def labels(self, rows: list[Annotation]) -> dict[str, torch.Tensor]:
        """(A,) long class indices per output; rows must hold known classes only."""
        index = {name: {c: i for i, c in enumerate(getattr(self, name))} for name in OUTPUTS}
        values = {"verb": [r.verb for r in rows], "noun": [r.noun for r in rows]}
        values["action"] = [f"{r.verb} {r.noun}" for r in rows]
        return {name: torch.tensor([index[name][v] for v in values[name]]) for name in OUTPUTS}

    def known(self, rows: list[Annotation]) -> list[Annotation]:
        """Rows whose action was seen in training (the reference drops the others)."""
        actions = set(self.action)
        return [r for r in rows if f"{r.verb} {r.noun}" in actions]


def context_times(start_sec: float, anticipation_sec: float, num_frames: int, fps: float) -> np.ndarray:
    """(num_frames,) times (s) of the context frames: the last one 1/fps before start - gap."""
    end = start_sec - anticipation_sec
    return np.maximum(end - (num_frames - np.arange(num_frames)) / fps, 0.0)


# -- features -------------------------------------------------------------------------------------
def reads_levels(model) -> bool:
    """Whether the model's predictor reads and predicts the 4 levels (V-JEPA 2.1 g/G)."""
    return model.predictor is not None and model.predictor.cfg.embed_hidden > 0


def check_predictor(model, source: str) -> None:
    """The predictions must join the encoder's tokens: D wide (2.0) or 4 levels of D (2.1 g/G).
    A distilled 2.1 B/L predictor predicts in its ViT-G teacher's width (1664), which no probe on
    the encoder's D-wide tokens can read next to them."""
    width, dim = model.predictor.cfg.pred_dim, model.encoder.dim
    if not reads_levels(model) and width != dim:
        raise UserError(
            f"{source}: its predictor predicts {width} features per token, not the encoder's {dim} (a "
            "distilled V-JEPA 2.1 ViT-B/L predictor predicts in its ViT-G teacher's width): its tokens "
            "cannot join the encoder's in one probe; set use_predictor=false to probe the encoder alone"
        )


@torch.no_grad()
def anticipation_tokens(model, clips: torch.Tensor, future_steps: int, use_predictor: bool, dtype: str):
    """clips (B, T, C, H, W) -> tokens (B, N [+ h*w], D): the encoder's tokens of the context, then
    the predictor's tokens of the tubelet ``future_steps`` after the context's last one.

    A level predictor (V-JEPA 2.1 g/G) is fed the 4-level output (B, N, 4D) and predicts 4 levels;
    the probe reads the last D channels (the last level) of both, as the reference's EK100 eval.
    """
    levels = use_predictor and reads_levels(model)
    with autocast(model.device, dtype):
        tokens = model.encode(clips, levels=levels)
        if not use_predictor:
            return tokens.float()
        B, N, _ = tokens.shape
        t, h, w = model.encoder.grid(clips.shape)
        target_step = t + future_steps
        context_idx = torch.arange(N, device=tokens.device).expand(B, -1)
        target_idx = (target_step * h * w + torch.arange(h * w, device=tokens.device)).expand(B, -1)
        future = model.predict(tokens, context_idx, target_idx, grid=(target_step + 1, h, w))
    return torch.cat([tokens, future], dim=1)[..., -model.encoder.dim :].float()


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


# -- probe, loss, metric --------------------------------------------------------------------------
class AnticipationProbe(nn.Module):
    """Attentive pooler with one query per output (verb, noun, action), then a linear head each."""

    def __init__(self, cfg: ProbeConfig, num_classes: dict[str, int]):
        super().__init__()
        self.cfg, self.num_classes = cfg, dict(num_classes)
        self.pooler = AttentivePooler(cfg)
        self.heads = nn.ModuleDict({name: nn.Linear(cfg.dim, num_classes[name]) for name in OUTPUTS})

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.pooler(tokens)  # (B, 3, dim)
        return {name: self.heads[name](pooled[:, i]) for i, name in enumerate(OUTPUTS)}


def sigmoid_focal_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0):
    """Focal loss (RetinaNet) over one-vs-all sigmoids: logits (B, C), labels (B,) -> scalar.

    Per class: alpha_t (1 - p_t)^gamma BCE, with p_t the probability of the true answer; summed
    over classes (as the reference), averaged over the batch (so the lr does not depend on B).
    """
    targets = F.one_hot(labels, logits.shape[-1]).float()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = logits.sigmoid()
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets) if alpha >= 0 else 1.0
    return (alpha_t * (1 - p_t) ** gamma * bce).sum(-1).mean()


def mean_class_recall(scores: torch.Tensor, labels: torch.Tensor, k: int = 5) -> float:
    """Mean over the classes present in ``labels`` of recall@k (%): scores (N, C), labels (N,)."""
    top = scores.topk(min(k, scores.shape[-1]), dim=-1).indices
    hit = (top == labels[:, None]).any(-1).float()
    classes = labels.unique()
    return 100.0 * torch.stack([hit[labels == c].mean() for c in classes]).mean().item()


def save_anticipation_probe(probe: AnticipationProbe, path: Path, classes: Classes, spec: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in probe.state_dict().items()}, path / "model.safetensors"
    )
    config = {
        "format": "vjepa2-anticipation",
        "probe": asdict(probe.cfg),
        "classes": asdict(classes),
        "features": spec,
    }
    (path / "config.json").write_text(json.dumps(config, indent=1))


def load_anticipation_probe(path: str | Path) -> tuple[AnticipationProbe, Classes, dict]:
    """(probe, class names, feature spec) from a folder written by ``vjepa2 anticipate``."""
    path = Path(path)
    config = json.loads((path / "config.json").read_text())
    if config.get("format") != "vjepa2-anticipation":
        raise UserError(f"{path}/config.json: not an anticipation probe")
    classes = Classes(**config["classes"])
    probe = AnticipationProbe(ProbeConfig(**config["probe"]), {n: len(getattr(classes, n)) for n in OUTPUTS})
    probe.load_state_dict(load_file(path / "model.safetensors"))
    return probe.eval(), classes, config["features"]


# -- the command ----------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(heads, features: torch.Tensor, labels: dict, k: int, batch_size: int = 64) -> list[dict]:
    """Per head: mean-class recall@k and top-1 accuracy (%) of each output."""
    results = []
    for h in heads:
        h.module.eval()
        outs = [h.module(features[i : i + batch_size]) for i in range(0, len(features), batch_size)]
        scores = {name: torch.cat([o[name] for o in outs]) for name in OUTPUTS}
        result = {f"{n}_recall@{k}": mean_class_recall(scores[n], labels[n], k) for n in OUTPUTS}
        for n in OUTPUTS:
            result[f"{n}_top1"] = 100.0 * (scores[n].argmax(-1) == labels[n]).float().mean().item()
        results.append(result)
    return results


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
    (out / "heads.json").write_text(json.dumps(summary, indent=1))
    k = cfg.top_k
    print(
        "best head: " + ", ".join(f"{n} recall@{k} {results[best][f'{n}_recall@{k}']:.1f}%" for n in OUTPUTS)
    )
