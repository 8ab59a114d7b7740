"""The true simulator as a planning model: the oracle baseline of ``plan-eval``.

``Simulator(env).rollout(state, actions)`` replays a batch of action sequences from one full
state on a private copy of the environment's dynamics (the 2-D worlds' pure, batched ``move``
function, or a second PushT board without rendering), leaving the environment being evaluated
untouched. ``state_energy`` is the oracle's energy: the distance of states to the goal state, in
the terms of the environment's success rule. ``OraclePolicy`` plans on it with the world-model
planner's own CEM and receding horizon (``mpc.RecedingHorizon``).

Why the push oracle needs more than horizon 1 (measured, see BENCHMARKS): the block only moves
when the agent touches it, so from a start 0.3-0.6 away every one-step plan leaves the block
where it is and CEM sees a flat energy; the energy must also leave out the agent's own goal
position, which the push success rule ignores and which otherwise pulls the agent away from the
block. Horizon 10 with 5 actions executed per plan and a small agent-to-block term (``contact``)
solve it. PushT (measured, session 13): replays must start with the board's velocities, and the
staged energy (block first, then the agent) with horizon 10 raised the oracle from 66% to 78%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vjepa2.config import opt
from vjepa2.planning.cem import CEMConfig, cem
from vjepa2.planning.mpc import GoalSchedule, MPCConfig, RecedingHorizon


def oracle_cem() -> CEMConfig:
    return CEMConfig(samples=200, iterations=5, elites=10, horizon=10, bound="box")


@dataclass
class OracleConfig(MPCConfig):
    cem: CEMConfig = opt(
        help="CEM of the oracle (box bounds: actions in [-1, 1])", default_factory=oracle_cem
    )
    execute: int = opt(5, help="actions of each plan executed before replanning", min=1)
    contact: float = opt(
        0.1,
        help="push and PushT: weight of the agent's distance to the block in the energy, which "
        "leads the agent to the block while no sampled plan touches it (0: the success terms only)",
    )
    staged: bool = opt(
        False,
        help="PushT: the block first, then the agent (the agent's goal term counts only once the "
        "block is placed, within half the success distance); else both at once",
    )


class Simulator:
    """Replays action sequences (N, H, A) in [-1, 1] from a full state; returns final states (N, S).

    PushT's full state (positions and angle) is not all the board's dynamics: ``motion()`` reads
    the live board's velocities, and ``rollout(..., motion=...)`` starts every replay with them
    (without them, 5 replayed steps ended 4.7 px from the real agent on average, BENCHMARKS)."""

    def __init__(self, env):
        self.env = env.unwrapped
        self.board = None
        if not hasattr(self.env, "move"):  # the PushT adapter: a board of its own, no drawing
            import gymnasium as gym

            self.board = gym.make("gym_pusht/PushT-v0", obs_type="state", disable_env_checker=True).unwrapped
            self.board.reset(seed=0)

    def motion(self) -> np.ndarray | None:
        """The live environment's velocities (PushT), None where the state holds all (push, reach)."""
        if self.board is None:
            return None
        from vjepa2.worlds.pusht import motion

        return motion(self.env.sim)

    def rollout(self, state: np.ndarray, actions: np.ndarray, motion: np.ndarray | None = None) -> np.ndarray:
        """state (S,) and actions (N, H, A) or (H, A) -> final states (N, S) or (S,); ``motion``:
        PushT's velocities at ``state`` (``Simulator.motion``; None: at rest)."""
        actions = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        if actions.ndim == 2:
            return self.rollout(state, actions[None], motion)[0]
        if self.board is None:  # every sequence at once: move() is batched over leading dims
            states = np.repeat(np.asarray(state, dtype=np.float64)[None], len(actions), axis=0)
            for t in range(actions.shape[1]):
                states = self.env.move(states, actions[:, t] * self.env.max_step)
            return states
        return np.stack([self._board_rollout(state, sequence, motion) for sequence in actions])

    def _board_rollout(self, state: np.ndarray, actions: np.ndarray, motion: np.ndarray | None) -> np.ndarray:
        from vjepa2.worlds.pusht import BOARD, full_state, set_motion, set_state

        set_state(self.board, np.asarray(state, dtype=np.float64))
        if motion is not None:
            set_motion(self.board, motion)
        for action in actions:
            target = np.clip(np.array(self.board.agent.position) + action * self.env.max_step, 0.0, BOARD)
            self.board.step(target)
        return full_state(self.board)


