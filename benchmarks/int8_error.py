"""What int8 inference costs against fp32: tokens, a probe's answers, a planner's actions.

    python benchmarks/int8_error.py                                   # random:tiny on the world's clips
    python benchmarks/int8_error.py --encoder runs/tiny-cpu/latest.pt --probe runs/probe-direction/probe
    python benchmarks/int8_error.py --world-model runs/ac-reach/model --episodes 20

1. Tokens: the encoder's output on the validation clips of a synthetic-world task, fp32 against
   int8 (dynamic int8 Linear layers): cosine similarity per token (mean, min) and seconds.
2. Probe: an attentive probe trained on fp32 features (``--probe``, or trained here with
   configs/probe/tiny-cpu.yaml) scored on the same clips with fp32 and with int8 features: top-1
   of each and how often the two answers agree.
3. Planning (``--world-model``, a ``vjepa2 train-ac`` output): on reach episodes, the first CEM
   plan from the start frame with both precisions (same sampler seed): L1 distance of the two
   actions; then whole episodes: success rate and seconds per action of each.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from probe_table import ensure_data

from vjepa2.config import load_config
from vjepa2.evals.commands.probe_eval import ProbeEvalConfig, run_probe_eval
from vjepa2.evals.commands.probe_train import ProbeTrainConfig, run_probe_train
from vjepa2.evals.features import FeatureExtractor, load_encoder
from vjepa2.evals.probes import clip_dataset, feature_spec
from vjepa2.models.precision import machine_summary


def token_error(encoder: str, data: Path, task: str, clips: int) -> dict:
    cfg = load_config(ProbeTrainConfig, "configs/probe/tiny-cpu.yaml", [f"encoder={encoder}"])
    dataset = clip_dataset(str(data / f"{task}_val.csv"), feature_spec(cfg, load_encoder(encoder), cfg.crop))
    views = torch.stack(
        [dataset[i]["clip"] for i in range(min(clips, len(dataset)))]
    )  # (B, M, S, T, C, H, W)
    out, seconds = {}, {}
    for dtype in ("fp32", "int8"):
        extract = FeatureExtractor(load_encoder(encoder), dtype=dtype)
        start = time.perf_counter()
        out[dtype] = torch.cat([extract.encode(views[i : i + 16]) for i in range(0, len(views), 16)])
        seconds[dtype] = time.perf_counter() - start
    cos = F.cosine_similarity(out["int8"], out["fp32"], dim=-1)
    return {
        "clips": len(views),
        "cos_mean": cos.mean().item(),
        "cos_min": cos.min().item(),
        "seconds": seconds,
    }


def probe_error(probe: str, data: Path, task: str, out: Path) -> dict:
    results = {}
    for dtype in ("fp32", "int8"):
        cfg = ProbeEvalConfig(
            probe=probe, data=str(data / f"{task}_val.csv"), out=str(out / dtype), dtype=dtype
        )
        start = time.perf_counter()
        run_probe_eval(cfg)
        metrics = json.loads((out / dtype / "metrics.json").read_text())
        answers = [
            line.split(",")[2] for line in (out / dtype / "predictions.csv").read_text().splitlines()[1:]
        ]
        results[dtype] = {"top1": metrics["top1"], "answers": answers, "seconds": time.perf_counter() - start}
    agree = np.mean([a == b for a, b in zip(results["fp32"]["answers"], results["int8"]["answers"])])
    return {
        "top1": {k: v["top1"] for k, v in results.items()},
        "seconds": {k: v["seconds"] for k, v in results.items()},
        "agreement": 100 * float(agree),
    }


def plan_error(world_model: str, episodes: int, config: str) -> dict:
    from vjepa2.planning.evaluate import (
        PlanEvalConfig,
        WorldModelPolicy,
        episode_specs,
        make_env,
        run_episode,
    )
    from vjepa2.planning.mpc import Planner

    cfg = load_config(PlanEvalConfig, config, [f"model={world_model}", f"episodes={episodes}"])
    env = make_env(cfg)
    specs = episode_specs(env, cfg)
    planners = {}
    for dtype in ("fp32", "int8"):
        cfg.planner.dtype = dtype
        planners[dtype] = Planner(world_model, cfg.planner)
    gaps = []
    for spec in specs:
        observation, _ = env.reset(seed=spec.seed, options={"state": spec.start, "goal": spec.goals[-1][0]})
        goal = env.render_state(spec.goals[-1][0])
        actions = {}
        for dtype, planner in planners.items():
            planner.reset()
            planner.generator.manual_seed(cfg.planner.seed)
            actions[dtype] = planner.act(observation["pixels"], goal, observation["state"])
        gaps.append(float(np.abs(actions["fp32"] - actions["int8"]).sum()))
    summary = {"first_action_l1_gap": float(np.mean(gaps)), "episodes": len(specs)}
    for dtype, planner in planners.items():
        planner.generator.manual_seed(cfg.planner.seed)
        rows = [run_episode(env, WorldModelPolicy(planner), spec, False) for spec in specs]
        summary[dtype] = {
            "success": 100 * float(np.mean([r["success"] for r in rows])),
            "s_per_action": float(np.mean([r["time_per_action_s"] for r in rows])),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--encoder", default="random:tiny", help="encoder (any vjepa2.load source or random:<preset>)"
    )
    parser.add_argument(
        "--probe", default="", help="probe folder trained on fp32 features (default: train one)"
    )
    parser.add_argument("--data", default="data/probe-worlds", help="make-videos folder (made if missing)")
    parser.add_argument("--task", default="direction")
    parser.add_argument("--clips", type=int, default=256, help="validation clips for the token comparison")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the probe trained here")
    parser.add_argument("--out", default="runs/int8-error")
    parser.add_argument("--world-model", default="", help="train-ac output model folder (planning part)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--plan-config", default="configs/plan/reach.yaml")
    args = parser.parse_args()
    print(f"# {machine_summary()}")
    data, out = Path(args.data), Path(args.out)
    ensure_data(data, 2048, 7)
    report = {"tokens": token_error(args.encoder, data, args.task, args.clips)}
    t = report["tokens"]
    print(
        f"tokens ({t['clips']} clips): cosine int8 vs fp32 mean {t['cos_mean']:.5f}, min {t['cos_min']:.5f}; "
        f"encode {t['seconds']['fp32']:.1f} s fp32, {t['seconds']['int8']:.1f} s int8"
    )
    probe = args.probe
    if not probe:
        cfg = load_config(
            ProbeTrainConfig,
            "configs/probe/tiny-cpu.yaml",
            [f"encoder={args.encoder}", "dtype=fp32", f"epochs={args.epochs}"],
        )
        cfg.train, cfg.val, cfg.out = (
            str(data / f"{args.task}_train.csv"),
            str(data / f"{args.task}_val.csv"),
            str(out / "probe"),
        )
        cfg.cache_dir = str(out / "features")
        run_probe_train(cfg)
        probe = str(out / "probe" / "probe")
    report["probe"] = p = probe_error(probe, data, args.task, out / "eval")
    print(
        f"probe ({args.task}): top-1 fp32 {p['top1']['fp32']:.1f}%, int8 {p['top1']['int8']:.1f}%; "
        f"answers agree on {p['agreement']:.1f}% of clips"
    )
    if args.world_model:
        report["planning"] = q = plan_error(args.world_model, args.episodes, args.plan_config)
        print(
            f"planning ({q['episodes']} reach episodes): first actions differ by {q['first_action_l1_gap']:.4f} (L1); "
            f"success fp32 {q['fp32']['success']:.0f}% ({q['fp32']['s_per_action']:.3f} s/action), "
            f"int8 {q['int8']['success']:.0f}% ({q['int8']['s_per_action']:.3f} s/action)"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {out / 'report.json'}")


if __name__ == "__main__":
    main()
