"""Trajectory collection: run a policy in a synthetic environment and write episodes.

``vjepa2 worlds collect --env push --episodes 200 --policy noisy-scripted`` writes one folder per
episode in the format of ``vjepa2.data.episodes`` (docs/trajectory-format.md) plus ``index.csv``
and ``collect_log.jsonl`` (one line per episode: success, final distance, seed).

Each episode has ``steps + 1`` frames: the first observation, then one per action. ``actions[t]`` is
the action taken at frame t (its last row is zeros: no frame follows), ``states`` the proprio state,
and the extra arrays ``sim_states`` (full simulator states, for goal images and success checks),
``rewards`` and ``success``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vjepa2.config import opt
from vjepa2.data.episodes import write_episode, write_index
from vjepa2.errors import UserError
from vjepa2.worlds.envs import make_env

POLICIES = ("random", "noisy-scripted")


@dataclass
class CollectConfig:
    env: str = opt("push", help="environment: reach, push or pusht")
    episodes: int = opt(100, help="number of episodes")
    steps: int = opt(50, help="actions per episode (an episode has steps + 1 frames)")
    policy: str = opt("noisy-scripted", help="random (uniform actions) or noisy-scripted (expert + noise)")
    noise: float = opt(0.5, help="std of the Gaussian noise added to scripted actions (in [-1, 1] units)")
    out: str = opt("runs/trajectories", help="output folder")
    seed: int = opt(0, help="random seed; episode i depends only on (seed, i)")
    size: int = opt(0, help="frame size in pixels; 0: the environment's default (64; pusht 96)")
    fps: float = opt(10.0, help="frame rate written to the videos and meta.json", above=0)
    lossless: bool = opt(False, help="store frames.npy (exact) instead of frames.mp4")


def choose_action(env, policy: str, rng: np.random.Generator, noise: float) -> np.ndarray:
    """An action in [-1, 1]^2: uniform (random) or the env's scripted expert plus Gaussian noise."""
    if policy == "random":
        return rng.uniform(-1.0, 1.0, size=2)
    return np.clip(env.expert_action() + noise * rng.standard_normal(2), -1.0, 1.0)


def run_episode(env, policy: str, seed: int, steps: int, noise: float) -> dict:
    """Roll out one episode; returns frames, actions, states and the per-step extras."""
    rng = np.random.default_rng([seed, 1])
    observation, info = env.reset(seed=seed)
    record = {"frames": [observation["pixels"]], "states": [observation["state"]], "actions": []}
    extras = {"sim_states": [info["state"]], "rewards": [0.0], "success": [info["success"]]}
    for _ in range(steps):
        action = choose_action(env, policy, rng, noise)
        observation, reward, _, _, info = env.step(action)
        record["actions"].append(action)
        record["frames"].append(observation["pixels"])
        record["states"].append(observation["state"])
        for name, value in (("sim_states", info["state"]), ("rewards", reward), ("success", info["success"])):
            extras[name].append(value)
    record["actions"].append(np.zeros(2))  # no frame follows the last one
    episode = {name: np.stack(values) for name, values in record.items()}
    episode["extras"] = {name: np.asarray(values) for name, values in extras.items()}
    episode["goal"] = env.goal.copy()
    episode["distance"] = float(info["distance"])
    return episode


def episode_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def run_collect(cfg: CollectConfig) -> int:
    if cfg.policy not in POLICIES:
        raise UserError(f"policy must be one of {POLICIES}, got {cfg.policy!r}")
    env = make_env(cfg.env, size=cfg.size or None, max_steps=cfg.steps + 1, terminate_on_success=False)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    folders, successes = [], 0
    bar = tqdm(range(cfg.episodes), desc=f"{cfg.env} episodes")
    with open(out / "collect_log.jsonl", "w") as log:
        for index in bar:
            seed = episode_seed(cfg.seed, index)
            episode = run_episode(env, cfg.policy, seed, cfg.steps, cfg.noise)
            success = bool(episode["extras"]["success"][-1])
            meta = {
                "env": cfg.env,
                "policy": cfg.policy,
                "noise": cfg.noise if cfg.policy == "noisy-scripted" else 0.0,
                "seed": seed,
                "goal": episode["goal"].tolist(),
                "success": success,
                "action_names": ["dx", "dy"],
                "action_scale": float(env.max_step),
                "state_names": env.proprio_names,
                "sim_state_names": env.state_names,
            }
            folder = out / f"episode_{index:06d}"
            write_episode(
                folder,
                episode["frames"],
                episode["actions"],
                episode["states"],
                fps=cfg.fps,
                meta=meta,
                extras=episode["extras"],
                lossless=cfg.lossless,
            )
            folders.append(folder)
            successes += success
            bar.set_postfix(success=f"{successes / (index + 1):.2f}")
            row = {"episode": folder.name, "seed": seed, "success": success, "distance": episode["distance"]}
            log.write(json.dumps(row) + "\n")
    write_index(out, folders, [cfg.steps + 1] * len(folders))
    env.close()
    print(
        f"wrote {cfg.episodes} episodes to {out} (final success rate {successes / max(cfg.episodes, 1):.2f})"
    )
    return 0
