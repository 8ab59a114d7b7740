"""Controllable 2-D worlds with the gymnasium API, for world models and goal-image planning.

- ``reach``: a point agent (blue disc) moves by bounded 2-D steps; success when it is within
  ``success_distance`` of the goal position.
- ``push``: the agent (blue disc) pushes a block (orange square) to a goal pose; success when the
  block's centre is within ``success_distance`` of the goal's and its angle within
  ``success_angle`` (the square looks the same every quarter turn, so angles count modulo pi/2).

Both share one interface (also kept by the PushT adapter in ``pusht.py``):
``reset(seed=, options={"state": s, "goal": g})``, ``step(action)`` with action in [-1, 1]^2 scaled
to ``max_step`` world units, observations ``{"pixels": uint8 (H, W, 3), "state": float32 proprio}``,
``render()``, ``render_state(state)``, ``goal_image(goal)``, ``is_success(state, goal)``,
``info["success"]``, ``info["state"]`` (the full simulator state) and ``expert_action()`` (a scripted
policy). World units: the arena is the unit box, x right, y down, angles in radians.
Full states: reach (agent x, y); push (agent x, y, block x, y, block angle).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vjepa2.errors import UserError
from vjepa2.worlds.pushing import angle_error, push_waypoint
from vjepa2.worlds.render import SQUARE_HALF_SIDE, Drawing, Sprite, render

AGENT_COLOUR = np.array((60, 120, 240), dtype=np.float32)
BLOCK_COLOUR = np.array((240, 140, 40), dtype=np.float32)
ARENA_COLOUR = np.array((235, 235, 228), dtype=np.float32)
CIRCLE, SQUARE = 0, 1  # shape ids of render.SHAPES


def sprite(centre, radius: float, shape: int, colour: np.ndarray, angle: float = 0.0) -> Sprite:
    """A one-frame sprite."""
    return Sprite(
        centres=np.asarray(centre, dtype=np.float64)[None],
        radius=radius,
        shapes=np.array([shape]),
        colours=colour[None],
        angles=np.array([angle]),
        visible=np.array([True]),
    )


class PlanarEnv(gym.Env):
    """The shared loop of the 2-D worlds; subclasses define states, motion, drawing and success."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    state_names: list[str]  # of the full simulator state
    proprio_names = ["agent_x", "agent_y"]

    def __init__(
        self,
        size: int = 64,
        max_steps: int = 100,
        max_step: float = 0.06,
        agent_radius: float = 0.05,
        success_distance: float = 0.05,
        terminate_on_success: bool = True,
        render_mode: str = "rgb_array",
    ):
        self.size, self.max_steps, self.max_step = size, max_steps, max_step
        self.agent_radius, self.success_distance = agent_radius, success_distance
        self.terminate_on_success = terminate_on_success
        self.render_mode = render_mode
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Box(0, 255, shape=(size, size, 3), dtype=np.uint8),
                "state": spaces.Box(0.0, 1.0, shape=(len(self.proprio_names),), dtype=np.float32),
            }
        )
        self.state = np.zeros(len(self.state_names))
        self.goal = np.zeros(len(self.state_names))
        self.steps = 0

    # -- what subclasses define ------------------------------------------------------------
    def sample_state(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def move(self, state: np.ndarray, displacement: np.ndarray) -> np.ndarray:
        """The next full state after the agent tries to move by ``displacement`` (world units)."""
        raise NotImplementedError

    def sprites(self, state: np.ndarray) -> list[Sprite]:
        raise NotImplementedError

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        raise NotImplementedError

    def distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        raise NotImplementedError

    def expert_action(self) -> np.ndarray:
        """A scripted action in [-1, 1]^2 towards the goal (no noise)."""
        raise NotImplementedError

    # -- the gymnasium interface -------------------------------------------------------------
    def proprio(self, state: np.ndarray) -> np.ndarray:
        """The agent's own state (its position), float32 (2,)."""
        return state[:2].astype(np.float32)

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """The image uint8 (size, size, 3) of any full state; does not change the environment."""
        drawing = Drawing(self.sprites(np.asarray(state, dtype=np.float64)), background=ARENA_COLOUR)
        return render(drawing, 1, self.size)[0]

    def goal_image(self, goal: np.ndarray | None = None) -> np.ndarray:
        """The image of a goal state (default: the current goal)."""
        return self.render_state(self.goal if goal is None else goal)

    def render(self) -> np.ndarray:
        return self.render_state(self.state)

    def observation(self) -> dict[str, np.ndarray]:
        return {"pixels": self.render(), "state": self.proprio(self.state)}

    def info(self) -> dict:
        return {
            "success": self.is_success(self.state, self.goal),
            "distance": self.distance(self.state, self.goal),
            "state": self.state.copy(),
            "goal": self.goal.copy(),
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start from ``options["state"]`` / ``options["goal"]`` (full states) or random ones."""
        super().reset(seed=seed)
        options = options or {}
        self.state = self._checked(options.get("state"), "state")
        if self.state is None:
            self.state = self.sample_state(self.np_random)
        self.goal = self._checked(options.get("goal"), "goal")
        if self.goal is None:
            self.goal = self.sample_state(self.np_random)
        self.steps = 0
        return self.observation(), self.info()

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        self.state = self.move(self.state, action * self.max_step)
        self.steps += 1
        info = self.info()
        terminated = bool(info["success"] and self.terminate_on_success)
        truncated = self.steps >= self.max_steps
        return self.observation(), -info["distance"], terminated, truncated, info

    def _checked(self, value, name: str) -> np.ndarray | None:
        if value is None:
            return None
        value = np.asarray(value, dtype=np.float64).reshape(-1)
        if value.shape != self.state.shape or not np.all(np.isfinite(value)):
            raise ValueError(
                f"{type(self).__name__}: options[{name!r}] must be {self.state_names}, finite, got {value}"
            )
        return value


class ReachEnv(PlanarEnv):
    """A point agent that must reach a goal position. Full state: (agent x, agent y)."""

    state_names = ["agent_x", "agent_y"]

    def sample_state(self, rng):
        return rng.uniform(self.agent_radius, 1 - self.agent_radius, size=2)

    def move(self, state, displacement):
        return np.clip(state + displacement, self.agent_radius, 1 - self.agent_radius)

    def sprites(self, state):
        return [sprite(state[:2], self.agent_radius, CIRCLE, AGENT_COLOUR)]

    def distance(self, state, goal):
        return float(np.linalg.norm(state[:2] - goal[:2]))

    def is_success(self, state, goal):
        return self.distance(state, goal) < self.success_distance

    def expert_action(self):
        return np.clip((self.goal - self.state) / self.max_step, -1.0, 1.0)


class PushEnv(PlanarEnv):
    """An agent that pushes a square block to a goal pose.

    Full state: (agent x, agent y, block x, block y, block angle). Pushing is quasi-static: the block
    moves out of the agent's way along the contact normal and turns by the torque of that push
    about its centre; the agent cannot pass through the block or leave the arena.
    """

    state_names = ["agent_x", "agent_y", "block_x", "block_y", "block_angle"]

    def __init__(self, *args, block_half: float = 0.08, success_angle: float = np.pi / 9, **kw):
        self.block_half, self.success_angle = block_half, success_angle
        super().__init__(*args, **kw)

    def sample_state(self, rng):
        block = rng.uniform(0.25, 0.75, size=2)
        while True:  # an agent position clear of the block
            agent = rng.uniform(self.agent_radius, 1 - self.agent_radius, size=2)
            if np.linalg.norm(agent - block) > self.block_half * 1.5 + self.agent_radius:
                return np.array([*agent, *block, rng.uniform(0, np.pi / 2)])

    def contact(self, agent, block, angle):
        """(depth, normal from block to agent, contact point) of the agent's disc and the block.

        Batched over leading dims: agent, block (..., 2), angle (...) -> depth (...), normal and
        point (..., 2); a positive depth is an overlap (world units).
        """
        agent, block, angle = np.asarray(agent, float), np.asarray(block, float), np.asarray(angle, float)
        u = np.stack([np.cos(angle), np.sin(angle)], -1)  # (..., 2) the block's local x axis
        v = np.stack([-np.sin(angle), np.cos(angle)], -1)  # its local y axis
        offset = agent - block
        local = np.stack([(u * offset).sum(-1), (v * offset).sum(-1)], -1)  # (..., 2)
        h, r = self.block_half, self.agent_radius
        # centre outside the square: the closest point of the square
        clipped = np.clip(local, -h, h)
        closest = block + clipped[..., :1] * u + clipped[..., 1:] * v
        gap = np.linalg.norm(agent - closest, axis=-1)
        out_normal = (agent - closest) / np.maximum(gap, 1e-9)[..., None]
        # centre inside: leave along the shallower axis (the larger local coordinate)
        x_axis = np.abs(local[..., 0]) >= np.abs(local[..., 1])  # argmax picks x on ties
        along = np.where(x_axis, local[..., 0], local[..., 1])
        side = np.where(along == 0, 1.0, np.sign(along))
        in_normal = np.where(x_axis[..., None], u, v) * side[..., None]
        in_depth = r + h - np.abs(along)
        in_point = agent - in_normal * (h - np.abs(along))[..., None]
        inside = np.all(np.abs(local) < h, axis=-1)
        depth = np.where(inside, in_depth, r - gap)
        normal = np.where(inside[..., None], in_normal, out_normal)
        return depth, normal, np.where(inside[..., None], in_point, closest)

    def move(self, state, displacement, substeps: int = 4):
        """Batched over leading dims: state (..., 5), displacement (..., 2) -> state (..., 5)."""
        state = np.asarray(state, dtype=np.float64)
        agent, block, angle = state[..., :2].copy(), state[..., 2:4].copy(), state[..., 4].copy()
        step = np.asarray(displacement, dtype=np.float64) / substeps
        r, reach = self.agent_radius, self.block_half * np.sqrt(2)
        for _ in range(substeps):
            agent = np.clip(agent + step, r, 1 - r)
            depth, normal, point = self.contact(agent, block, angle)
            touching = depth > 0
            push = -normal * np.where(touching, depth, 0.0)[..., None]  # the block gives way
            lever = point - block
            torque = lever[..., 0] * push[..., 1] - lever[..., 1] * push[..., 0]
            angle = np.where(touching, angle + torque / ((lever * lever).sum(-1) + self.block_half**2), angle)
            block = np.where(touching[..., None], np.clip(block + push, reach, 1 - reach), block)
            depth, normal, _ = self.contact(agent, block, angle)
            stuck = touching & (depth > 0)  # the block is stuck at a wall: the agent stops at its face
            agent = np.where(stuck[..., None], agent + normal * np.maximum(depth, 0.0)[..., None], agent)
        return np.concatenate([agent, block, np.mod(angle, 2 * np.pi)[..., None]], -1)

    def sprites(self, state):
        return [
            sprite(state[2:4], self.block_half / SQUARE_HALF_SIDE, SQUARE, BLOCK_COLOUR, state[4]),
            sprite(state[:2], self.agent_radius, CIRCLE, AGENT_COLOUR),
        ]

    def distance(self, state, goal):
        return float(np.linalg.norm(state[2:4] - goal[2:4]))

    def is_success(self, state, goal):
        turned = angle_error(state[4], goal[4], np.pi / 2)
        return bool(self.distance(state, goal) < self.success_distance and turned < self.success_angle)

    def expert_action(self):
        if self.is_success(self.state, self.goal):
            return np.zeros(2)
        agent, block = self.state[:2], self.state[2:4]
        standoff = self.block_half + self.agent_radius + 0.02
        waypoint = push_waypoint(agent, block, self.goal[2:4], standoff, detour=2 * standoff)
        return np.clip((waypoint - agent) / self.max_step, -1.0, 1.0)


ENVS = {"reach": ReachEnv, "push": PushEnv}


def make_env(name: str, size: int | None = None, **kw) -> gym.Env:
    """An environment by name: reach, push or pusht (the gym-pusht adapter).

    ``size``: frame size in pixels (default: 64 for reach and push, 96 for pusht).
    """
    if size is not None:
        kw["size"] = size
    if name == "pusht":
        from vjepa2.worlds.pusht import PushTAdapter

        return PushTAdapter(**kw)
    if name not in ENVS:
        raise UserError(f"unknown environment {name!r}; known: {[*ENVS, 'pusht']}")
    return ENVS[name](**kw)
