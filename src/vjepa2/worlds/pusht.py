"""PushT (package ``gym-pusht``) behind the interface of ``envs.PlanarEnv``.

PushT is the standard planning benchmark of world-model papers: a disc agent pushes a T-shaped block
(pymunk physics, 512 x 512 board). This adapter keeps the package's physics and drawing and changes
only the interface:

- actions are relative: a in [-1, 1]^2 moves the agent's target by ``a * max_step`` board pixels
  from where the agent is (the package takes absolute targets);
- observations are ``{"pixels": uint8 (size, size, 3), "state": float32 (4,)}``, the state being the
  agent's position and velocity (board pixels, pixels/s);
- full states are (agent x, agent y, block x, block y, block angle), as the package reports them;
- success is DINO-WM's rule: the L2 distance over (agent x, y, block x, y) below 20 and the block
  angle error below pi/9 (the package's own rule, 95% overlap with its green goal zone, is ignored).

The package sets a state by assigning the block's position, then its angle; pymunk turns the block
about its centre of gravity, which moves the position. ``set_state`` pre-compensates, so that
``render_state(s)`` shows the block exactly at ``s``.
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vjepa2.worlds.pushing import angle_error, push_waypoint

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame draws off-screen; no display needed
try:
    import gym_pusht  # noqa: F401  (registers gym_pusht/PushT-v0)
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the pusht environment needs the gym-pusht package: pip install 'vjepa2[pusht]'"
    ) from err

BOARD = 512.0


def make_pusht(size: int, max_steps: int | None = None) -> gym.Env:
    return gym.make(
        "gym_pusht/PushT-v0",
        obs_type="pixels_agent_pos",
        render_mode="rgb_array",
        observation_width=size,
        observation_height=size,
        max_episode_steps=max_steps,
        disable_env_checker=True,
    )


def full_state(sim) -> np.ndarray:
    """(agent x, agent y, block x, block y, block angle in [0, 2 pi)) of a PushTEnv."""
    return np.array([*sim.agent.position, *sim.block.position, sim.block.angle % (2 * np.pi)])


def set_state(sim, state: np.ndarray) -> dict:
    """Reset a PushTEnv to ``state`` exactly; returns its observation."""
    agent, block, angle = state[:2], state[2:4], float(state[4])
    # The package sets the position at angle 0, then the angle, which turns the block about its
    # centre of gravity c: the position ends at p + c - R(angle) c. Solve for the p that lands on block.
    cog = np.array(sim.block.center_of_gravity)
    turned = np.array(
        [cog[0] * np.cos(angle) - cog[1] * np.sin(angle), cog[0] * np.sin(angle) + cog[1] * np.cos(angle)]
    )
    observation, _ = sim.reset(options={"reset_to_state": np.array([*agent, *(block - cog + turned), angle])})
    return observation


def motion(sim) -> np.ndarray:
    """(agent vx, vy, block vx, vy, block angular velocity) of a PushTEnv: what ``full_state``
    leaves out and the next steps still depend on (the PD controller damps the agent's velocity,
    it does not zero it; a pushed block slides on)."""
    return np.array([*sim.agent.velocity, *sim.block.velocity, sim.block.angular_velocity])


def set_motion(sim, velocities: np.ndarray) -> None:
    """Give a PushTEnv's bodies the velocities of ``motion`` (after ``set_state``, which stops them)."""
    velocities = [float(v) for v in velocities]
    sim.agent.velocity, sim.block.velocity = tuple(velocities[:2]), tuple(velocities[2:4])
    sim.block.angular_velocity = velocities[4]


def block_centre(sim) -> np.ndarray:
    """World position of the T's centre of gravity (the point a pusher aims at)."""
    return np.array(sim.block.local_to_world(sim.block.center_of_gravity))


