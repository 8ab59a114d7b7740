import pytest
import torch

from vjepa2.train.schedules import EMAConfig, LRScheduleConfig, ema_momentum, set_lr, warmup_constant_decay

CFG = LRScheduleConfig(
    start_lr=1e-4, lr=5e-4, final_lr=1e-6, warmup_steps=10, constant_steps=20, cooldown_steps=8
)


def test_warmup_is_linear_from_start_to_peak():
    lrs = [warmup_constant_decay(s, CFG) for s in range(CFG.warmup_steps)]
    # Update k = step + 1 uses start + k / warmup of the way, as the reference's counter does.
    assert lrs[0] == pytest.approx(1e-4 + 0.1 * 4e-4)
    assert lrs[-1] == pytest.approx(5e-4)
    steps = [b - a for a, b in zip(lrs, lrs[1:])]
    assert all(d == pytest.approx(4e-5) for d in steps)


def test_constant_then_linear_decay_to_final():
    constant = [
        warmup_constant_decay(s, CFG) for s in range(CFG.warmup_steps, CFG.warmup_steps + CFG.constant_steps)
    ]
    assert all(v == 5e-4 for v in constant)
    tail = [
        warmup_constant_decay(s, CFG)
        for s in range(CFG.warmup_steps + CFG.constant_steps - 1, CFG.total_steps)
    ]
    assert tail[0] == pytest.approx(5e-4)
    assert tail[-1] == pytest.approx(1e-6)
    diffs = [b - a for a, b in zip(tail, tail[1:])]
    assert all(d == pytest.approx((1e-6 - 5e-4) / CFG.cooldown_steps) for d in diffs)
    # Past the end it stays at final_lr.
    assert warmup_constant_decay(CFG.total_steps + 100, CFG) == pytest.approx(1e-6)


def test_no_warmup_and_no_cooldown():
    flat = LRScheduleConfig(
        start_lr=0.0, lr=1e-3, final_lr=0.0, warmup_steps=0, constant_steps=5, cooldown_steps=0
    )
    assert [warmup_constant_decay(s, flat) for s in range(4)] == [1e-3] * 4


def test_ema_constant_and_ramp():
    assert all(ema_momentum(s, EMAConfig()) == 0.99925 for s in (0, 10, 10**6))
    ramp = EMAConfig(start=0.998, end=1.0, ramp_steps=100)
    assert ema_momentum(0, ramp) == 0.998
    assert ema_momentum(50, ramp) == pytest.approx(0.999)
    assert ema_momentum(100, ramp) == ema_momentum(1000, ramp) == 1.0


def test_schedules_are_functions_of_the_step_only():
    # Resuming at any step recomputes exactly the values of the uninterrupted sequence.
    full = [warmup_constant_decay(s, CFG) for s in range(CFG.total_steps)]
    resumed = full[:17] + [warmup_constant_decay(s, CFG) for s in range(17, CFG.total_steps)]
    assert full == resumed


def test_set_lr_respects_group_scale():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    optim = torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr_scale": 0.5}], lr=1.0)
    set_lr(optim, 2e-3)
    assert [g["lr"] for g in optim.param_groups] == [2e-3, 1e-3]
