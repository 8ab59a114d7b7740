"""Planning speed at the paper's setting: the reference notebook's cem() against ours and iCEM.

    python benchmarks/planning_speed.py                  # 800 samples x 10 iterations, horizon 1
    python benchmarks/planning_speed.py --quick          # fewer samples everywhere (a smoke run)

One AC predictor (random weights, 192 wide, 6 blocks, 7-D actions and states) on a tiny encoder
at 128 px (8 x 8 = 64 tokens per frame) plans one action from a push-world frame towards another.
Rows, each the same search problem (one observation, one goal image, one action set):

- ``reference cem()``: an independent re-implementation of the algorithm of the V-JEPA 2
  notebooks' ``cem()`` (notebooks/utils/mpc_utils.py): per iteration and horizon step it samples
  xyz and gripper from a Gaussian (rotation held at 0), clips xyz to +-maxnorm and the gripper to
  +-0.75, runs the predictor over the whole history of every sample, layer-norms the prediction
  and steps the pose with Euler-angle composition; the top-k by mean L1 distance to the goal
  refit mean and std with momentum; the mean is returned;
- ``ours, CEM``: ``Planner`` with the same setting on the same action set (box bounds with the
  rotation dims fixed at 0), fp32 and bf16 autocast;
- ``ours, iCEM``: fewer samples, a population shrinking every iteration, elites kept across
  iterations, the best sample returned (``CEMConfig.decay / keep_elites / return_best``).

Energy reached: the fp32 latent energy of the returned action (lower is better; ``zero action``
is the energy of not moving). Times are seconds per planned action (median of ``--repeats``;
the observation is encoded inside the timed call). Shared CPUs: say what else was running.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from vjepa2.models.ac_predictor import ACPredictor, ACPredictorConfig
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.presets import encoder_config
from vjepa2.models.world_model import WorldModel, WorldModelSpec
from vjepa2.planning.cem import CEMConfig, latent_energy
from vjepa2.planning.mpc import Planner, PlannerConfig

MAXNORM, GRIPPER = 0.075, 0.75  # the notebook's xyz step bound and gripper clip
CROP = 128  # 8 x 8 tokens per frame with the tiny encoder's 16 px patches


def paper_size_model(crop: int = 128) -> WorldModel:
    """Tiny encoder + an AC predictor 192 wide, 6 deep, 7-D actions and states (random weights)."""
    torch.manual_seed(0)
    encoder = VideoEncoder(encoder_config("tiny"))
    cfg = ACPredictorConfig(enc_dim=192, dim=192, depth=6, heads=4, action_dim=7, state_dim=7)
    return WorldModel(encoder, ACPredictor(cfg), WorldModelSpec(crop=crop))


def euler_step(poses: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The notebook's pose update: xyz + delta, R(delta) R(theta) as xyz Euler angles, gripper
    + delta clipped to [0, 1]. poses, actions (N, 7) -> (N, 7)."""
    from scipy.spatial.transform import Rotation

    p, a = poses.double().cpu().numpy(), actions.double().cpu().numpy()
    turned = Rotation.from_euler("xyz", a[:, 3:6]) * Rotation.from_euler("xyz", p[:, 3:6])
    new = np.concatenate([p[:, :3] + a[:, :3], turned.as_euler("xyz"), np.clip(p[:, 6:] + a[:, 6:], 0, 1)], 1)
    return torch.from_numpy(new).to(poses)


@torch.no_grad()
def reference_cem(model: WorldModel, observation, goal_latent, pose, args, generator) -> torch.Tensor:
    """The notebook's CEM (see the module docstring); goal_latent (K, D), encoded once per goal as
    the notebook does; returns the (H, 7) plan."""
    K, H, N = model.tokens_per_frame, args.horizon, args.samples
    context = model.encode(observation)[0]  # (K, D)
    mean = torch.zeros(H, 4)
    std = torch.cat([torch.full((H, 3), MAXNORM), torch.ones(H, 1)], 1)
    for _ in range(args.iterations):
        frames = context.expand(N, 1, *context.shape)  # (N, 1, K, D)
        poses = torch.as_tensor(pose, dtype=torch.float32).expand(N, 1, 7)
        actions = torch.zeros(N, 0, 7)
        for h in range(H):
            draw = torch.randn(N, 4, generator=generator) * std[h] + mean[h]
            xyz, grip = draw[:, :3].clamp(-MAXNORM, MAXNORM), draw[:, 3:].clamp(-GRIPPER, GRIPPER)
            step = torch.cat([xyz, torch.zeros(N, 3), grip], 1)
            actions = torch.cat([actions, step[:, None]], 1)
            pred = model.predictor(frames.flatten(1, 2), actions, poses, grid_hw=model.grid_hw)[:, -K:]
            frames = torch.cat([frames, F.layer_norm(pred, (pred.shape[-1],))[:, None]], 1)
            poses = torch.cat([poses, euler_step(poses[:, -1], step)[:, None]], 1)
        energies = (frames[:, -1] - goal_latent).abs().flatten(1).mean(-1)
        elites = actions[energies.topk(args.elites, largest=False).indices][..., [0, 1, 2, 6]]
        mean = 0.15 * mean + 0.85 * elites.mean(0)  # momenta 0.15 (xyz and gripper alike)
        std = 0.15 * std + 0.85 * elites.std(0)
    return torch.cat([mean[:, :3], torch.zeros(H, 3), mean[:, 3:]], 1)


