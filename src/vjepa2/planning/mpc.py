"""Goal-image planning with a world model: the ``Planner`` a robot loop calls, and MPC.

``Planner.act(observation, goal)`` encodes the observation (and the goal image, once), runs CEM
over action sequences whose energy is the L1 distance between the latent predicted at the end of
the horizon and the goal latent, and returns the next action: model-predictive control with a
receding horizon (the first ``execute`` actions of each plan are played, then it replans from
the rest of the plan, shifted: ``RecedingHorizon``, which the simulator oracle shares).
Sub-goals: ``set_goals([(image, steps), ...])`` plans towards each image in turn, for its step
budget or until the observation comes within ``subgoal_tolerance`` of it (the paper's
pick-and-place uses three goal images for 4, 10 and 4 steps).
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vjepa2.checkpoints.world_models import load_world_model
from vjepa2.config import opt
from vjepa2.models.held import hold
from vjepa2.models.precision import DEVICE_HELP, INFERENCE_DTYPE_HELP, autocast, check_device, resolve_dtype
from vjepa2.models.world_model import WorldModel
from vjepa2.planning.cem import CEMConfig, CEMResult, cem, latent_energy


@dataclass
class MPCConfig:
    """Model-predictive control around CEM, shared by the world-model planner and the oracle."""

    cem: CEMConfig = opt(CEMConfig, help="cross-entropy method settings")
    execute: int = opt(1, help="actions of each plan executed before replanning (receding horizon)", min=1)
    warm_start: bool = opt(True, help="start CEM from the previous plan shifted by the executed steps")
    seed: int = opt(0, help="seed of the CEM sampler")


@dataclass
class PlannerConfig(MPCConfig):
    device: str = opt("auto", help=DEVICE_HELP)
    dtype: str = opt(
        "auto",
        help=f"world-model precision (encoder and predictor): {INFERENCE_DTYPE_HELP}",
    )
    subgoal_tolerance: float = opt(
        0.0,
        help="with set_goals: move on to the next goal image as soon as the observation's latent "
        "is within this mean L1 distance of the current one (0: only when its step budget is spent)",
    )


class RecedingHorizon:
    """The MPC bookkeeping: a queue of planned actions and the warm start of the next search.

    ``due`` says a new plan is needed (the queue is empty); ``push(plan)`` queues the first
    ``execute`` actions of a plan (H, A) and keeps the rest, shifted to the front and padded with
    the prior mean (zeros), as ``init`` for the next CEM; ``pop()`` gives the next action (A,).
    """

    def __init__(self, cfg: MPCConfig):
        if cfg.execute < 1 or cfg.execute > cfg.cem.horizon:
            raise ValueError(f"execute must be in 1..horizon ({cfg.cem.horizon}), got {cfg.execute}")
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        """Forget the queued actions and the warm start (a new episode or a new goal)."""
        self.queue: deque[np.ndarray] = deque()
        self.previous: torch.Tensor | None = None

    @property
    def due(self) -> bool:
        return not self.queue

    @property
    def init(self) -> torch.Tensor | None:
        """(H, A) the mean the next CEM starts from, or None (the prior: zeros)."""
        return self.previous if self.cfg.warm_start else None

    def push(self, plan: torch.Tensor) -> None:
        k = self.cfg.execute
        self.queue.extend(plan[:k].cpu().numpy().astype(np.float32))
        # the first k actions are played before the next plan starts: what remains of this plan
        # is where the next one should begin; the new last steps start at the prior mean
        self.previous = torch.cat([plan[k:], torch.zeros_like(plan[:k])], dim=0)

    def pop(self) -> np.ndarray:
        return self.queue.popleft()


class GoalSchedule:
    """A sequence of (goal, step budget). ``next(reached)`` returns the goal for this step: it
    moves on to the following goal when the current one is reached or its budget is spent; the
    last goal stays until the episode ends."""

    def __init__(self, goals: list[tuple[object, int]]):
        if not goals or any(int(steps) < 1 for _, steps in goals):
            raise ValueError("a goal schedule needs a non-empty list of (goal, steps >= 1)")
        self.goals = [(goal, int(steps)) for goal, steps in goals]
        self.index, self.used = 0, 0

    @property
    def current(self):
        """The goal pursued now (the one the last ``next`` returned)."""
        return self.goals[self.index][0]

    def next(self, reached: bool = False):
        """reached: the caller's verdict that ``current`` is met (for instance by the success
        rule on the true state, or a latent distance below a tolerance)."""
        spent = self.used >= self.goals[self.index][1]
        if (reached or spent) and self.index + 1 < len(self.goals):
            self.index, self.used = self.index + 1, 0
        self.used += 1
        return self.goals[self.index][0]


def image_key(image: np.ndarray) -> str:
    """A content key of an image (shape and bytes), for the latent caches."""
    image = np.ascontiguousarray(image)
    return hashlib.sha1(repr(image.shape).encode() + image.tobytes()).hexdigest()


def check_frame(image, name: str) -> None:
    """One camera frame as the planner reads it: uint8 (H, W, 3), 0..255 (not a batch, not floats)."""
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(
            f"{name}: expected one uint8 frame (H, W, 3) in 0..255; got {array.dtype} {array.shape}"
        )


class Planner:
    """Observation + goal image in, action out.

    model: a ``WorldModel`` or the directory written by ``vjepa2 train-ac``.
    act(observation uint8 (H, W, 3), goal uint8 (H, W, 3) or None, state (S,) or None) -> (A,)
    float32 action in environment units. ``state=None`` feeds the mean training state.
    """

    def __init__(self, model: WorldModel | str | Path, cfg: PlannerConfig | None = None):
        self.cfg = cfg or PlannerConfig()
        self.mpc = RecedingHorizon(self.cfg)
        device = check_device(self.cfg.device)  # "auto": CUDA when present
        self.model = model if isinstance(model, WorldModel) else load_world_model(model, device)
        self.dtype = resolve_dtype(self.cfg.dtype, self.model.device, inference=True)
        if self.dtype != "fp32":  # held copies (bf16 or int8): the caller's WorldModel stays fp32
            self.model = copy.copy(self.model)
            self.model.encoder = hold(copy.deepcopy(self.model.encoder), self.dtype)
            self.model.predictor = hold(copy.deepcopy(self.model.predictor), self.dtype)
        self.generator = torch.Generator(self.model.device).manual_seed(self.cfg.seed)
        self.last: CEMResult | None = None
        self._goal_key: str | None = None
        self._goal_latent: torch.Tensor | None = None
        self._observation: tuple[str, torch.Tensor] | None = None  # (content key, latent)
        self.reset()

    def reset(self) -> None:
        """Forget queued actions, the warm start and any sub-goal sequence (a new episode)."""
        self.mpc.reset()
        self.schedule: GoalSchedule | None = None

    # -- goals ----------------------------------------------------------------------------
    def set_goals(self, goals: list[tuple[np.ndarray, int]]) -> None:
        """A sequence of (goal image (H, W, 3), step budget): ``act`` without a goal pursues each in
        turn (the last one until the episode ends). Also resets the planner."""
        self.reset()
        self.schedule = GoalSchedule([(np.asarray(image), steps) for image, steps in goals])

    def goal_latent(self, goal: np.ndarray) -> torch.Tensor:
        """(K, D) latent of a goal image, encoded once and cached by content."""
        key = image_key(goal)
        if key != self._goal_key:
            self._goal_key, self._goal_latent = key, self.model.encode(goal)[0]
            self.mpc.reset()
        return self._goal_latent

    def observation_latent(self, observation: np.ndarray) -> torch.Tensor:
        """(K, D) latent of an observation; the last one is kept, so checking a sub-goal and
        planning from the same frame encode it once."""
        key = image_key(observation)
        if self._observation is None or self._observation[0] != key:
            self._observation = (key, self.model.encode(observation)[0])
        return self._observation[1]

    def _current_goal(self, goal: np.ndarray | None, observation: np.ndarray) -> np.ndarray:
        if goal is not None:
            return goal
        if self.schedule is None:
            raise ValueError("no goal: pass a goal image to act() or call set_goals() first")
        return self.schedule.next(reached=self.reached(observation))

    def reached(self, observation: np.ndarray) -> bool:
        """Whether the observation is within ``subgoal_tolerance`` of the current goal image (in
        latent mean L1); always False with the tolerance 0 or before the first goal is pursued."""
        if self.cfg.subgoal_tolerance <= 0 or self.schedule is None or self._goal_key is None:
            return False
        goal_latent = self.goal_latent(self.schedule.current)
        latent = self.observation_latent(observation)
        return float(latent_energy(latent[None], goal_latent)[0]) < self.cfg.subgoal_tolerance

    # -- planning ---------------------------------------------------------------------------
    def _state(self, state) -> torch.Tensor:
        if state is None:
            stats = self.model.spec.stats
            mean = stats.state_mean if stats is not None else [0.0] * self.model.state_dim
            return torch.tensor(mean, dtype=torch.float32, device=self.model.device)
        values = np.asarray(state, dtype=np.float64)
        if values.shape != (self.model.state_dim,):
            raise ValueError(f"state: expected ({self.model.state_dim},) values; got shape {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError(f"state: expected finite values; got {values.tolist()}")
        return torch.as_tensor(values, dtype=torch.float32, device=self.model.device)

    def energy_fn(self, latent: torch.Tensor, state: torch.Tensor, goal_latent: torch.Tensor):
        """actions (N, H, A) -> (N,) energy: L1 distance of the latent after H steps to the goal."""

        def energy(actions: torch.Tensor) -> torch.Tensor:
            with autocast(self.model.device, self.dtype):
                predicted = self.model.rollout(latent, state, actions)[:, -1]
            return latent_energy(predicted.float(), goal_latent)

        return energy

    def plan(self, observation: np.ndarray, goal: np.ndarray, state=None) -> CEMResult:
        """One CEM search from ``observation`` towards ``goal``: the (H, A) plan and its energy."""
        latent = self.observation_latent(observation)
        energy = self.energy_fn(latent, self._state(state), self.goal_latent(goal))
        self.last = cem(
            energy, self.model.action_dim, self.cfg.cem, self.mpc.init, self.generator, self.model.device
        )
        return self.last

    def act(self, observation: np.ndarray, goal: np.ndarray | None = None, state=None) -> np.ndarray:
        """The next action (A,) towards ``goal`` (or the current sub-goal); replans when the
        queue of planned actions is empty."""
        check_frame(observation, "observation")
        goal = self._current_goal(goal, observation)
        check_frame(goal, "goal")
        self.goal_latent(goal)  # a new goal drops the queued actions
        if self.mpc.due:
            result = self.plan(observation, goal, state)
            if not math.isfinite(result.energy):
                raise ValueError(f"the plan's energy is {result.energy}: no action comes out of it")
            self.mpc.push(result.actions)
        return self.mpc.pop()
