"""Controllable worlds: determinism, bounded motion, pushing, goal images, success rules, collection."""

import numpy as np
import pytest

from vjepa2.cli import main
from vjepa2.data.episodes import read_episode, read_index
from vjepa2.worlds.envs import PushEnv, ReachEnv, angle_error, make_env


@pytest.mark.parametrize("name", ["reach", "push"])
def test_reset_is_deterministic_and_observations_fit_their_spaces(name):
    env = make_env(name, size=32)
    obs, info = env.reset(seed=4)
    again, info_again = make_env(name, size=32).reset(seed=4)
    assert np.array_equal(obs["pixels"], again["pixels"]) and np.array_equal(info["goal"], info_again["goal"])
    assert env.observation_space.contains(obs) and obs["pixels"].shape == (32, 32, 3)
    actions = np.random.default_rng(0).uniform(-1, 1, (5, 2))
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
    twin = make_env(name, size=32)
    twin.reset(seed=4)
    for action in actions:
        twin_obs, *_ = twin.step(action)
    assert np.array_equal(obs["pixels"], twin_obs["pixels"]) and np.array_equal(env.state, twin.state)
    assert np.array_equal(env.render(), obs["pixels"])


def test_reach_moves_at_most_max_step_and_succeeds_with_the_expert():
    env = ReachEnv(size=32, max_step=0.05)
    env.reset(seed=0, options={"state": [0.2, 0.2], "goal": [0.8, 0.7]})
    before = env.state.copy()
    env.step([5.0, -5.0])  # clipped to [-1, 1]
    np.testing.assert_allclose(env.state - before, [0.05, -0.05])
    for _ in range(40):
        _, _, terminated, _, info = env.step(env.expert_action())
        if terminated:
            break
    assert info["success"] and terminated and info["distance"] < env.success_distance


def test_goal_image_is_the_image_of_the_goal_state():
    env = ReachEnv(size=32)
    obs, _ = env.reset(seed=1)
    goal_image = env.goal_image()
    assert not np.array_equal(goal_image, obs["pixels"])
    at_goal, _ = env.reset(options={"state": env.goal, "goal": env.goal})
    assert np.array_equal(at_goal["pixels"], goal_image)
    state = env.state.copy()
    env.render_state([0.5, 0.5])
    assert np.array_equal(env.state, state)  # drawing a state does not move the agent


def test_success_rules():
    reach = ReachEnv(success_distance=0.05)
    assert reach.is_success(np.array([0.5, 0.5]), np.array([0.53, 0.5]))
    assert not reach.is_success(np.array([0.5, 0.5]), np.array([0.56, 0.5]))
    push = PushEnv(success_distance=0.05, success_angle=np.pi / 9)
    goal = np.array([0.1, 0.1, 0.5, 0.5, 0.3])
    assert push.is_success(
        np.array([0.9, 0.9, 0.52, 0.5, 0.3 + np.pi / 2 + 0.2]), goal
    )  # square: quarter turns
    assert not push.is_success(np.array([0.9, 0.9, 0.52, 0.5, 0.3 + 0.4]), goal)
    assert not push.is_success(np.array([0.1, 0.1, 0.56, 0.5, 0.3]), goal)
    assert angle_error(0.1, 2 * np.pi - 0.1) == pytest.approx(0.2)


def test_pushing_moves_and_turns_the_block():
    env = PushEnv(size=32)
    env.reset(options={"state": [0.3, 0.5, 0.5, 0.5, 0.0], "goal": [0.3, 0.5, 0.8, 0.5, 0.0]})
    for _ in range(3):
        env.step([1.0, 0.0])
    agent, block, angle = env.state[:2], env.state[2:4], env.state[4]
    assert block[0] > 0.55 and abs(angle) < 1e-9  # a push through the centre does not turn it
    depth, _, _ = env.contact(agent, block, angle)
    assert depth <= 1e-9  # the agent never ends inside the block
    env.reset(options={"state": [0.3, 0.45, 0.5, 0.5, 0.0], "goal": [0.3, 0.5, 0.8, 0.5, 0.0]})
    for _ in range(3):
        env.step([1.0, 0.0])
    assert 0.01 < env.state[4] < np.pi  # pushed above its centre (y is down): it turns clockwise


