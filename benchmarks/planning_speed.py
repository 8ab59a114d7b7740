"""Planning speed: our batched CEM against a sample-by-sample rollout of the same world model.

    python benchmarks/planning_speed.py                         # tiny encoder + reach-size AC predictor
    python benchmarks/planning_speed.py --model runs/ac-reach/model --threads 1
    python benchmarks/planning_speed.py --samples 800 --iterations 10 --horizon 1   # the paper's CEM

Both planners run the same CEM with the same seed, so they draw the same samples and reach the
same plan; the only difference is that ours scores all samples of an iteration in one predictor
call per horizon step, while the peer calls the predictor once per sample (as a loop over a
single-sequence world model would). Prints seconds per planned action (median of --repeats,
encoding of the observation included), the ratio, and the largest difference between the plans.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from vjepa2.checkpoints.world_models import load_world_model
from vjepa2.data.trajectories import NormStats
from vjepa2.models.ac_predictor import ACPredictor, ACPredictorConfig
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.presets import encoder_config
from vjepa2.models.world_model import WorldModel, WorldModelSpec
from vjepa2.planning.cem import CEMConfig, cem, latent_energy
from vjepa2.planning.mpc import Planner, PlannerConfig


def random_world_model(size: int) -> WorldModel:
    """The tiny encoder and a reach-size AC predictor (128 wide, 3 deep), random weights."""
    torch.manual_seed(0)
    encoder = VideoEncoder(encoder_config("tiny"))
    predictor = ACPredictor(
        ACPredictorConfig(enc_dim=192, dim=128, depth=3, heads=4, action_dim=2, state_dim=2)
    )
    stats = NormStats([0.0, 0.0], [0.6, 0.6], [0.5, 0.5], [0.3, 0.3])
    return WorldModel(encoder, predictor, WorldModelSpec(crop=size, stats=stats))


def plan_one_by_one(planner: Planner, observation, goal, state) -> torch.Tensor:
    """The same CEM, but every sample is rolled out with its own predictor calls."""
    model = planner.model
    latent = model.encode(observation)[0]
    goal_latent = planner.goal_latent(goal)
    state = planner._state(state)

    def energy(actions: torch.Tensor) -> torch.Tensor:
        finals = [model.rollout(latent, state, seq[None])[:, -1] for seq in actions]
        return latent_energy(torch.cat(finals), goal_latent)

    generator = torch.Generator().manual_seed(planner.cfg.seed)
    return cem(energy, model.action_dim, planner.cfg.cem, generator=generator).actions


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        tick = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - tick)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="", help="world model dir from train-ac (default: random tiny)")
    parser.add_argument("--size", type=int, default=64, help="frame size of the random model's inputs")
    parser.add_argument("--samples", type=int, default=800)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--elites", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed plans per method (median)")
    parser.add_argument("--peer-repeats", type=int, default=1, help="timed plans of the slow peer")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_world_model(args.model) if args.model else random_world_model(args.size)
    size = model.spec.crop
    cem_cfg = CEMConfig(
        samples=args.samples,
        iterations=args.iterations,
        elites=args.elites,
        horizon=args.horizon,
        bound="box",
    )
    rng = np.random.default_rng(0)
    observation, goal = rng.integers(0, 255, (2, size, size, 3), dtype=np.uint8)
    state = np.array(model.spec.stats.state_mean if model.spec.stats else [0.0] * model.state_dim)

    def batched():
        planner = Planner(model, PlannerConfig(cem=cem_cfg, seed=0))
        return planner.plan(observation, goal, state).actions

    peer_planner = Planner(model, PlannerConfig(cem=cem_cfg, seed=0))
    batched()  # warm-up
    ours, plan = timed(batched, args.repeats)
    peer, peer_plan = timed(
        lambda: plan_one_by_one(peer_planner, observation, goal, state), args.peer_repeats
    )
    print(f"CEM {args.samples} samples x {args.iterations} iterations, horizon {args.horizon}, ")
    print(f"{model.tokens_per_frame} tokens per frame, torch threads {torch.get_num_threads()}")
    print("| planner | s / action | predictor calls / action |")
    print("|---|---|---|")
    calls = args.iterations * args.horizon
    print(f"| batched (ours) | {ours:.3f} | {calls + args.horizon} |")
    print(f"| sample by sample | {peer:.3f} | {calls * args.samples + args.horizon} |")
    print(
        f"speed-up: {peer / ours:.1f}x; largest plan difference {float((plan - peer_plan).abs().max()):.2e}"
    )


if __name__ == "__main__":
    main()