def same_action_set(**kw) -> CEMConfig:
    """Box bounds of the notebook's action set: xyz in +-maxnorm, rotation fixed at 0, gripper."""
    low, high = [-MAXNORM] * 3 + [0.0] * 3 + [-GRIPPER], [MAXNORM] * 3 + [0.0] * 3 + [GRIPPER]
    return CEMConfig(bound="box", low=low, high=high, **kw)


def timed(fn, repeats: int) -> tuple[float, float, torch.Tensor]:
    """Median wall seconds, median CPU seconds of this process, the last result. On a shared
    CPU with one torch thread the CPU seconds are the work done; wall seconds include waiting."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        tick, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - tick)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=800, help="CEM samples per iteration (paper: 800)")
    parser.add_argument("--iterations", type=int, default=10, help="CEM iterations (paper: 10)")
    parser.add_argument("--elites", type=int, default=10, help="top-k refitting the Gaussian (paper: 10)")
    parser.add_argument("--horizon", type=int, default=1, help="planned steps (paper: 1)")
    parser.add_argument("--icem-samples", type=int, default=160, help="iCEM's first population")
    parser.add_argument("--icem-iterations", type=int, default=6, help="iCEM iterations")
    parser.add_argument("--icem-decay", type=float, default=1.4, help="iCEM population shrink per iteration")
    parser.add_argument("--repeats", type=int, default=3, help="timed plans of each fast row (median)")
    parser.add_argument("--slow-repeats", type=int, default=1, help="timed plans of the 800 x 10 rows")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="divide every population by 8 (smoke run)")
    parser.add_argument(
        "--rows",
        default="reference,cem-fp32,cem-bf16,icem-fp32,icem-bf16",
        help="comma-separated rows to run (the first one run is the speed-up's reference)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.samples, args.icem_samples = args.samples // 8, max(args.elites, args.icem_samples // 8)
    from vjepa2.worlds.envs import make_env

    env = make_env("push", size=CROP)
    rng = np.random.default_rng(0)
    start, goal_state = env.sample_state(rng), env.sample_state(rng)
    observation, goal = env.render_state(start), env.render_state(goal_state)
    pose = np.zeros(7, dtype=np.float32)
    model = paper_size_model(CROP)
    goal_latent = model.encode(goal)[0]

    def energy_of(plan: torch.Tensor) -> float:
        latent = model.encode(observation)[0]
        predicted = model.rollout(latent, torch.from_numpy(pose), plan[None].float())[:, -1]
        return float(latent_energy(predicted, goal_latent)[0])

    paper = dict(samples=args.samples, iterations=args.iterations, elites=args.elites, horizon=args.horizon)
    icem = dict(samples=args.icem_samples, iterations=args.icem_iterations, elites=args.elites)
    icem.update(horizon=args.horizon, decay=args.icem_decay, keep_elites=0.3, return_best=True)
    icem_evals = sum(
        max(args.elites, round(args.icem_samples / args.icem_decay**i)) for i in range(args.icem_iterations)
    )
    rows = [  # key, name, plan function, energy evaluations per action, repeats
        ("reference", "reference cem(), fp32", None, args.samples * args.iterations, args.slow_repeats),
        (
            "cem-fp32",
            "ours, CEM, fp32",
            (same_action_set(**paper), "fp32"),
            args.samples * args.iterations,
            args.slow_repeats,
        ),
        (
            "cem-bf16",
            "ours, CEM, bf16",
            (same_action_set(**paper), "bf16"),
            args.samples * args.iterations,
            args.slow_repeats,
        ),
        ("icem-fp32", "ours, iCEM, fp32", (same_action_set(**icem), "fp32"), icem_evals, args.repeats),
        ("icem-bf16", "ours, iCEM, bf16", (same_action_set(**icem), "bf16"), icem_evals, args.repeats),
    ]
    print(f"AC predictor 192 wide x 6 blocks, {model.tokens_per_frame} tokens per frame, 7-D actions; ")
    print(f"horizon {args.horizon}; torch threads {torch.get_num_threads()}")
    zero = energy_of(torch.zeros(args.horizon, 7))
    print(f"zero action: energy {zero:.5f}")
    print(
        "| planner | energy evaluations / action | wall s / action | CPU s / action | speed-up vs reference "
        "(CPU s) | energy reached | drop below the zero action, vs the reference's |"
    )
    print("|---|---|---|---|---|---|---|")
    reference = None  # (CPU seconds, energy)
    wanted = args.rows.split(",")
    for key, name, setting, evals, repeats in rows:
        if key not in wanted:
            continue
        generator = torch.Generator().manual_seed(0)
        if setting is None:
            fn = lambda g=generator: reference_cem(model, observation, goal_latent, pose, args, g)  # noqa: E731
        else:
            cem_cfg, dtype = setting
            planner = Planner(model, PlannerConfig(cem=cem_cfg, dtype=dtype, seed=0))
            planner.goal_latent(goal)  # the goal is encoded once per episode, not per action
            fn = lambda planner=planner: planner.plan(observation, goal, pose).actions  # noqa: E731
        wall, cpu, plan = timed(fn, repeats)
        energy = energy_of(plan)
        reference = reference or (cpu, energy)
        drop = (zero - energy) / max(zero - reference[1], 1e-12)
        speed = reference[0] / cpu
        print(
            f"| {name} | {evals} | {wall:.2f} | {cpu:.2f} | {speed:.1f}x | {energy:.5f} | {drop:.0%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