def test_block_stops_at_the_wall():
    env = PushEnv(size=32)
    env.reset(options={"state": [0.6, 0.5, 0.8, 0.5, 0.0], "goal": [0.3, 0.5, 0.5, 0.5, 0.0]})
    for _ in range(20):
        env.step([1.0, 0.0])
    assert env.state[2] <= 1 - env.block_half * np.sqrt(2) + 1e-9
    assert env.contact(env.state[:2], env.state[2:4], env.state[4])[0] <= 1e-9


def test_push_expert_gets_the_block_to_the_goal_often():
    env = PushEnv(size=32, max_steps=150)
    successes = 0
    for seed in range(6):
        env.reset(seed=seed)
        for _ in range(150):
            _, _, terminated, truncated, info = env.step(env.expert_action())
            if terminated or truncated:
                break
        successes += info["distance"] < env.success_distance
    assert successes >= 3


def test_bad_options_name_the_problem():
    with pytest.raises(ValueError, match="options\\['goal'\\]"):
        PushEnv().reset(options={"goal": [0.5, 0.5]})


def test_collect_writes_episodes_that_replay(tmp_path):
    out = tmp_path / "push"
    args = [
        "--env",
        "push",
        "--episodes",
        "2",
        "--steps",
        "6",
        "--size",
        "32",
        "--out",
        str(out),
        "--lossless",
        "true",
    ]
    assert main(["worlds", "collect", *args]) == 0
    folders = read_index(out)
    assert len(folders) == 2
    env = PushEnv(size=32)
    for folder in folders:
        episode = read_episode(folder)
        frames, actions, states, meta = episode
        assert frames.shape == (7, 32, 32, 3) and actions.shape == (7, 2) and states.shape == (7, 2)
        assert np.all(actions[-1] == 0) and np.abs(actions).max() <= 1
        sim_states = episode.extras["sim_states"]
        np.testing.assert_allclose(states, sim_states[:, :2], atol=1e-6)
        for t in (0, 6):  # the frames are the images of the recorded simulator states
            assert np.array_equal(frames[t], env.render_state(sim_states[t]))
        env.reset(options={"state": sim_states[0], "goal": meta["goal"]})
        for action in actions[:-1]:
            env.step(action)
        np.testing.assert_allclose(env.state, sim_states[-1], atol=1e-9)  # the actions replay
        assert meta["env"] == "push" and meta["sim_state_names"][2] == "block_x"


def test_collect_videos_and_random_policy(tmp_path):
    out = tmp_path / "reach"
    args = ["--env", "reach", "--episodes", "1", "--steps", "4", "--policy", "random", "--out", str(out)]
    assert main(["worlds", "collect", *args]) == 0
    episode = read_episode(read_index(out)[0])
    assert episode.frames.shape == (5, 64, 64, 3) and episode.meta["policy"] == "random"


