"""The world-model planner in LeRobot and gymnasium control loops.

``GoalImagePolicy`` has LeRobot's policy interface (huggingface/lerobot
src/lerobot/policies/pretrained.py: ``reset()`` at an episode's start, ``select_action(batch)``
each step, a batch of observations in, a (B, A) action tensor out). Each batch row gets its own
``Planner`` (its own receding-horizon queue and warm start) over one shared world model, and
plans towards its goal image, or through a list of sub-goal images with step budgets::

    policy = GoalImagePolicy("runs/ac-reach/model", planner=PlannerConfig(...))
    policy.set_goal(goal_image)                   # or set_goals([(image, steps), ...])
    action = policy.select_action({"observation.image": frames, "observation.state": states})

Images: LeRobot's float (B, 3, H, W) in [0, 1] or uint8 (B, H, W, 3) / (H, W, 3) as gymnasium
environments give them. A batch may carry its own goal images under ``observation.goal_image``.
``LeRobotObservation`` wraps an environment with dict observations (``pixels``, ``state``, as the
built-in worlds) into LeRobot's keys, with the goal image when the environment draws one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from vjepa2.models.world_model import WorldModel
from vjepa2.planning.mpc import Planner, PlannerConfig

IMAGE, STATE, GOAL = "observation.image", "observation.state", "observation.goal_image"


def to_frames(images) -> np.ndarray:
    """uint8 (B, H, W, 3) from float (B, 3, H, W) in [0, 1] or uint8 (B, H, W, 3), batched or not."""
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"images: expected (B, 3, H, W) or (B, H, W, 3), got shape {array.shape}")
    if array.dtype != np.uint8:
        if array.shape[1] != 3:
            raise ValueError(f"float images must be (B, 3, H, W) in [0, 1], got shape {array.shape}")
        array = np.clip(np.rint(np.moveaxis(array, 1, -1) * 255.0), 0, 255).astype(np.uint8)
    elif array.shape[-1] != 3:
        raise ValueError(f"uint8 images must be (B, H, W, 3), got shape {array.shape}")
    return np.ascontiguousarray(array)


class GoalImagePolicy:
    """LeRobot's policy interface over the V-JEPA 2-AC planner (see the module docstring).

    model: a ``WorldModel`` or a ``vjepa2 train-ac`` model folder; image_key, state_key: the
    batch keys of the camera and the robot state (state optional: the training mean).
    """

    def __init__(
        self,
        model: WorldModel | str | Path,
        planner: PlannerConfig | None = None,
        image_key: str = IMAGE,
        state_key: str = STATE,
    ):
        self.cfg = planner or PlannerConfig()
        self.image_key, self.state_key = image_key, state_key
        self.goals: list[tuple[np.ndarray, int]] | None = None
        self.planners: list[Planner] = [Planner(model, self.cfg)]  # loads a model folder once
        self.model: WorldModel = self.planners[0].model

    def reset(self) -> None:
        """A new episode: every planner forgets its queued actions and restarts its goal list."""
        for planner in self.planners:
            self._start(planner)

    def set_goal(self, image) -> None:
        """One goal image (H, W, 3) uint8 (or LeRobot's float (3, H, W)) for every batch row."""
        self.set_goals([(image, 1)])

    def set_goals(self, goals: list[tuple[object, int]]) -> None:
        """Sub-goal images with their step budgets, pursued in turn (the last until the end)."""
        self.goals = [(to_frames(image)[0], int(steps)) for image, steps in goals]
        self.reset()

    def _start(self, planner: Planner) -> None:
        planner.reset()
        if self.goals is not None:
            planner.set_goals(self.goals)

    def _planner(self, row: int) -> Planner:
        while len(self.planners) <= row:
            cfg = dataclasses.replace(self.cfg, seed=self.cfg.seed + len(self.planners))
            planner = Planner(self.model, cfg)
            self._start(planner)
            self.planners.append(planner)
        return self.planners[row]

    @torch.no_grad()
    def select_action(self, batch: dict) -> torch.Tensor:
        """(B, A) float32 actions for a batch of observations (see the module docstring)."""
        if self.image_key not in batch:
            raise KeyError(f"select_action: the batch has no {self.image_key!r} (keys: {sorted(batch)})")
        frames = to_frames(batch[self.image_key])
        states = batch.get(self.state_key)
        if states is not None:
            states = torch.as_tensor(states).reshape(len(frames), -1).cpu().numpy()
            if states.shape[1] != self.model.state_dim:
                raise ValueError(
                    f"select_action: {self.state_key} has {states.shape[1]} values, the world model takes "
                    f"{self.model.state_dim}"
                )
        # set_goals wins over the environment's goal image: sub-goals lead to the final goal
        goals = to_frames(batch[GOAL]) if GOAL in batch and self.goals is None else None
        if goals is None and self.goals is None:
            raise ValueError(
                "select_action: no goal: call set_goal()/set_goals() or pass observation.goal_image"
            )
        actions = [
            self._planner(i).act(
                frames[i], None if goals is None else goals[i], None if states is None else states[i]
            )
            for i in range(len(frames))
        ]
        return torch.from_numpy(np.stack(actions).astype(np.float32))


class LeRobotObservation(gym.ObservationWrapper):
    """An environment with {"pixels", "state"} observations, seen with LeRobot's keys:
    ``observation.image`` uint8 (H, W, 3), ``observation.state`` float32 (S,) and, when the
    environment draws goals (``goal_image()``), ``observation.goal_image``. Actions go through as
    they are; ``check_policy`` refuses a policy whose action width is not the environment's."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        spaces = {IMAGE: space["pixels"], STATE: space["state"]}
        if hasattr(env.unwrapped, "goal_image"):
            spaces[GOAL] = space["pixels"]
        self.observation_space = gym.spaces.Dict(spaces)

    def observation(self, observation: dict) -> dict:
        out = {IMAGE: observation["pixels"], STATE: np.asarray(observation["state"], dtype=np.float32)}
        if GOAL in self.observation_space.spaces:
            out[GOAL] = self.env.unwrapped.goal_image()
        return out

    def check_policy(self, policy: GoalImagePolicy) -> None:
        """The policy's world model must act in this environment's action width."""
        width = int(np.prod(self.action_space.shape))
        if policy.model.action_dim != width:
            raise ValueError(
                f"the world model's actions have {policy.model.action_dim} values, the environment takes {width}"
            )
