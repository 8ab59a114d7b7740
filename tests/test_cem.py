"""The cross-entropy method finds the minimum of known energies inside its action bounds."""

import pytest
import torch

from vjepa2.planning.cem import CEMConfig, cem, latent_energy, project_l1_ball


def _threshold_by_bisection(x: torch.Tensor, radius: float) -> torch.Tensor:
    """The soft threshold t with sum(max(|x| - t, 0)) = radius, found by bisection (one vector)."""
    lo, hi = 0.0, float(x.abs().max())
    for _ in range(100):
        mid = (lo + hi) / 2
        if float((x.abs() - mid).clamp(min=0).sum()) > radius:
            lo = mid
        else:
            hi = mid
    return torch.tensor(hi, dtype=x.dtype)


def test_project_l1_ball_matches_bisection():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=gen, dtype=torch.float64) * 0.2
    radius = 0.3
    p = project_l1_ball(x, radius)
    for xi, pi in zip(x, p):
        if xi.abs().sum() <= radius:
            torch.testing.assert_close(pi, xi)
        else:
            t = _threshold_by_bisection(xi, radius)
            torch.testing.assert_close(pi, xi.sign() * (xi.abs() - t).clamp(min=0), atol=1e-9, rtol=0)
    assert bool((p.abs().sum(-1) <= radius + 1e-9).all())
    # batched over extra leading dims as well
    torch.testing.assert_close(project_l1_ball(x.view(10, 20, 5), radius), p.view(10, 20, 5))


def _quadratic(target: torch.Tensor, calls: list):
    def energy(actions):  # (N, H, A) -> (N,)
        calls.append(tuple(actions.shape))
        return ((actions - target) ** 2).flatten(1).sum(-1)

    return energy


def test_cem_box_finds_known_minimum():
    target = torch.tensor([[0.3, -0.5], [0.1, 0.7], [-0.6, 0.2]])  # (H=3, A=2), inside the box
    calls = []
    cfg = CEMConfig(samples=300, iterations=15, elites=20, horizon=3, bound="box", low=[-1.0], high=[1.0])
    result = cem(_quadratic(target, calls), 2, cfg, generator=torch.Generator().manual_seed(0))
    assert result.actions.shape == (3, 2)
    torch.testing.assert_close(result.actions, target, atol=0.03, rtol=0)
    # one batched call per iteration with every sample, plus one for the returned mean
    assert calls[:-1] == [(300, 3, 2)] * 15 and calls[-1] == (1, 3, 2)
    assert result.history[-1] <= result.history[0]
    assert result.energy == pytest.approx(float(((result.actions - target) ** 2).sum()), rel=1e-5)


def test_cem_l1_ball_returns_projection_of_outside_minimum():
    # The closest point of the ball to an outside target is its Euclidean projection.
    target = torch.tensor([[0.2, -0.05, 0.0]])
    radius = 0.1
    cfg = CEMConfig(samples=400, iterations=20, elites=20, horizon=1, bound="l1", radius=radius)
    result = cem(_quadratic(target, []), 3, cfg, generator=torch.Generator().manual_seed(1))
    expected = project_l1_ball(target, radius)
    assert float(result.actions.abs().sum()) <= radius + 1e-6
    torch.testing.assert_close(result.actions, expected, atol=0.01, rtol=0)


def test_cem_warm_start_and_bad_config():
    target = torch.tensor([[0.5, 0.5]])
    cfg = CEMConfig(samples=50, iterations=1, elites=5, horizon=1, bound="box", init_std=1e-3)
    result = cem(_quadratic(target, []), 2, cfg, init_mean=target.clone())
    torch.testing.assert_close(result.actions, target, atol=0.01, rtol=0)
    with pytest.raises(ValueError, match="elites"):
        cem(_quadratic(target, []), 2, CEMConfig(samples=4, elites=8))
    with pytest.raises(ValueError, match="bound"):
        cem(_quadratic(target, []), 2, CEMConfig(bound="sphere"))
    with pytest.raises(ValueError, match="low"):
        cem(_quadratic(target, []), 2, CEMConfig(bound="box", low=[0.0, 0.0, 0.0]))


def test_latent_energy_is_mean_l1():
    pred = torch.randn(4, 6, 8)
    goal = torch.randn(6, 8)
    energy = latent_energy(pred, goal)
    assert energy.shape == (4,)
    torch.testing.assert_close(energy[2], (pred[2] - goal).abs().mean())


def test_icem_reaches_the_minimum_with_a_fraction_of_the_energy_calls():
    target = torch.tensor([[0.3, -0.5], [0.1, 0.7], [-0.6, 0.2]])  # (H=3, A=2)
    paper, icem_calls = [], []
    base = CEMConfig(samples=300, iterations=15, elites=20, horizon=3, bound="box")
    full = cem(_quadratic(target, paper), 2, base, generator=torch.Generator().manual_seed(0))
    icem = CEMConfig(samples=100, iterations=8, elites=10, horizon=3, bound="box", decay=1.3)
    icem.keep_elites, icem.colored_noise, icem.return_best = 0.3, 2.0, True
    result = cem(_quadratic(target, icem_calls), 2, icem, generator=torch.Generator().manual_seed(0))
    # the population shrinks by 1.3 per iteration down to the elites; no extra call for the mean
    assert [n for n, _, _ in icem_calls] == [max(10, round(100 / 1.3**i)) for i in range(8)]
    assert sum(n for n, _, _ in icem_calls) * 10 < sum(n for n, _, _ in paper)
    torch.testing.assert_close(result.actions, target, atol=0.1, rtol=0)
    # kept elites make the best energy per iteration non-increasing; the result is the best seen
    assert all(b <= a for a, b in zip(result.history, result.history[1:]))
    assert result.energy == pytest.approx(min(result.history))
    assert result.energy == pytest.approx(float(((result.actions - target) ** 2).sum()), rel=1e-5)
    assert result.energy < 0.02 and full.energy < 1e-4  # close, on 1/12 of the energy calls


def test_colored_noise_is_unit_std_and_smooth_along_the_horizon():
    from vjepa2.planning.cem import colored_noise

    gen = torch.Generator().manual_seed(0)
    white = colored_noise((2000, 16, 2), 0.0, gen)
    red = colored_noise((2000, 16, 2), 2.0, gen)
    assert red.shape == (2000, 16, 2)
    torch.testing.assert_close(red.std(), torch.tensor(1.0), atol=1e-4, rtol=0)

    def lag_one(x):  # correlation of neighbouring steps
        return float((x[:, 1:] * x[:, :-1]).mean() / (x * x).mean())

    assert abs(lag_one(white)) < 0.05 and lag_one(red) > 0.5
    assert colored_noise((3, 1, 2), 2.0, gen).shape == (3, 1, 2)  # horizon 1: plain white noise
