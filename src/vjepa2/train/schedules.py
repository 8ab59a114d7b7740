"""Learning-rate and EMA-momentum schedules as pure functions of the optimizer step.

Nothing here keeps state: a resumed run recomputes the value at its step and continues exactly.
``step`` counts optimizer steps already taken (0 for the first update), and the value returned is
the one used by update number ``step + 1``, as in the reference schedulers (which advance their
counter before computing).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vjepa2.config import opt


@dataclass
class LRScheduleConfig:
    """Warmup-constant-decay ("WSD"): linear warmup start_lr -> lr, constant, linear cooldown to final_lr."""

    start_lr: float = opt(1e-4, help="learning rate at the first step of the warmup")
    lr: float = opt(5.25e-4, help="peak learning rate, held after the warmup")
    final_lr: float = opt(1e-6, help="learning rate at the end of the cooldown")
    warmup_steps: int = opt(12_000, help="optimizer steps of linear warmup")
    constant_steps: int = opt(228_000, help="optimizer steps at the peak learning rate")
    cooldown_steps: int = opt(12_000, help="optimizer steps of linear decay to final_lr (the cooldown phase)")

    @property
    def total_steps(self) -> int:
        return self.warmup_steps + self.constant_steps + self.cooldown_steps


@dataclass
class EMAConfig:
    """EMA momentum of the target encoder: constant (V-JEPA 2) or linear start -> end (V-JEPA 1)."""

    start: float = opt(0.99925, help="EMA momentum at step 0", max=1)
    end: float = opt(0.99925, help="EMA momentum after ramp_steps (equal to start: constant)", max=1)
    ramp_steps: int = opt(0, help="steps of the linear ramp start -> end (0: constant start)")


def warmup_constant_decay(step: int, cfg: LRScheduleConfig) -> float:
    """Learning rate of optimizer update ``step + 1`` (step counts from 0)."""
    k = step + 1
    warmup, constant, cooldown = cfg.warmup_steps, cfg.constant_steps, cfg.cooldown_steps
    if k < warmup:
        return cfg.start_lr + (k / warmup) * (cfg.lr - cfg.start_lr)
    if k < warmup + constant:
        return cfg.lr
    progress = min(1.0, (k - warmup - constant) / max(1, cooldown))
    return cfg.lr + progress * (cfg.final_lr - cfg.lr)


def ema_momentum(step: int, cfg: EMAConfig) -> float:
    """EMA momentum used after optimizer update ``step + 1``; clamps at ``end`` after the ramp."""
    if cfg.ramp_steps <= 0:
        return cfg.start
    progress = min(1.0, step / cfg.ramp_steps)
    return cfg.start + progress * (cfg.end - cfg.start)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Write ``lr`` into every parameter group (times the group's optional "lr_scale")."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
