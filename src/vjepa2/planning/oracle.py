"""The true simulator as a planning model: the oracle baseline of ``plan-eval``.

``Simulator(env).rollout(state, actions)`` replays actions from any full state on a private copy
of the environment's dynamics (the 2-D worlds' pure ``move`` function, or a second PushT board
without rendering), leaving the environment being evaluated untouched. ``state_energy`` is the
oracle's energy: the distance of a state to the goal state, angles included where there are any.
"""

from __future__ import annotations

import numpy as np


class Simulator:
    """Replays actions (H, A) in [-1, 1] from a full state; returns the final full state."""

    def __init__(self, env):
        self.env = env.unwrapped
        self.board = None
        if not hasattr(self.env, "move"):  # the PushT adapter: a board of its own, no drawing
            import gymnasium as gym

            self.board = gym.make("gym_pusht/PushT-v0", obs_type="state", disable_env_checker=True).unwrapped
            self.board.reset(seed=0)

    def rollout(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        actions = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        if self.board is None:
            for action in actions:
                state = self.env.move(state, action * self.env.max_step)
            return state
        from vjepa2.worlds.pusht import BOARD, full_state, set_state

        set_state(self.board, np.asarray(state, dtype=np.float64))
        for action in actions:
            target = np.clip(np.array(self.board.agent.position) + action * self.env.max_step, 0.0, BOARD)
            self.board.step(target)
        return full_state(self.board)


def state_energy(env, state: np.ndarray, goal: np.ndarray) -> float:
    """Distance of a full state to the goal: positions (L2) plus, for pushing, the angle error
    weighted by success_distance / success_angle (both success rules count the same)."""
    from vjepa2.worlds.envs import PushEnv, angle_error

    env = env.unwrapped
    state, goal = np.asarray(state, dtype=np.float64), np.asarray(goal, dtype=np.float64)
    if len(state) < 5:  # reach: the agent's position only
        return float(np.linalg.norm(state[:2] - goal[:2]))
    period = np.pi / 2 if isinstance(env, PushEnv) else 2 * np.pi  # a square repeats every quarter turn
    turned = float(angle_error(state[4], goal[4], period))
    return float(np.linalg.norm(state[:4] - goal[:4]) + env.success_distance / env.success_angle * turned)
