"""Many probe heads trained at once on the same frozen features: the grid of learning rates x
weight decays of the reference protocol, one pass over the data for all of them.

``GridSteps`` is the step function ``Run.loop`` runs for such a grid (``probe train``,
``anticipate``): epoch by epoch, one batch per step, every head updated on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from vjepa2.errors import UserError


@dataclass
class Head:
    lr: float
    wd: float
    module: nn.Module


def make_heads(build: Callable[[], nn.Module], lrs: list[float], wds: list[float], seed: int) -> list[Head]:
    """One head per (wd, lr) pair, wd-major as the reference lists them; each drawn from ``seed``."""
    if not lrs or not wds:
        raise UserError("the head grid needs at least one learning rate and one weight decay")
    heads = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for wd in wds:
            for lr in lrs:
                heads.append(Head(lr, wd, build()))
    return heads


def make_optimizer(heads: list[Head]) -> torch.optim.AdamW:
    """AdamW with one parameter group per head (its lr and weight decay on every parameter)."""
    groups = [{"params": list(h.module.parameters()), "lr": h.lr, "weight_decay": h.wd} for h in heads]
    return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)


def cosine_factor(step: int, total: int, warmup: int = 0) -> float:
    """Multiplier of the peak lr at update ``step`` (from 0): linear warmup, then cosine to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def set_head_lrs(optimizer: torch.optim.Optimizer, heads: list[Head], factor: float) -> None:
    for group, head in zip(optimizer.param_groups, heads):
        group["lr"] = head.lr * factor


def heads_step(optimizer: torch.optim.Optimizer, heads: list[Head], loss_of: Callable) -> tuple[list, list]:
    """One update of every head; ``loss_of(module)`` -> (scalar loss, outputs). Heads share no
    parameters, so one backward of the summed losses gives each head exactly its own gradient.
    Returns the losses (floats) and the detached outputs, one per head."""
    results = [loss_of(h.module) for h in heads]
    optimizer.zero_grad(set_to_none=True)
    torch.stack([loss for loss, _ in results]).sum().backward()
    optimizer.step()
    return [loss.item() for loss, _ in results], [_detach(out) for _, out in results]


def _detach(out):
    return {k: v.detach() for k, v in out.items()} if isinstance(out, dict) else out.detach()


def best_head(scores: list[float]) -> int:
    """Index of the highest score (the first one on ties)."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


class GridSteps:
    """``Run.loop``'s step function for a grid of heads trained epoch by epoch.

    Step ``s`` (from 0) updates every head on the next batch of epoch ``s // steps_per_epoch``:
    ``epoch_batches(epoch)`` opens an epoch's batches (an empty one, nothing in it readable, is
    passed over); ``prepare(batch)`` makes the heads' input once for all of them (the frozen
    encoder's tokens); ``loss_of(module, inputs)`` -> (scalar loss, outputs); ``tally(losses,
    outputs, inputs)`` sees every update. The learning rates follow
    ``cosine_factor`` over ``total`` steps with ``warmup``. Returns ``{"loss": [one per head]}``;
    a step left without a batch at an epoch's end updates nothing and repeats the last losses."""

    def __init__(
        self,
        heads: list[Head],
        optimizer: torch.optim.Optimizer,
        steps_per_epoch: int,
        total: int,
        epoch_batches: Callable[[int], Iterable],
        loss_of: Callable,
        prepare: Callable = lambda batch: batch,
        warmup: int = 0,
        tally: Callable | None = None,
    ):
        self.heads, self.optimizer, self.steps_per_epoch = heads, optimizer, steps_per_epoch
        self.schedule = (total, warmup)
        self.epoch_batches, self.prepare, self.loss_of, self.tally = epoch_batches, prepare, loss_of, tally
        self.batches = None
        self.losses = [0.0] * len(heads)

    def __call__(self, step: int) -> dict:
        if step % self.steps_per_epoch == 0 or self.batches is None:
            for h in self.heads:
                h.module.train()
            self.batches = iter(self.epoch_batches(step // self.steps_per_epoch))
        batch = next(self.batches, None)
        while batch is not None and not _filled(batch):
            batch = next(self.batches, None)
        if (step + 1) % self.steps_per_epoch == 0:
            # Run the epoch's iterator to its end: a sampler draws its next permutation then, and
            # the data position saved at the epoch's end must come after that draw.
            for _ in self.batches:
                pass
        if batch is None:
            return {"loss": self.losses}
        inputs = self.prepare(batch)
        set_head_lrs(self.optimizer, self.heads, cosine_factor(step, *self.schedule))
        self.losses, outputs = heads_step(
            self.optimizer, self.heads, lambda module: self.loss_of(module, inputs)
        )
        if self.tally is not None:
            self.tally(self.losses, outputs, inputs)
        return {"loss": self.losses}


def _filled(batch) -> bool:
    return not (isinstance(batch, (list, tuple)) and len(batch) == 0)
