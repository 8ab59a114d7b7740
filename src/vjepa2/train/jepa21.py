"""The V-JEPA 2.1 pretraining objective: the dense predictive loss on multi-level targets.

Facts from the reference recipe (shared/reference/vjepa21-system.md, section 7):
  targets = per-level layer_norm(target_encoder(clips, levels=True))      (B, N, L*D), no grad
  for each mask generator g:
      z = encoder(clips, context_idx[g], levels=True)      the levels, when the predictor reads them
      pred, ctx = predictor(z, ..., modality, return_context=True)
      loss_g = mean |pred - targets[target_idx]| + lambda * mean w * |ctx - targets[context_idx]|
  loss = mean over generators (and, with an image batch, the mean of the video and image losses)
  w = 1 / sqrt(d), d = distance from a context token to the nearest target token, in the main
  phase; w = 1 in the cooldown. lambda ramps linearly from 0 (step ramp_start) to its value
  (step ramp_end) in the main phase and is constant in the cooldown.

Choices where the facts are silent (see ``DenseObjective``): the weighted context term is the plain
mean of w * |.| (not divided by the mean weight); the image and video losses count equally, as the
reference's gradient average over its image ranks and video ranks (one half each) makes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vjepa2.config import opt
from vjepa2.errors import UserError
from vjepa2.models.encoder import EncoderConfig, VideoEncoder, layer_norm_features
from vjepa2.models.predictor import PredictorConfig, gather_tokens
from vjepa2.models.rope import token_coords
from vjepa2.train.jepa import JepaObjective, Student, View
from vjepa2.train.schedules import LRScheduleConfig

RECIPES = ("2.0", "2.1")


@dataclass
class LossConfig:
    recipe: str = opt(
        "2.0",
        help="pretraining recipe: 2.0 (L1 on the masked tokens) or 2.1 (multi-level targets, dense "
        "loss on the context tokens too, optional image batches; needs a 2.1 encoder and predictor)",
    )
    context_weight: float = opt(0.5, help="2.1: lambda, the context term's weight after the ramp")
    ramp_start: int = opt(15_000, help="2.1: step where lambda starts rising from 0 (linearly)")
    ramp_end: int = opt(30_000, help="2.1: step where lambda reaches context_weight")
    distance_weighting: bool = opt(
        True, help="2.1: weight context tokens by 1/sqrt(distance to the targets) (main phase only)"
    )


def context_weight(cfg: LossConfig, step: int, cooldown: bool) -> float:
    """lambda at optimizer step ``step`` (0-based): 0 up to ramp_start, linear up to ramp_end, then
    ``cfg.context_weight``; constant in the cooldown."""
    if cooldown or step >= cfg.ramp_end:
        return cfg.context_weight
    if step <= cfg.ramp_start:
        return 0.0
    return cfg.context_weight * (step - cfg.ramp_start) / (cfg.ramp_end - cfg.ramp_start)


@torch.no_grad()
def distance_weights(context_idx: torch.Tensor, target_idx: torch.Tensor, grid: tuple[int, int, int]):
    """1 / sqrt(d) per context token -> (B, Kc) float32, d the Euclidean distance in (t, row, col)
    grid units from context token ``context_idx`` (B, Kc) to the nearest of its sample's targets
    ``target_idx`` (B, Kt) (the tokens the loss predicts; the masks' truncation leaves a few
    masked tokens in neither list, and those do not count as targets)."""
    targets = token_coords(target_idx, grid)  # (B, Kt, 3)
    # One sample at a time bounds the (Kc, Kt) distance matrix; the exact (not matmul) distance
    # keeps whole-number distances exact, so d = 1 gives exactly weight 1.
    nearest = torch.stack(
        [
            torch.cdist(c, t, compute_mode="donot_use_mm_for_euclid_dist").amin(dim=-1)
            for c, t in zip(token_coords(context_idx, grid), targets)
        ]
    )  # (B, Kc)
    # Context and target tokens are disjoint, so d >= 1; the clamp only guards a malformed mask.
    return nearest.clamp_min(1.0).rsqrt()


def level_targets(target_encoder, clips: torch.Tensor, levels: int) -> torch.Tensor:
    """The EMA encoder's multi-level features of the full clip, each D-wide level through a
    parameter-free LayerNorm of its own -> (B, N, levels * D), no grad."""
    with torch.no_grad():
        features = target_encoder(clips, levels=True)  # (B, N, L*D)
    return layer_norm_features(features.unflatten(-1, (levels, -1))).flatten(-2)


def dense_l1(
    pred: torch.Tensor,
    ctx: torch.Tensor,
    targets: torch.Tensor,
    context_idx: torch.Tensor,
    target_idx: torch.Tensor,
    weights: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One mask generator's two terms -> (mean |pred - targets[target_idx]|, context term).

    pred (B, Kt, P), ctx (B, Kc, P), targets (B, N, P), weights (B, Kc) or None (plain mean).
    The context term is the plain mean of w * |ctx - targets[context_idx]| over tokens and
    channels: the facts give the per-token weight but no normalisation, so none is added (the
    weights, <= 1, then also scale the term down against the masked-token term)."""
    pred_term = (pred.float() - gather_tokens(targets, target_idx).float()).abs().mean()
    error = (ctx.float() - gather_tokens(targets, context_idx).float()).abs()  # (B, Kc, P)
    if weights is not None:
        error = error * weights.unsqueeze(-1)
    return pred_term, error.mean()


