"""The cross-entropy method (CEM) over action sequences, and the latent energy it minimises.

V-JEPA 2-AC plans by minimising an energy over action sequences a_1..H: the L1 distance between
the latent the world model predicts H steps ahead and the latent of the goal image. CEM keeps a
Gaussian over sequences (mean 0 at the start), samples N of them, keeps the ``elites`` lowest
energies, refits mean and std (blended with the previous ones by the momenta) and, after the
iterations, returns the mean. Samples are kept inside the action bounds: a box, or an L1 ball
of radius r around 0 (the paper: 800 samples, 10 iterations, 10 elites, horizon 1, r = 0.075).

The energy is any function of a batch of sequences (N, H, A) -> (N,), so the same CEM drives the
latent world model, the true simulator (the oracle baseline) and the tests' known energies.

iCEM options (Pinneri et al., 2020) spend fewer energy calls for the same plan: ``decay`` shrinks
the population every iteration, ``keep_elites`` carries the best samples of one iteration into the
next (their energies are kept: the energy is deterministic, so they are not scored again),
``colored_noise`` draws noise with power ~ 1/f^beta along the horizon (smooth sequences; no effect
at horizon 1) and ``return_best`` returns the lowest-energy sample seen instead of the mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from vjepa2.config import opt

Energy = Callable[[torch.Tensor], torch.Tensor]  # actions (N, H, A) -> energies (N,)


@dataclass
class CEMConfig:
    samples: int = opt(800, help="action sequences drawn per iteration (all scored in one batch)")
    iterations: int = opt(10, help="CEM iterations per planned action")
    elites: int = opt(10, help="lowest-energy samples kept to refit the Gaussian")
    horizon: int = opt(1, help="planned steps per sequence (the energy is read at the last one)")
    momentum_mean: float = opt(0.15, help="weight of the previous mean when refitting (0: elites only)")
    momentum_std: float = opt(0.15, help="weight of the previous std when refitting")
    bound: str = opt("l1", help="action bounds: 'l1' (ball of radius `radius`) or 'box' ([low, high])")
    radius: float = opt(0.075, help="radius of the L1 ball, in action units")
    low: list[float] = opt([-1.0], help="box lower bound (one value, or one per action dim)")
    high: list[float] = opt([1.0], help="box upper bound (one value, or one per action dim)")
    init_std: float = opt(0.0, help="initial std of the Gaussian (0: radius for 'l1', half the box width)")
    min_std: float = opt(1e-4, help="floor on the std, so the search never freezes entirely")
    decay: float = opt(1.0, help="iCEM: the population shrinks by this factor every iteration (1: constant)")
    keep_elites: float = opt(
        0.0, help="iCEM: fraction of each iteration's elites carried into the next population (0: none)"
    )
    colored_noise: float = opt(
        0.0, help="iCEM: exponent beta of the noise's 1/f^beta spectrum along the horizon (0: white)"
    )
    return_best: bool = opt(False, help="return the lowest-energy sample seen instead of the final mean")


@dataclass
class CEMResult:
    """actions (H, A): the final mean; energy: its energy; history: best elite energy per iteration."""

    actions: torch.Tensor
    energy: float
    history: list[float] = field(default_factory=list)


def project_l1_ball(x: torch.Tensor, radius: float) -> torch.Tensor:
    """Euclidean projection of every vector x[..., :] onto {v : |v|_1 <= radius}.

    Vectors inside the ball are unchanged; the others are soft-thresholded, sign(x) max(|x| - t, 0),
    with the threshold t found by sorting (Duchi et al., 2008), batched over leading dims.
    """
    if radius <= 0:
        raise ValueError(f"the L1 ball needs a positive radius, got {radius}")
    mags = x.abs()
    inside = mags.sum(-1, keepdim=True) <= radius
    sorted_mags = mags.sort(dim=-1, descending=True).values
    cumsum = sorted_mags.cumsum(-1) - radius
    ranks = torch.arange(1, x.shape[-1] + 1, device=x.device, dtype=x.dtype)
    # the largest k with sorted_k > (cumsum_k - r) / k fixes the threshold
    active = sorted_mags * ranks > cumsum
    k = active.sum(-1, keepdim=True) - 1  # active is a prefix: k indexes its last entry
    threshold = cumsum.gather(-1, k) / (k + 1).to(x.dtype)
    projected = x.sign() * (mags - threshold).clamp(min=0)
    return torch.where(inside, x, projected)


class ActionBounds:
    """Keeps actions (..., A) inside a box or an L1 ball; also gives a sensible initial std."""

    def __init__(self, cfg: CEMConfig, action_dim: int, device=None):
        if cfg.bound not in ("l1", "box"):
            raise ValueError(f"unknown action bound {cfg.bound!r}; expected 'l1' or 'box'")
        self.kind, self.radius = cfg.bound, cfg.radius
        self.low = _per_dim(cfg.low, action_dim, "low", device)
        self.high = _per_dim(cfg.high, action_dim, "high", device)
        if self.kind == "box" and bool((self.high < self.low).any()):
            raise ValueError(
                f"box bounds need high >= low (equal: the dim is fixed), got low={cfg.low} high={cfg.high}"
            )

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        if self.kind == "l1":
            return project_l1_ball(actions, self.radius)
        return torch.maximum(torch.minimum(actions, self.high), self.low)

    def init_std(self) -> torch.Tensor:
        """(A,) the spread of the first Gaussian: the ball's radius or half the box width."""
        if self.kind == "l1":
            return torch.full_like(self.low, self.radius)
        return (self.high - self.low) / 2

    def centre(self) -> torch.Tensor:
        """(A,) the initial mean: 0 when inside the bounds (it always is for the ball)."""
        if self.kind == "l1":
            return torch.zeros_like(self.low)
        return torch.zeros_like(self.low).clamp(self.low, self.high)


