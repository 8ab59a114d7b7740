"""Action anticipation with a frozen encoder and predictor (EK100 protocol): the pieces that
``vjepa2 anticipate`` (``evals.commands.anticipate``) assembles.

For an action that starts at time s, the context clip is ``num_frames`` frames at ``fps`` ending
``anticipation_sec`` before s (``context_times``; frames before the video's start repeat the first
frame). The frozen encoder gives its tokens; the frozen predictor, given all of them as context,
predicts the tokens of the tubelet at the anticipated time (``anticipation_tokens``). Both token
sets, concatenated, feed an attentive probe with three queries (verb, noun, action) and one linear
head each (``AnticipationProbe``), trained with a sigmoid focal loss. The metric is mean-class
recall@k (k = 5 on EK100): per class, the share of its samples whose class is among the k top
scores, averaged over the classes present.

V-JEPA 2.1: a g/G predictor reads the encoder's 4-level output and predicts 4 levels; the probe
reads the last level of both (the reference's EK100 eval). A distilled B/L predictor predicts in
its ViT-G teacher's width, not the encoder's: it is refused (``check_predictor``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from vjepa2.atomic import atomic_write_json
from vjepa2.checkpoints.files import atomic_save_file
from vjepa2.data.annotations import Annotation
from vjepa2.errors import UserError
from vjepa2.models.precision import autocast
from vjepa2.models.probe import AttentivePooler, ProbeConfig

OUTPUTS = ("verb", "noun", "action")


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
    atomic_save_file(probe.state_dict(), path / "model.safetensors")
    config = {
        "format": "vjepa2-anticipation",
        "probe": asdict(probe.cfg),
        "classes": asdict(classes),
        "features": spec,
    }
    atomic_write_json(path / "config.json", config)


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
