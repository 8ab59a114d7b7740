"""Goal-image planning with a world model: the ``Planner`` a robot loop calls, and MPC.

``Planner.act(observation, goal)`` encodes the observation (and the goal image, once), runs CEM
over action sequences whose energy is the L1 distance between the latent predicted at the end of
the horizon and the goal latent, and returns the next action: model-predictive control with a
receding horizon (the first ``execute`` actions of each plan are played, then it replans).
Sub-goals: ``set_goals([(image, steps), ...])`` plans towards each image for its step budget in
turn (the paper's pick-and-place uses three goal images for 4, 10 and 4 steps).
"""

from __future__ import annotations

import copy
import hashlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vjepa2.checkpoints.world_models import load_world_model
from vjepa2.config import opt
from vjepa2.models.precision import INFERENCE_DTYPE_HELP, autocast, resolve_dtype
from vjepa2.models.quantize import quantize_int8
from vjepa2.models.world_model import WorldModel
from vjepa2.planning.cem import CEMConfig, CEMResult, cem, latent_energy


@dataclass
class PlannerConfig:
    cem: CEMConfig = opt(CEMConfig, help="cross-entropy method settings")
    execute: int = opt(1, help="actions of each plan executed before replanning (receding horizon)")
    warm_start: bool = opt(True, help="start CEM from the previous plan shifted by the executed steps")
    seed: int = opt(0, help="seed of the CEM sampler")
    device: str = opt("cpu", help="torch device of the world model")
    dtype: str = opt(
        "auto",
        help=f"world-model precision (encoder and predictor): {INFERENCE_DTYPE_HELP}",
    )


class GoalSchedule:
    """A sequence of (goal, step budget): ``next()`` returns the goal for this step and moves on
    to the following goal once the budget of the current one is spent; the last goal stays."""

    def __init__(self, goals: list[tuple[object, int]]):
        if not goals or any(int(steps) < 1 for _, steps in goals):
            raise ValueError("a goal schedule needs a non-empty list of (goal, steps >= 1)")
        self.goals = [(goal, int(steps)) for goal, steps in goals]
        self.index, self.used = 0, 0

    def next(self):
        if self.used >= self.goals[self.index][1] and self.index + 1 < len(self.goals):
            self.index, self.used = self.index + 1, 0
        self.used += 1
        return self.goals[self.index][0]


class Planner:
    """Observation + goal image in, action out.

    model: a ``WorldModel`` or the directory written by ``vjepa2 train-ac``.
    act(observation uint8 (H, W, 3), goal uint8 (H, W, 3) or None, state (S,) or None) -> (A,)
    float32 action in environment units. ``state=None`` feeds the mean training state.
    """

    def __init__(self, model: WorldModel | str | Path, cfg: PlannerConfig | None = None):
        self.cfg = cfg or PlannerConfig()
        if self.cfg.execute < 1 or self.cfg.execute > self.cfg.cem.horizon:
            raise ValueError(
                f"execute must be in 1..horizon ({self.cfg.cem.horizon}), got {self.cfg.execute}"
            )
        self.model = model if isinstance(model, WorldModel) else load_world_model(model, self.cfg.device)
        self.dtype = resolve_dtype(self.cfg.dtype, self.model.device, inference=True)
        if self.dtype == "int8":  # quantized copies: the caller's WorldModel stays fp32
            self.model = copy.copy(self.model)
            self.model.encoder = quantize_int8(self.model.encoder)
            self.model.predictor = quantize_int8(self.model.predictor)
        self.generator = torch.Generator(self.model.device).manual_seed(self.cfg.seed)
        self.last: CEMResult | None = None
        self._goal_key: str | None = None
        self._goal_latent: torch.Tensor | None = None
        self.reset()

    def reset(self) -> None:
        """Forget queued actions, the warm start and any sub-goal sequence (a new episode)."""
        self.queue: deque[np.ndarray] = deque()
        self.previous: torch.Tensor | None = None
        self.schedule: GoalSchedule | None = None

    # -- goals ----------------------------------------------------------------------------
    def set_goals(self, goals: list[tuple[np.ndarray, int]]) -> None:
        """A sequence of (goal image (H, W, 3), step budget): ``act`` without a goal pursues each in
        turn (the last one until the episode ends). Also resets the planner."""
        self.reset()
        self.schedule = GoalSchedule([(np.asarray(image), steps) for image, steps in goals])

    def goal_latent(self, goal: np.ndarray) -> torch.Tensor:
        """(K, D) latent of a goal image, encoded once and cached by content."""
        key = hashlib.sha1(np.ascontiguousarray(goal).tobytes()).hexdigest()
        if key != self._goal_key:
            self._goal_key, self._goal_latent = key, self.model.encode(goal)[0]
            self.queue.clear()
            self.previous = None
        return self._goal_latent

    def _current_goal(self, goal: np.ndarray | None) -> np.ndarray:
        if goal is not None:
            return goal
        if self.schedule is None:
            raise ValueError("no goal: pass a goal image to act() or call set_goals() first")
        return self.schedule.next()

    # -- planning ---------------------------------------------------------------------------
    def _state(self, state) -> torch.Tensor:
        if state is None:
            stats = self.model.spec.stats
            mean = stats.state_mean if stats is not None else [0.0] * self.model.state_dim
            return torch.tensor(mean, dtype=torch.float32, device=self.model.device)
        return torch.as_tensor(np.asarray(state), dtype=torch.float32, device=self.model.device).reshape(-1)

    def energy_fn(self, latent: torch.Tensor, state: torch.Tensor, goal_latent: torch.Tensor):
        """actions (N, H, A) -> (N,) energy: L1 distance of the latent after H steps to the goal."""

        def energy(actions: torch.Tensor) -> torch.Tensor:
            with autocast(self.model.device, self.dtype):
                predicted = self.model.rollout(latent, state, actions)[:, -1]
            return latent_energy(predicted.float(), goal_latent)

        return energy

    def plan(self, observation: np.ndarray, goal: np.ndarray, state=None) -> CEMResult:
        """One CEM search from ``observation`` towards ``goal``: the (H, A) plan and its energy."""
        latent = self.model.encode(observation)[0]
        energy = self.energy_fn(latent, self._state(state), self.goal_latent(goal))
        init = self.previous if self.cfg.warm_start else None
        self.last = cem(energy, self.model.action_dim, self.cfg.cem, init, self.generator, self.model.device)
        return self.last

    def act(self, observation: np.ndarray, goal: np.ndarray | None = None, state=None) -> np.ndarray:
        """The next action (A,) towards ``goal`` (or the current sub-goal); replans when the
        queue of planned actions is empty."""
        goal = self._current_goal(goal)
        self.goal_latent(goal)  # a new goal drops the queued actions
        if not self.queue:
            plan = self.plan(observation, goal, state).actions
            k = self.cfg.execute
            self.queue.extend(plan[:k].cpu().numpy().astype(np.float32))
            # warm start: the unexecuted rest of the plan, padded with zeros
            self.previous = torch.cat([plan[k:], torch.zeros_like(plan[:k])], dim=0)
        return self.queue.popleft()