def _per_dim(values: list[float], action_dim: int, name: str, device) -> torch.Tensor:
    if len(values) not in (1, action_dim):
        raise ValueError(f"CEM bound {name!r} needs 1 or {action_dim} values, got {len(values)}")
    return torch.tensor(values, dtype=torch.float32, device=device).expand(action_dim).clone()


@torch.no_grad()
def cem(
    energy_fn: Energy,
    action_dim: int,
    cfg: CEMConfig,
    init_mean: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> CEMResult:
    """Minimise ``energy_fn`` over action sequences (H, A) with the cross-entropy method.

    energy_fn: actions (N, H, A) float32 -> energies (N,); called once per iteration with the
        whole population (``cfg.samples``, shrunk by ``decay`` each iteration), so a batched
        world model scores them in one forward pass.
    init_mean: optional (H, A) warm start (e.g. the previous plan shifted by one step).
    Returns the final mean (inside the bounds), its energy and the best energy per iteration.
    """
    if cfg.elites < 2 or cfg.elites > cfg.samples:
        raise ValueError(f"CEM needs 2 <= elites <= samples, got elites={cfg.elites} samples={cfg.samples}")
    if cfg.decay < 1 or not 0 <= cfg.keep_elites <= 1:
        raise ValueError(
            f"iCEM needs decay >= 1 and keep_elites in [0, 1], got {cfg.decay}, {cfg.keep_elites}"
        )
    bounds = ActionBounds(cfg, action_dim, device)
    shape = (cfg.horizon, action_dim)
    mean = (
        bounds.centre().expand(shape).clone() if init_mean is None else bounds(init_mean.to(device).float())
    )
    std = (
        torch.full(shape, cfg.init_std, device=device)
        if cfg.init_std > 0
        else bounds.init_std().expand(shape)
    )
    history, kept, kept_energies = [], None, None
    best_actions, best_energy = mean, float("inf")
    for i in range(cfg.iterations):
        n = max(cfg.elites, round(cfg.samples / cfg.decay**i))
        noise = colored_noise((n, *shape), cfg.colored_noise, generator, device)
        actions = bounds(mean + std * noise)  # (n, H, A)
        energies = energy_fn(actions)
        if energies.shape != (n,):
            raise ValueError(f"the energy must return ({n},), got {tuple(energies.shape)}")
        if kept is not None:  # the elites carried over compete again, with their known energies
            actions, energies = torch.cat([actions, kept]), torch.cat([energies, kept_energies])
        best = energies.topk(cfg.elites, largest=False).indices
        elites = actions[best]  # (elites, H, A)
        history.append(float(energies[best[0]]))
        if history[-1] < best_energy:
            best_actions, best_energy = elites[0], history[-1]
        carry = round(cfg.keep_elites * cfg.elites)
        if carry > 0:
            kept, kept_energies = elites[:carry], energies[best[:carry]]
        mean = cfg.momentum_mean * mean + (1 - cfg.momentum_mean) * elites.mean(0)
        std = cfg.momentum_std * std + (1 - cfg.momentum_std) * elites.std(0)
        std = std.clamp(min=cfg.min_std)
    if cfg.return_best and history:
        return CEMResult(actions=best_actions, energy=best_energy, history=history)
    plan = bounds(mean)
    return CEMResult(actions=plan, energy=float(energy_fn(plan[None].expand(1, *shape))[0]), history=history)


def colored_noise(shape: tuple[int, ...], beta: float, generator=None, device="cpu") -> torch.Tensor:
    """Standard-normal noise (N, H, A) whose power along H falls as 1/f^beta (beta 0: white).

    Drawn in the frequency domain (random complex amplitudes scaled by f^(-beta/2), then an
    inverse real FFT along H), rescaled to unit std over the batch.
    """
    if beta == 0 or shape[1] < 2:
        return torch.randn(shape, generator=generator, device=device)
    N, H, A = shape
    freqs = torch.fft.rfftfreq(H, device=device)
    scale = freqs.clamp(min=freqs[1]) ** (-beta / 2)  # the DC term gets the lowest frequency's power
    real = torch.randn((N, A, len(freqs)), generator=generator, device=device)
    imag = torch.randn((N, A, len(freqs)), generator=generator, device=device)
    series = torch.fft.irfft(torch.complex(real, imag) * scale, n=H, dim=-1)  # (N, A, H)
    # one scale for the whole batch: a per-sample one would remove each sequence's own offset
    return (series / series.std().clamp(min=1e-8)).transpose(1, 2).contiguous()


def latent_energy(predicted: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance per sample: predicted (N, K, D) and goal (K, D) or (N, K, D) -> (N,)."""
    return (predicted.float() - goal.float()).abs().flatten(1).mean(-1)
