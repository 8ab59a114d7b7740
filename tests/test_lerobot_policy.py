"""The world model trained from a LeRobot v3.0 dataset of the reach world, then driven in the reach
environment through LeRobot's policy interface (``select_action``) and the gymnasium wrapper."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from vjepa2.checkpoints.world_models import load_world_model
from vjepa2.cli import main
from vjepa2.planning.cem import CEMConfig
from vjepa2.planning.lerobot_policy import GoalImagePolicy, LeRobotObservation, to_frames
from vjepa2.planning.mpc import PlannerConfig
from vjepa2.worlds.envs import make_env

TINY = ["--model.encoder-overrides", "{depth: 1}", "--model.dim", "32", "--model.depth", "1"]
TINY += ["--model.heads", "1", "--data.num-frames", "3", "--run.batch-size", "4", "--run.dtype", "fp32"]


@pytest.fixture(scope="module")
def world_model(tmp_path_factory):
    """A tiny world model trained 4 steps on a LeRobot v3.0 dataset made from the reach world."""
    root = tmp_path_factory.mktemp("reach")
    collect = ["worlds", "collect", "--env", "reach", "--episodes", "6", "--steps", "8", "--size", "32"]
    assert main([*collect, "--out", str(root / "episodes")]) == 0
    assert (
        main(["episodes", "to-lerobot", str(root / "episodes"), "--codec", "h264", "--out", str(root / "lr")])
        == 0
    )
    args = ["train-ac", "--data.source", f"[lerobot:{root / 'lr'}]", "--run.out", str(root / "ac"), *TINY]
    args += ["--run.steps", "4", "--schedule.warmup-steps", "1", "--run.eval-every", "2", "data.fps=0"]
    assert main(args) == 0
    return root / "ac" / "model"


def test_the_model_takes_the_dataset_s_widths_and_stats(world_model):
    world = load_world_model(world_model)
    assert world.action_dim == 2 and world.state_dim == 2
    # normalised with the dataset's stats (all episodes), not the training split's
    import json

    stats = json.loads((world_model.parent.parent / "lr" / "meta" / "stats.json").read_text())
    np.testing.assert_allclose(world.spec.stats.state_mean, stats["observation.state"]["mean"], rtol=1e-6)


def small_planner() -> PlannerConfig:
    return PlannerConfig(
        cem=CEMConfig(samples=16, iterations=2, elites=4, horizon=1), device="cpu", dtype="fp32"
    )


def test_the_policy_drives_the_reach_env_through_select_action(world_model):
    env = LeRobotObservation(make_env("reach", size=32, max_steps=5))
    policy = GoalImagePolicy(world_model, small_planner())
    env.check_policy(policy)
    observation, info = env.reset(seed=3)
    policy.reset()
    steps = 0
    for _ in range(5):  # LeRobot's loop: a batch of one, the action tensor back to the env
        batch = {k: torch.as_tensor(v)[None] for k, v in observation.items()}
        action = policy.select_action(batch)
        assert action.shape == (1, 2) and action.dtype == torch.float32 and torch.isfinite(action).all()
        observation, _, terminated, truncated, info = env.step(action[0].numpy())
        steps += 1
        if terminated or truncated:
            break
    assert steps >= 1 and "distance" in info
    # a batch of two rows plans twice, each row with its own planner
    image = torch.as_tensor(observation["observation.image"]).permute(2, 0, 1).float() / 255
    two = {
        "observation.image": torch.stack([image, image]),
        "observation.goal_image": torch.stack([image, image]),
    }
    assert policy.select_action(two).shape == (2, 2) and len(policy.planners) == 2


def test_sub_goal_images_and_wrong_widths(world_model):
    policy = GoalImagePolicy(world_model, small_planner())
    env = make_env("reach", size=32)
    observation, _ = env.reset(seed=1)
    with pytest.raises(ValueError, match="no goal"):
        policy.select_action({"observation.image": observation["pixels"]})
    policy.set_goals([(env.goal_image(), 2), (env.goal_image(), 3)])
    assert policy.select_action({"observation.image": observation["pixels"]}).shape == (1, 2)
    with pytest.raises(ValueError, match="observation.state has 3 values, the world model takes 2"):
        policy.select_action(
            {"observation.image": observation["pixels"], "observation.state": np.zeros((1, 3))}
        )
    wrapped = LeRobotObservation(env)
    wrapped.action_space = gym.spaces.Box(-1, 1, (3,))
    with pytest.raises(ValueError, match="actions have 2 values, the environment takes 3"):
        wrapped.check_policy(policy)


def test_lerobot_images_become_frames():
    frames = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    as_float = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    assert np.array_equal(to_frames(as_float), frames) and np.array_equal(to_frames(frames[0]), frames[:1])