def test_pusht_adapter():
    pytest.importorskip("gym_pusht")
    env = make_env("pusht", size=48)
    obs, info = env.reset(seed=0)
    again, info_again = make_env("pusht", size=48).reset(seed=0)
    assert np.array_equal(obs["pixels"], again["pixels"]) and np.array_equal(info["goal"], info_again["goal"])
    assert obs["pixels"].shape == (48, 48, 3) and obs["state"].shape == (4,)
    start = env.state.copy()
    for _ in range(3):
        obs, _, _, _, info = env.step([1.0, 0.5])
    assert env.state[0] > start[0]  # relative actions move the agent
    assert np.array_equal(env.render_state(info["state"]), obs["pixels"])  # states round-trip exactly
    np.testing.assert_allclose(env.state, info["state"])
    goal = info["state"]
    assert env.is_success(goal + [12.0, 0, 12.0, 0, 0.3], goal)  # L2 16.97 < 20, 0.3 < pi / 9
    assert not env.is_success(goal + [15.0, 0, 15.0, 0, 0.0], goal)  # L2 21.2
    assert not env.is_success(goal + [0, 0, 0, 0, 0.4], goal)
    wrapped = goal.copy()
    wrapped[4] = (goal[4] + 2 * np.pi - 0.1) % (2 * np.pi)
    assert env.is_success(wrapped, goal)
    image = env.goal_image(goal)
    assert image.shape == (48, 48, 3) and np.array_equal(env.state, info["state"])


def test_collect_pusht(tmp_path):
    pytest.importorskip("gym_pusht")
    args = ["--env", "pusht", "--episodes", "1", "--steps", "3", "--out", str(tmp_path), "--lossless", "true"]
    assert main(["worlds", "collect", *args]) == 0
    episode = read_episode(read_index(tmp_path)[0])
    assert episode.frames.shape == (4, 96, 96, 3) and episode.states.shape == (4, 4)
    env = make_env("pusht")
    assert np.array_equal(env.render_state(episode.extras["sim_states"][-1]), episode.frames[-1])


def test_pusht_simulator_replays_the_board_with_its_velocities():
    """The PushT oracle's simulator is the true board only with the velocities (``motion``): from
    the positions alone the replayed agent ends pixels away from where the board puts it."""
    pytest.importorskip("gym_pusht")
    from vjepa2.planning.oracle import Simulator

    rng = np.random.default_rng(0)
    history = [rng.uniform(-1, 1, 2) for _ in range(4)]
    actions = rng.uniform(-1, 1, (3, 2))
    env = make_env("pusht", size=48)
    env.reset(seed=3)
    for action in history:
        env.step(action)
    state, sim = env.unwrapped.state.copy(), Simulator(env)
    assert np.abs(sim.motion()[:2]).max() > 1  # the agent is still moving
    with_motion, at_rest = sim.rollout(state, actions, sim.motion()), sim.rollout(state, actions)
    np.testing.assert_array_equal(env.unwrapped.state, state)  # replays leave the env alone
    for action in actions:
        env.step(action)
    np.testing.assert_allclose(with_motion, env.unwrapped.state, atol=1e-6)
    assert np.linalg.norm(at_rest[:2] - env.unwrapped.state[:2]) > 0.5


def test_pusht_staged_energy_places_the_block_before_the_agent():
    pytest.importorskip("gym_pusht")
    from vjepa2.planning.oracle import state_energy

    env = make_env("pusht", size=48)
    goal = np.array([100.0, 100.0, 300.0, 300.0, 1.0])
    parked = np.array([100.0, 100.0, 340.0, 300.0, 1.0])  # the agent at its goal, the block 40 px off
    pushed = np.array([250.0, 250.0, 302.0, 300.0, 1.02])  # the block placed, the agent beside it
    both = state_energy(env, np.stack([parked, pushed]), goal)
    assert both[0] < both[1]  # the plain sum prefers parking: the local minimum the stages avoid
    staged = state_energy(env, np.stack([parked, pushed, goal]), goal, staged=True)
    assert staged[1] < staged[0] and staged[2] == 0
    # among placed blocks the agent's distance decides; among unplaced ones the contact term
    closer = pushed + np.array([-50.0, -50.0, 0, 0, 0])
    assert state_energy(env, closer, goal, staged=True) < staged[1]
    near_block = parked + np.array([200.0, 150.0, 0, 0, 0])  # agent next to the block, same block
    assert state_energy(env, near_block, goal, 0.1, staged=True) < state_energy(
        env, parked, goal, 0.1, staged=True
    )
