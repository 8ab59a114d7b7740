"""Frozen features on the synthetic world's probe tasks: a pretrained encoder against its baselines.

    python benchmarks/probe_table.py --encoder runs/tiny-cpu/latest.pt [--data data/probe-worlds]
        [--config configs/probe/tiny-cpu.yaml] [--out runs/probe-table] [key=value ...]

Trains the attentive probe of ``vjepa2 probe train`` (same config, same heads, same data) on each
task (direction, collision, hidden) for three feature sources: the pretrained encoder, a randomly
initialised encoder of the same shape (``random:<checkpoint>``),
and the pretrained encoder seeing only the middle frame (the single-frame baseline; add
``random-single-frame`` to ``--sources`` for the random encoder on the middle frame). The data are
made with ``vjepa2 worlds make-videos`` when the folder has none. Prints one Markdown table of
validation top-1 (best head) next to chance, and writes it with every figure to ``--out``.

Gaps of a few points between two sources are inside the spread of probe runs (256 validation
clips; the heads' initialisation and data order): ``--seeds 0,1,2`` trains every cell once per
seed (which also draws a new random encoder) and prints mean +- sd over the seeds.
``--train-clips N`` is V-JEPA's low-shot frozen evaluation: the heads see only N class-balanced
training clips (a new draw per seed, the same for every source) and are scored on the whole
validation split; give ``epochs=...`` with it so that the heads still take enough steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

from vjepa2.config import load_config
from vjepa2.evals.commands.probe_train import ProbeTrainConfig, run_probe_train
from vjepa2.worlds.scenes import TASKS, WORLD_VERSION, MakeVideosConfig, chance_level, run_make_videos


def ensure_data(folder: Path, num_videos: int, seed: int, texture: float = 0.0) -> None:
    labels = folder / "labels.json"
    if labels.is_file():
        meta = json.loads(labels.read_text())
        if meta.get("world_version") == WORLD_VERSION and meta["config"].get("texture", 0.0) == texture:
            return
    print(f"making {num_videos} probe clips in {folder}")
    cfg = MakeVideosConfig(
        out=str(folder), num_videos=num_videos, seed=seed, val_fraction=0.125, texture=texture
    )
    run_make_videos(cfg)


def probe(cfg: ProbeTrainConfig, out: Path, redo: bool) -> float:
    """Train the probe heads (unless ``out`` has results of the same config); the best head's
    validation top-1 (%). Reusing finished cells lets a killed table run go on where it stopped."""
    cfg.out = str(out)
    done = out / "heads.json"
    if redo or not done.is_file() or json.loads(done.read_text())["config"] != asdict(cfg):
        run_probe_train(cfg)
    else:
        print(f"{out}: reusing the results of the same config (--redo to train again)")
    results = json.loads(done.read_text())
    return float(results["best"][results["metric"]])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--encoder", required=True, help="pretraining checkpoint (or any vjepa2.load source)")
    parser.add_argument("--encoder-key", default="target_encoder", help="encoder entry of the checkpoint")
    parser.add_argument("--data", default="data/probe-worlds", help="make-videos folder (made if missing)")
    parser.add_argument("--num-videos", type=int, default=2048, help="clips to make when --data is empty")
    parser.add_argument("--data-seed", type=int, default=7, help="seed of the clips made")
    parser.add_argument(
        "--texture", type=float, default=0.0, help="background pattern contrast of the clips made (0: flat)"
    )
    parser.add_argument("--config", default="configs/probe/tiny-cpu.yaml", help="probe train config")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks")
    parser.add_argument(
        "--sources",
        default="pretrained,random,single-frame",
        help="feature sources: pretrained, random, single-frame, random-single-frame",
    )
    parser.add_argument("--out", default="runs/probe-table", help="output folder")
    parser.add_argument(
        "--seeds",
        default="",
        help="comma-separated probe seeds, mean +- sd when several (default: the config's)",
    )
    parser.add_argument(
        "--train-clips", type=int, default=0, help="low-shot: N class-balanced training clips per task"
    )
    parser.add_argument("--redo", action="store_true", help="train every cell again, even if done")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the probe config")
    args = parser.parse_args()

    data, out = Path(args.data), Path(args.out)
    ensure_data(data, args.num_videos, args.data_seed, args.texture)
    sources = {
        "pretrained": {"encoder": args.encoder},
        "random": {"encoder": f"random:{args.encoder}"},
        "single-frame": {"encoder": args.encoder, "single_frame": True},
        "random-single-frame": {"encoder": f"random:{args.encoder}", "single_frame": True},
    }
    chosen = [s for s in args.sources.split(",") if s]
    tasks = [t for t in args.tasks.split(",") if t]
    seeds: list[int | None] = [int(s) for s in args.seeds.split(",") if s] or [None]  # None: the config's
    table: dict[str, dict[str, list[float]]] = {}
    for source in chosen:
        for task in tasks:
            for seed in seeds:
                cfg = load_config(ProbeTrainConfig, args.config, args.overrides)
                cfg.encoder_key = args.encoder_key
                cfg.seed = cfg.seed if seed is None else seed
                for key, value in sources[source].items():
                    setattr(cfg, key, value)
                cfg.train, cfg.val = str(data / f"{task}_train.csv"), str(data / f"{task}_val.csv")
                cfg.train_clips = args.train_clips
                cfg.cache_dir = str(out / source / "features")  # tasks and seeds share the clips
                name = f"{task}-{args.train_clips}clips" if args.train_clips else task
                cell = out / source / (name if seed in (None, 0) else f"{name}-seed{seed}")
                start = time.time()
                top1 = probe(cfg, cell, args.redo)
                table.setdefault(source, {}).setdefault(task, []).append(top1)
                print(f"{source} / {task} / seed {cfg.seed}: {top1:.1f}% in {time.time() - start:.0f} s")

    lines = [
        "| features | " + " | ".join(tasks) + " |",
        "|---|" + "---:|" * len(tasks),
        "| chance | " + " | ".join(f"{100 * chance_level(t):.1f}" for t in tasks) + " |",
    ]
    lines += [f"| {s} | " + " | ".join(summary(table[s][t]) for t in tasks) + " |" for s in chosen]
    text = "\n".join(lines)
    over = f", mean +- sd over seeds {args.seeds}" if len(seeds) > 1 else ""
    print(f"\nvalidation top-1 (%), best head of the grid{over}\n{text}")
    (out / "table.md").write_text(text + "\n")
    results = {"encoder": args.encoder, "seeds": args.seeds or "config", "top1": table}
    (out / "results.json").write_text(json.dumps(results, indent=1))


def summary(values: list[float]) -> str:
    """One cell: the figure, or mean +- sample sd over several seeds."""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} +- {statistics.stdev(values):.1f}"


if __name__ == "__main__":
    main()
