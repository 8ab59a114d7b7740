"""``vjepa2 plan-eval``: goal-image planning in an environment, beside two baselines.

Every method faces the same episodes (start state, goal state, optional sub-goals):
- ``world_model``: the ``Planner`` (V-JEPA 2-AC latent energy, CEM, receding horizon);
- ``random``: uniform random actions (a lower bound);
- ``oracle``: the same CEM and MPC on the true simulator: energy = distance of the simulated
  state after the horizon to the goal state, in the success rule's terms (an upper bound for the
  planner, not for the model).

Goals: ``random`` takes the environment's own random goal; ``expert:N`` the state reached after N
steps of the noisy scripted expert from the start (reachable goals, as DINO-WM draws goals a
fixed number of steps ahead in held-out trajectories). With ``subgoals: K`` the states at K - 1
evenly spaced points of that path become intermediate goal images, each with an equal budget.
With ``propose_subgoals`` the world model gets the final goal image only and proposes its own
sub-goals from the training episodes (``planning.subgoals``); the oracle keeps the spec's goals.

Writes ``results.json`` (success rate, final distance, steps, time per action per method),
``episodes.jsonl``, rollout strips (``strip_<method>.png``, animated: ``.gif``) and the world model's energy
landscape over the first two action dims (``energy_landscape.png``) beside the true one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vjepa2.atomic import atomic_write_json
from vjepa2.config import opt, to_dict
from vjepa2.errors import UserError
from vjepa2.planning.mpc import Planner, PlannerConfig
from vjepa2.planning.oracle import OracleConfig, OraclePolicy, Simulator, state_energy
from vjepa2.planning.plots import save_landscape, save_strip_gif, save_strips
from vjepa2.planning.subgoals import SubgoalConfig, SubgoalGraph
from vjepa2.runtime.process import Process

METHODS = ("world_model", "random", "oracle")


@dataclass
class PlanEvalConfig:
    env: str = opt("reach", help="environment: reach, push or pusht")
    size: int = opt(0, help="frame size in pixels (0: the environment's default; must match training)")
    model: str = opt("", help="world model directory written by `vjepa2 train-ac` (<out>/model)")
    methods: list[str] = opt(list(METHODS), help="any of world_model, random, oracle")
    episodes: int = opt(50, help="episodes per method")
    max_steps: int = opt(0, help="actions per episode (0: the environment's default)")
    goal: str = opt("random", help="random (the env's goal) or expert:N (reached after N noisy expert steps)")
    goal_noise: float = opt(0.5, help="noise of the expert that draws expert:N goals")
    subgoals: int = opt(1, help="goal images per episode: K - 1 sub-goals on the expert path, then the goal")
    propose_subgoals: bool = opt(
        False, help="world model: final goal image only, sub-goals proposed from training episodes"
    )
    subgoal_graph: SubgoalConfig = opt(
        SubgoalConfig, help="with propose_subgoals: the graph of training frames"
    )
    planner: PlannerConfig = opt(PlannerConfig, help="world-model planner (CEM + MPC)")
    oracle: OracleConfig = opt(OracleConfig, help="oracle baseline: CEM + MPC on the true simulator")
    seed: int = opt(0, help="seed of the episodes and of the random baseline")
    threads: int = opt(0, help="CPU threads of torch (0: its default; 1 is fastest on a busy machine)")
    out: str = opt("runs/plan-eval", help="output folder")
    strips: int = opt(3, help="episodes drawn in each method's rollout strip")
    landscape: int = opt(21, help="grid points per axis of the energy landscape (0: no plot)")


@dataclass
class EpisodeSpec:
    seed: int
    start: np.ndarray
    goals: list[tuple[np.ndarray, int]]  # (full goal state, step budget), the last is the goal


def make_env(cfg: PlanEvalConfig):
    from vjepa2.worlds.envs import make_env as make

    kw = {"terminate_on_success": True}
    if cfg.max_steps:
        kw["max_steps"] = cfg.max_steps
    return make(cfg.env, size=cfg.size, **kw) if cfg.size else make(cfg.env, **kw)


def _goal_path(env, cfg: PlanEvalConfig, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Start state and the states leading to the goal (just the goal for ``random``)."""
    _, info = env.reset(seed=seed)
    start = info["state"]
    if cfg.goal == "random":
        return start, [info["goal"]]
    if not cfg.goal.startswith("expert:"):
        raise UserError(f"unknown goal mode {cfg.goal!r}; expected 'random' or 'expert:N'")
    rng = np.random.default_rng(seed)
    path = []
    for _ in range(int(cfg.goal.split(":", 1)[1])):
        noise = cfg.goal_noise * rng.standard_normal(env.action_space.shape)
        _, _, _, _, info = env.step(np.clip(env.expert_action() + noise, -1, 1))
        path.append(info["state"])
    return start, path