class PushTAdapter(gym.Env):
    """gym-pusht's PushT-v0 with relative actions, proprio state, goal images and DINO-WM success."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    state_names = ["agent_x", "agent_y", "block_x", "block_y", "block_angle"]
    proprio_names = ["agent_x", "agent_y", "agent_vx", "agent_vy"]

    def __init__(
        self,
        size: int = 96,
        max_steps: int = 300,
        max_step: float = 40.0,
        success_distance: float = 20.0,
        success_angle: float = np.pi / 9,
        terminate_on_success: bool = True,
        render_mode: str = "rgb_array",
    ):
        self.size, self.max_steps, self.max_step = size, max_steps, max_step
        self.success_distance, self.success_angle = success_distance, success_angle
        self.terminate_on_success = terminate_on_success
        self.render_mode = render_mode
        self.env = make_pusht(size, max_steps)
        self.sim = self.env.unwrapped
        self.painter = make_pusht(size).unwrapped  # a second board to draw arbitrary states on
        self.painter.reset(seed=0)  # builds its bodies
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Box(0, 255, shape=(size, size, 3), dtype=np.uint8),
                "state": spaces.Box(-np.inf, np.inf, shape=(len(self.proprio_names),), dtype=np.float32),
            }
        )
        self.goal = np.zeros(len(self.state_names))
        self.goal_centre = np.zeros(2)
        self.pixels = np.zeros((size, size, 3), dtype=np.uint8)

    @property
    def state(self) -> np.ndarray:
        return full_state(self.sim)

    def sample_state(self, rng: np.random.Generator) -> np.ndarray:
        """A random state drawn like the package's own reset."""
        agent, block = rng.integers(50, 450, size=2), rng.integers(100, 400, size=2)
        return np.array([*agent, *block, rng.uniform(-np.pi, np.pi) % (2 * np.pi)], dtype=np.float64)

    def proprio(self) -> np.ndarray:
        return np.array([*self.sim.agent.position, *self.sim.agent.velocity], dtype=np.float32)

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        distance = np.linalg.norm(np.asarray(state[:4]) - np.asarray(goal[:4]))
        return bool(distance < self.success_distance and angle_error(state[4], goal[4]) < self.success_angle)

    def distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(state[:4]) - np.asarray(goal[:4])))

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """The image uint8 (size, size, 3) of any full state; does not change the environment."""
        return set_state(self.painter, np.asarray(state, dtype=np.float64))["pixels"]

    def goal_image(self, goal: np.ndarray | None = None) -> np.ndarray:
        return self.render_state(self.goal if goal is None else goal)

    def render(self) -> np.ndarray:
        return self.pixels

    def info(self) -> dict:
        state = self.state
        return {
            "success": self.is_success(state, self.goal),
            "distance": self.distance(state, self.goal),
            "state": state,
            "goal": self.goal.copy(),
        }

    def _observe(self, observation: dict) -> dict[str, np.ndarray]:
        self.pixels = observation["pixels"]
        return {"pixels": self.pixels, "state": self.proprio()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start from ``options["state"]`` / ``options["goal"]`` (full states) or random ones."""
        super().reset(seed=seed)
        options = options or {}
        self.env.reset(seed=seed)  # resets the wrappers' step count, seeds the package
        start = options.get("state")
        start = self.sample_state(self.np_random) if start is None else np.asarray(start, dtype=np.float64)
        goal = options.get("goal")
        self.goal = self.sample_state(self.np_random) if goal is None else np.asarray(goal, dtype=np.float64)
        for name, value in (("state", start), ("goal", self.goal)):
            if value.shape != (len(self.state_names),) or not np.all(np.isfinite(value)):
                raise ValueError(f"PushTAdapter: options[{name!r}] must be 5 finite numbers, got {value}")
        set_state(self.painter, self.goal)
        self.goal_centre = block_centre(self.painter)
        return self._observe(set_state(self.sim, start)), self.info()

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        target = np.clip(np.array(self.sim.agent.position) + action * self.max_step, 0.0, BOARD)
        observation, _, _, truncated, _ = self.env.step(target)
        info = self.info()
        terminated = bool(info["success"] and self.terminate_on_success)
        return self._observe(observation), -info["distance"], terminated, truncated, info

    def expert_action(self) -> np.ndarray:
        """Scripted pushing of the T's centre of gravity towards the goal's (no noise)."""
        if self.is_success(self.state, self.goal):
            return np.zeros(2)
        agent, block = np.array(self.sim.agent.position), block_centre(self.sim)
        if np.linalg.norm(block - self.goal_centre) < 0.5 * self.success_distance:
            waypoint = self.goal[:2]  # the block is in place: the agent goes to its own goal
        else:
            waypoint = push_waypoint(agent, block, self.goal_centre, standoff=90.0, detour=150.0)
        return np.clip((waypoint - agent) / self.max_step, -1.0, 1.0)

    def close(self):
        self.env.close()
        self.painter.close()
