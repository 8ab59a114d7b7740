"""``vjepa2 plan``: one planning step for a robot loop, as JSON on stdout.

    vjepa2 plan --model M --observation obs.png --goal goal.png --state 0.1,0.2 [--out plan.json]

loads the world model, encodes the camera frame and the goal image, runs the ``Planner``'s CEM
once and prints::

    {"actions": [[...A], ...execute], "plan": [[...A], ...H], "warm_start": [[...A], ...H],
     "energy": E, "energy_history": [...], "horizon": H, "action_dim": A, "seconds": s, ...}

``actions``: the first ``planner.execute`` actions of the plan, to play now, in the units the
world model was trained on (for the released V-JEPA 2-AC: DROID's 7-D end-effector deltas, see
the README). ``warm_start``: the plan shifted by those actions; ``--previous plan.json`` on the
next call starts CEM from it (receding-horizon MPC across separate processes).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vjepa2.atomic import atomic_write_text
from vjepa2.config import opt
from vjepa2.errors import MissingPathError, UserError
from vjepa2.planning.mpc import Planner, PlannerConfig
from vjepa2.runtime.process import Process


@dataclass
class PlanConfig:
    model: str = opt("", help="world model directory (written by `vjepa2 train-ac`)")
    observation: str = opt("", help="image file of the current camera frame (any size; resized)")
    goal: str = opt("", help="image file of the goal (or the current sub-goal)")
    state: list[float] = opt(
        [],
        help="robot state, comma-separated (--state=-0.1,0.2 for a leading minus); empty: the training mean",
    )
    previous: str = opt("", help="JSON written by an earlier `vjepa2 plan`: its warm_start seeds CEM")
    planner: PlannerConfig = opt(PlannerConfig, help="CEM + MPC settings (e.g. configs/plan/paper.yaml)")
    out: str = opt("", help="also write the JSON to this file (written after --previous is read)")
    threads: int = opt(0, help="CPU threads of torch (0: its default)")


def read_previous(path: str, horizon: int, action_dim: int) -> torch.Tensor:
    """The (H, A) ``warm_start`` of an earlier plan's JSON; a UserError if it does not fit."""
    file = Path(path)
    if not file.is_file():
        raise MissingPathError(f"--previous {path}: missing (a JSON written by `vjepa2 plan`)")
    try:
        values = json.loads(file.read_text())["warm_start"]
        mean = torch.tensor(values, dtype=torch.float32)
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"--previous {path}: no readable warm_start ({err})") from None
    if tuple(mean.shape) != (horizon, action_dim):
        raise UserError(
            f"--previous {path}: warm_start is {tuple(mean.shape)}, the planner needs ({horizon}, {action_dim})"
        )
    return mean


def plan_step(
    planner: Planner, observation: np.ndarray, goal: np.ndarray, state=None, init: torch.Tensor | None = None
) -> dict:
    """One CEM search, from ``init`` (H, A) if given; the JSON-ready answer (see the module doc).

    observation, goal: uint8 (H, W, 3); state: (S,) or None. Leaves the executed actions queued
    in ``planner.mpc`` and its warm start set, as ``Planner.act`` would.
    """
    tick = time.perf_counter()
    planner.goal_latent(goal)  # first: a goal new to the planner clears its warm start
    if init is not None:
        planner.mpc.previous = init
    result = planner.plan(observation, goal, state)
    planner.mpc.reset()
    planner.mpc.push(result.actions)
    return {
        "actions": np.stack(list(planner.mpc.queue)).tolist(),
        "plan": result.actions.cpu().tolist(),
        "warm_start": planner.mpc.previous.cpu().tolist(),
        "energy": result.energy,
        "energy_history": result.history,
        "horizon": int(result.actions.shape[0]),
        "action_dim": int(result.actions.shape[1]),
        "seconds": time.perf_counter() - tick,
    }


def _state(values: list[float], state_dim: int) -> np.ndarray | None:
    if not values:
        return None
    if len(values) != state_dim:
        raise UserError(f"--state: the world model takes {state_dim} values, got {len(values)}")
    return np.asarray(values, dtype=np.float32)


def run_plan(cfg: PlanConfig) -> int:
    """Print (and with --out, write) the next actions towards the goal image as JSON."""
    for name in ("model", "observation", "goal"):
        if not getattr(cfg, name):
            raise UserError(f"plan: --{name} is required")
    with Process(cfg.planner.device, cfg.planner.dtype, cfg.threads, inference=True) as proc:
        cfg.planner.device, cfg.planner.dtype = str(proc.device), proc.dtype
        return plan_once(cfg)


def plan_once(cfg: PlanConfig) -> int:
    from vjepa2.data.video import read_image

    planner = Planner(cfg.model, cfg.planner)
    model = planner.model
    init = None
    if cfg.previous:
        init = read_previous(cfg.previous, cfg.planner.cem.horizon, model.action_dim)
    observation, goal = read_image(cfg.observation), read_image(cfg.goal)
    answer = plan_step(planner, observation, goal, _state(cfg.state, model.state_dim), init)
    answer.update(model=cfg.model, observation=cfg.observation, goal=cfg.goal)
    text = json.dumps(answer)
    if cfg.out:
        atomic_write_text(Path(cfg.out), text + "\n")
    print(text)
    return 0