def episode_specs(env, cfg: PlanEvalConfig) -> list[EpisodeSpec]:
    """Start and goal states of every episode, drawn once so every method faces the same ones;
    a draw whose start already meets the goal is replaced by the next one."""
    specs, draw = [], 0
    while len(specs) < cfg.episodes:
        seed = int(np.random.SeedSequence([cfg.seed, draw]).generate_state(1)[0])
        draw += 1
        start, path = _goal_path(env, cfg, seed)
        if env.is_success(start, path[-1]):
            continue
        k = max(1, cfg.subgoals)
        picks = [path[min(len(path) - 1, round(len(path) * (j + 1) / k) - 1)] for j in range(k)]
        budget = env.max_steps // k
        goals = [(g, budget) for g in picks[:-1]] + [(picks[-1], env.max_steps)]
        specs.append(EpisodeSpec(seed, start, goals))
    return specs


class RandomPolicy:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def reset(self, env, spec: EpisodeSpec) -> None:
        self.shape = env.action_space.shape

    def __call__(self, observation, info) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, self.shape).astype(np.float32)


class WorldModelPolicy:
    """The Planner; with a ``SubgoalGraph`` it sees the final goal only and proposes sub-goals."""

    def __init__(self, planner: Planner, graph: SubgoalGraph | None = None):
        self.planner, self.graph, self.proposed = planner, graph, []

    def reset(self, env, spec: EpisodeSpec) -> None:
        if self.graph is None:
            self.planner.set_goals([(env.render_state(goal), steps) for goal, steps in spec.goals])
            return
        goal, steps = spec.goals[-1]
        goals = self.graph.propose(
            self.planner.model, env.render_state(spec.start), env.render_state(goal), steps
        )
        self.proposed.append(len(goals) - 1)
        self.planner.set_goals(goals)

    def __call__(self, observation, info) -> np.ndarray:
        return self.planner.act(observation["pixels"], None, observation["state"])


def run_episode(env, policy, spec: EpisodeSpec, keep_frames: bool) -> dict:
    """Play one episode; returns success, final distance, steps, mean seconds per action, frames."""
    observation, info = env.reset(seed=spec.seed, options={"state": spec.start, "goal": spec.goals[-1][0]})
    policy.reset(env, spec)
    frames, times, steps = [observation["pixels"]], [], 0
    done = info["success"]
    while not done:
        tick = time.perf_counter()
        action = policy(observation, info)
        times.append(time.perf_counter() - tick)
        observation, _, terminated, truncated, info = env.step(action)
        steps += 1
        done = terminated or truncated or info["success"]
        if keep_frames:
            frames.append(observation["pixels"])
    return {
        "success": bool(info["success"]),
        "final_distance": float(info["distance"]),
        "steps": steps,
        "time_per_action_s": float(np.mean(times)) if times else 0.0,
        "frames": frames if keep_frames else None,
    }


def summarize(rows: list[dict]) -> dict:
    distances = np.array([r["final_distance"] for r in rows])
    return {
        "success_rate": float(np.mean([r["success"] for r in rows])),
        "final_distance": float(distances.mean()),
        "final_distance_std": float(distances.std()),
        "steps": float(np.mean([r["steps"] for r in rows])),
        "time_per_action_s": float(np.mean([r["time_per_action_s"] for r in rows])),
        "episodes": len(rows),
    }


def _policies(cfg: PlanEvalConfig) -> dict:
    unknown = [m for m in cfg.methods if m not in METHODS]
    if unknown:
        raise UserError(f"unknown methods {unknown}; choose from {list(METHODS)}")
    policies = {}
    for method in cfg.methods:
        if method == "world_model":
            if not cfg.model:
                raise UserError(
                    "plan-eval: the world_model method needs --model (a train-ac output model dir)"
                )
            planner = Planner(cfg.model, cfg.planner)
            graph = None
            if cfg.propose_subgoals:
                graph = SubgoalGraph.from_episodes(planner.model, cfg.subgoal_graph)
            policies[method] = WorldModelPolicy(planner, graph)
        elif method == "random":
            policies[method] = RandomPolicy(cfg.seed)
        else:
            policies[method] = OraclePolicy(cfg.oracle)
    return policies