def state_energy(
    env, states: np.ndarray, goal: np.ndarray, contact: float = 0.0, staged: bool = False
) -> np.ndarray:
    """Distance of states (N, S) or (S,) to the goal state (S,), shape (N,) or ().

    Reach: the agent's distance. Push and PushT: the L2 distance over the positions the success
    rule reads (push: the block's; PushT: agent and block, DINO-WM's rule) plus the block's angle
    error weighted by success_distance / success_angle, so both halves of the rule count the same,
    plus ``contact`` times the agent's distance to the block (world units: the arena's, PushT's pixels).

    ``staged`` (PushT): the agent's own goal term pulls it away from the block, so a plan that
    parks the agent at its goal beside an unmoved block can score better than one that pushes.
    Staged, every state whose block (position + weighted angle error) is within half the success
    distance scores below every state whose block is not; the agent term counts only among the
    first, the contact term only among the second.
    """
    from vjepa2.worlds.envs import PushEnv, angle_error

    env = env.unwrapped
    states, goal = np.asarray(states, dtype=np.float64), np.asarray(goal, dtype=np.float64)
    if goal.shape[-1] < 5:  # reach: the agent's position only
        return np.linalg.norm(states[..., :2] - goal[:2], axis=-1)
    push = isinstance(env, PushEnv)
    period = np.pi / 2 if push else 2 * np.pi  # a square repeats every quarter turn
    turned = angle_error(states[..., 4], goal[4], period)
    first = 2 if push else 0  # push succeeds wherever the agent ends; PushT counts it too
    distance = np.linalg.norm(states[..., first:4] - goal[first:4], axis=-1)
    near = np.linalg.norm(states[..., :2] - states[..., 2:4], axis=-1)
    if staged and not push:
        block = (
            np.linalg.norm(states[..., 2:4] - goal[2:4], axis=-1)
            + env.success_distance / env.success_angle * turned
        )
        agent = np.linalg.norm(states[..., :2] - goal[:2], axis=-1)
        # an offset above any distance on the board (512 px): every unplaced block scores higher
        return np.where(block < 0.5 * env.success_distance, block + agent, 1e4 + block + contact * near)
    return distance + env.success_distance / env.success_angle * turned + contact * near


class OraclePolicy:
    """CEM + MPC whose energy simulates the true environment from its current full state.

    Sub-goals: it moves on to the next goal state as soon as the success rule holds for the
    current one (or its budget is spent), as ``GoalSchedule.next(reached=...)`` does.
    """

    def __init__(self, cfg: OracleConfig):
        self.cfg, self.generator = cfg, torch.Generator().manual_seed(cfg.seed)
        self.mpc = RecedingHorizon(cfg)

    def reset(self, env, spec) -> None:
        """spec.goals: [(full goal state (S,), step budget), ...], the last one the goal."""
        self.env, self.sim = env, Simulator(env)
        self.schedule = GoalSchedule(spec.goals)
        self.mpc.reset()

    def __call__(self, observation, info) -> np.ndarray:
        state, before = info["state"], self.schedule.index
        reached = self.schedule.used > 0 and self.env.unwrapped.is_success(state, self.schedule.current)
        goal = self.schedule.next(reached=reached)
        if self.schedule.index != before:  # a new goal: the plan towards the old one is void
            self.mpc.reset()
        if self.mpc.due:
            self.mpc.push(self.plan(state, goal, self.sim.motion()))
        return self.mpc.pop()

    def plan(self, state: np.ndarray, goal: np.ndarray, motion: np.ndarray | None = None) -> torch.Tensor:
        """(H, A) plan from full state (S,) (moving with PushT's ``motion``) towards full goal state (S,)."""

        def energy(actions: torch.Tensor) -> torch.Tensor:  # (N, H, A) -> (N,)
            finals = self.sim.rollout(state, actions.double().numpy(), motion)
            energies = state_energy(self.env, finals, goal, self.cfg.contact, self.cfg.staged)
            return torch.from_numpy(energies).float()

        action_dim = self.env.action_space.shape[0]
        return cem(energy, action_dim, self.cfg.cem, self.mpc.init, self.generator).actions