class DenseStudent(Student):
    """The 2.1 student: context encoder (multi-level output when the predictor reads it) and the
    predictor with its context projection. ``forward(views)`` runs every view in one call, so
    that DDP sees a single forward per backward -> per view, per generator (pred, ctx)."""

    def __init__(self, encoder: VideoEncoder, predictor, mask_index: int = 0):
        super().__init__(encoder, predictor, mask_index)
        self.levels = reads_levels(predictor.cfg)

    def forward(self, views: list[View]) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
        return [Student.forward(self, *view) for view in views]

    def predict(self, clips, context_idx, target_idx, grid, modality: str):
        tokens = self.encoder(clips, context_idx=context_idx, levels=self.levels)  # (B, Kc, L*D or D)
        return self.predictor(
            tokens, context_idx, target_idx, grid, self.mask_index, modality, return_context=True
        )


def reads_levels(predictor: PredictorConfig) -> bool:
    """Whether a 2.1 predictor reads the encoder's multi-level output (its MLP embedding)."""
    return predictor.embed_hidden > 0


class DenseObjective:
    """The 2.1 recipe as a pretraining objective (see the module docstring and ``JepaObjective``
    for the calling convention). cooldown_start: the first step of the cooldown phase."""

    def __init__(self, cfg: LossConfig, encoder: VideoEncoder, cooldown_start: float):
        self.cfg, self.cooldown_start = cfg, cooldown_start
        self.grid, self.levels, self.dim = encoder.grid, len(encoder.cfg.level_layers), encoder.dim

    def scalars(self, step: int) -> dict[str, float]:
        return {"context_weight": context_weight(self.cfg, step, step >= self.cooldown_start)}

    def __call__(self, student, target_encoder, views: list[View], step: int):
        """-> (loss, {loss_pred, loss_context[, loss_image]}, video targets' last level (B, N, D))."""
        lam = self.scalars(step)["context_weight"]
        weighted = self.cfg.distance_weighting and step < self.cooldown_start
        targets = [level_targets(target_encoder, view.clips, self.levels) for view in views]
        outputs = student(views)
        losses, pred_terms, ctx_terms = [], [], []
        for view, target, pairs in zip(views, targets, outputs):
            grid = self.grid(view.clips.shape)
            terms = []
            for (pred, ctx), c_idx, t_idx in zip(pairs, view.context_idx, view.target_idx):
                weights = distance_weights(c_idx, t_idx, grid) if weighted else None
                terms.append(dense_l1(pred, ctx, target, c_idx, t_idx, weights))
            pred_term, ctx_term = (torch.stack(t).mean() for t in zip(*terms))  # over generators
            losses.append(pred_term + lam * ctx_term)
            pred_terms.append(pred_term.detach())
            ctx_terms.append(ctx_term.detach())
        stats = {"loss_pred": torch.stack(pred_terms).mean(), "loss_context": torch.stack(ctx_terms).mean()}
        if len(views) > 1:
            stats["loss_image"] = losses[1].detach()
        return torch.stack(losses).mean(), stats, targets[0][..., -self.dim :]


def check_recipe(cfg: LossConfig, encoder: EncoderConfig, predictor: PredictorConfig, images: int) -> None:
    """The recipe must fit the models (and 2.0 takes no images): UserError saying what to change."""
    if cfg.recipe not in RECIPES:
        raise UserError(f"loss.recipe: expected one of {list(RECIPES)}, got {cfg.recipe!r}")
    if cfg.recipe == "2.0":
        if images:
            raise UserError("images.batch_size: image batches are part of the 2.1 recipe (loss.recipe=2.1)")
        if predictor.context_proj:  # it reads or predicts other widths than the 2.0 loss gives it
            raise UserError(
                "a V-JEPA 2.1 predictor trains with loss.recipe=2.1 (the 2.0 recipe: a 2.0 predictor)"
            )
        return
    if not encoder.level_layers or not predictor.context_proj:
        raise UserError(
            "loss.recipe=2.1 needs a V-JEPA 2.1 encoder and predictor (e.g. model.encoder_preset=tiny-2.1 "
            f"model.predictor_preset=tiny-2.1); got a {encoder.version} encoder and a {predictor.version} predictor"
        )
    width = len(encoder.level_layers) * encoder.dim
    if predictor.pred_dim != width:
        raise UserError(
            f"loss.recipe=2.1: the predictor predicts {predictor.pred_dim} channels but the targets "
            f"(the encoder's {len(encoder.level_layers)} levels of {encoder.dim}) have {width}; a distilled "
            "predictor (2.1-distilled, a ViT-G teacher's width) cannot be pretrained from scratch: use a "
            "level predictor (2.1, tiny-2.1)"
        )
    reads = width if reads_levels(predictor) else encoder.dim
    if predictor.enc_dim != reads:
        raise UserError(
            f"loss.recipe=2.1: the predictor reads {predictor.enc_dim} channels, the encoder gives {reads}"
        )


def make_objective(cfg: LossConfig, schedule: LRScheduleConfig, encoder: VideoEncoder):
    """The objective of ``cfg.recipe``. The 2.1 cooldown is the schedule's decay stretch (after
    warmup + constant steps), whether it is a phase of this run or a run of its own."""
    if cfg.recipe == "2.0":
        return JepaObjective()
    start = schedule.warmup_steps + schedule.constant_steps
    return DenseObjective(cfg, encoder, start if schedule.cooldown_steps > 0 else math.inf)