def energy_landscape(policy: WorldModelPolicy, env, spec: EpisodeSpec, points: int, path: Path) -> None:
    """World-model energy of one first action over a grid of its first two dims (others 0) at the
    start of ``spec``, beside the oracle's energy of the same actions; saved as a PNG."""
    observation, info = env.reset(seed=spec.seed, options={"state": spec.start, "goal": spec.goals[-1][0]})
    goal = spec.goals[0][0]
    planner = policy.planner
    cem_cfg = planner.cfg.cem
    reach = cem_cfg.radius if cem_cfg.bound == "l1" else max(max(map(abs, cem_cfg.low)), max(cem_cfg.high))
    axis = np.linspace(-reach, reach, points)
    ay, ax = np.meshgrid(axis, axis, indexing="ij")
    actions = torch.zeros(points * points, 1, planner.model.action_dim)
    actions[:, 0, 0], actions[:, 0, 1] = torch.from_numpy(ax.ravel()), torch.from_numpy(ay.ravel())
    latent = planner.model.encode(observation["pixels"])[0]
    goal_latent = planner.goal_latent(env.render_state(goal))
    energy = planner.energy_fn(latent, planner._state(observation["state"]), goal_latent)(actions)
    true = state_energy(env, Simulator(env).rollout(info["state"], actions.numpy()), goal)
    panels = {
        "world model: |z_pred - z_goal|": energy.view(points, points).numpy(),
        "simulator: distance to goal state": true.reshape(points, points),
    }
    save_landscape(
        path, axis, panels, title=f"{env.unwrapped.__class__.__name__}: energy of the first action"
    )


def run_plan_eval(cfg: PlanEvalConfig) -> int:
    """Evaluate every method on the same episodes; writes results.json and the plots."""
    with Process(cfg.planner.device, cfg.planner.dtype, cfg.threads, inference=True) as proc:
        cfg.planner.device, cfg.planner.dtype = str(proc.device), proc.dtype
        return evaluate_methods(cfg)


def evaluate_methods(cfg: PlanEvalConfig) -> int:
    from tqdm.auto import tqdm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    env = make_env(cfg)
    specs = episode_specs(env, cfg)
    policies = _policies(cfg)
    results = {}
    with open(out / "episodes.jsonl", "w") as log:
        for method, policy in policies.items():
            rows, strips = [], []
            for i, spec in enumerate(tqdm(specs, desc=method)):
                row = run_episode(env, policy, spec, keep_frames=i < cfg.strips)
                frames = row.pop("frames")
                if frames is not None:
                    strips.append((frames, env.render_state(spec.goals[-1][0]), row["success"]))
                rows.append(row)
                log.write(json.dumps({"method": method, "episode": i, **row}) + "\n")
                log.flush()  # a long evaluation can be read while it runs
            results[method] = summarize(rows)
            if getattr(policy, "proposed", None):
                results[method]["proposed_subgoals"] = float(np.mean(policy.proposed))
            if strips:
                save_strips(out / f"strip_{method}.png", strips)
                save_strip_gif(out / f"strip_{method}.gif", strips)
    if cfg.landscape > 0 and "world_model" in policies and specs:
        energy_landscape(policies["world_model"], env, specs[0], cfg.landscape, out / "energy_landscape.png")
    summary = {"env": cfg.env, "episodes": cfg.episodes, "max_steps": env.max_steps, "goal": cfg.goal}
    summary.update(methods=results, config=to_dict(cfg))
    atomic_write_json(out / "results.json", summary, indent=2)
    print(format_table(summary))
    env.close()
    return 0


def format_table(summary: dict) -> str:
    lines = [
        f"{summary['env']}: {summary['episodes']} episodes, goal {summary['goal']}, max {summary['max_steps']} steps",
        "| method | success | final distance | steps | s / action |",
        "|---|---|---|---|---|",
    ]
    for method, r in summary["methods"].items():
        lines.append(
            f"| {method} | {r['success_rate']:.2f} | {r['final_distance']:.3f} +- {r['final_distance_std']:.3f} "
            f"| {r['steps']:.1f} | {r['time_per_action_s']:.3f} |"
        )
    return "\n".join(lines)
