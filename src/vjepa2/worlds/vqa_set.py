"""Video question answering on the built-in world: questions and answers read off the simulation.

``vjepa2 worlds make-vqa`` renders scenes of ``worlds.scenes`` and pairs of ``worlds.physics_pairs``
and asks about each what its ground truth answers (one JSONL line per question, the format
``vjepa2 vqa`` reads):

- ``direction`` (8 choices): which way the white object moves from the first frame to the last;
- ``collision`` (yes / no): whether two objects touch;
- ``hidden`` (4 colours): the colour of the object behind the grey bar at the end;
- ``counting`` (3 / 4): how many objects there are;
- ``physics`` (yes / no): "is this video physically possible?" over a possible clip and its
  impossible twin.

Minimal pairs (two near-identical videos whose answers differ, MVPBench's idea) share a
``pair_id``: every scene is also played backwards, the same frames in reverse order, and asked
its direction (the opposite one); a physics pair's two videos are identical up to the frame where
the broken law shows. Only a model that reads the order of events gets both halves of a pair right.

The held-out split is by scene: a scene's questions, its reversed clip and both videos of a physics
pair fall in the same split. Layout::

    out/videos/scene_000000.mp4, scene_000000_reversed.mp4, physics/<violation>_0000_{a,b}.mp4
    out/train.jsonl, out/val.jsonl    {"video", "question", "answer", "choices", "type", "pair_id"?}
    out/vqa.json                       the config, question templates and counts per type and split
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vjepa2.atomic import atomic_open, atomic_write_json
from vjepa2.config import opt
from vjepa2.data.video import write_video
from vjepa2.errors import UserError
from vjepa2.worlds.physics_pairs import VIOLATIONS, sample_pair
from vjepa2.worlds.render import COLOUR_NAMES
from vjepa2.worlds.sampling import SceneConfig
from vjepa2.worlds.scenes import DIRECTIONS, is_val, make_clip, run_parallel

YES_NO = ["yes", "no"]
COUNTS = ["3", "4"]
QUESTIONS = {
    "direction": ("Which way does the white object move?", list(DIRECTIONS)),
    "collision": ("Do two of the objects touch each other?", YES_NO),
    "hidden": ("What colour is the object behind the grey bar at the end?", list(COLOUR_NAMES)),
    "counting": ("How many objects are there, the white one included?", COUNTS),
    "physics": ("Is this video physically possible?", YES_NO),
}
QUESTION_TYPES = tuple(QUESTIONS)
PAIR_SEED = 3  # third seed word of the draw that names a physics pair's possible video


def reversed_direction(direction: int) -> int:
    """The direction class of a clip played backwards: the displacement flips, 4 sectors on."""
    return (direction + len(DIRECTIONS) // 2) % len(DIRECTIONS)


def qa(video: str, kind: str, answer: str, **extra) -> dict:
    """One JSONL record: the question and choices of ``kind`` about ``video``."""
    question, choices = QUESTIONS[kind]
    if answer not in choices:
        raise ValueError(f"{answer!r} is not a choice of {kind}")
    return {"video": video, "question": question, "answer": answer, "choices": choices, "type": kind, **extra}


@dataclass
class MakeVQAConfig:
    out: str = opt("runs/vqa-set", help="output folder: videos/, train.jsonl, val.jsonl, vqa.json")
    num_scenes: int = opt(1000, help="scenes, each asked direction, collision, hidden and counting", min=1)
    num_pairs: int = opt(25, help="physics pairs per violation type (0: no physics questions)")
    violations: str = opt("all", help="comma-separated subset of permanence,continuity,shape,colour or all")
    reversed: bool = opt(True, help="also play every scene backwards and ask its direction (minimal pairs)")
    num_frames: int = opt(16, help="frames per clip", min=1)
    size: int = opt(64, help="frame height and width in pixels", min=8)
    fps: float = opt(4.0, help="frames per second (the simulation runs in seconds)", above=0)
    seed: int = opt(0, help="random seed; scene i depends only on (seed, i)")
    val_fraction: float = opt(0.2, help="share of scenes (and pairs) held out in val.jsonl (evenly spread)")
    gravity: float = opt(1.4, help="fall acceleration in frame heights per squared clip duration")
    workers: int = opt(2, help="worker processes (1: no pool)")
    # MPEG-4 part 2 codes each frame from past frames only: a physics pair's twins stay identical
    # up to the reveal, and a reversed clip is coded as well as its original.
    codec: str = opt("mpeg4", help="video codec (keep one without look-ahead or B-frames)")


def scene_config(cfg: MakeVQAConfig) -> SceneConfig:
    return SceneConfig(num_frames=cfg.num_frames, fps=cfg.fps, gravity=cfg.gravity)


def _scene_job(job: tuple[MakeVQAConfig, int]) -> list[dict]:
    """Render scene ``index`` (and its reversed clip) and return its questions."""
    cfg, index = job
    frames, scene = make_clip(cfg.seed, index, scene_config(cfg), cfg.size)
    name = f"scene_{index:06d}"
    video = f"videos/{name}.mp4"
    write_video(Path(cfg.out) / video, frames, fps=cfg.fps, codec=cfg.codec)
    labels, split = scene.labels, "val" if is_val(index, cfg.val_fraction) else "train"
    direction = DIRECTIONS[labels["direction"]]
    pair = {"pair_id": f"direction-{name}"} if cfg.reversed else {}
    records = [
        qa(video, "direction", direction, **pair),
        qa(video, "collision", "yes" if labels["collision"] else "no"),
        qa(video, "hidden", COLOUR_NAMES[labels["hidden"]]),
        qa(video, "counting", str(scene.info["num_objects"])),
    ]
    if cfg.reversed:
        backwards = f"videos/{name}_reversed.mp4"
        write_video(Path(cfg.out) / backwards, frames[::-1], fps=cfg.fps, codec=cfg.codec)
        answer = DIRECTIONS[reversed_direction(labels["direction"])]
        records.append(qa(backwards, "direction", answer, **pair))
    return [{**r, "scene": name, "split": split} for r in records]


def _pair_job(job: tuple[MakeVQAConfig, str, int]) -> list[dict]:
    """Render physics pair ``index`` of ``violation`` and return its two questions."""
    cfg, violation, index = job
    pair = sample_pair(cfg.seed, index, violation, cfg.size, scene_config(cfg))
    name = f"{violation}_{index:04d}"
    # Which of a / b is possible is drawn, so file names do not give the answer away.
    rng = np.random.default_rng([cfg.seed, VIOLATIONS.index(violation), index, PAIR_SEED])
    first = "possible" if rng.random() < 0.5 else "impossible"
    split = "val" if is_val(index, cfg.val_fraction) else "train"
    records = []
    for suffix, kind in zip("ab", (first, "impossible" if first == "possible" else "possible")):
        video = f"videos/physics/{name}_{suffix}.mp4"
        write_video(Path(cfg.out) / video, getattr(pair, kind), fps=cfg.fps, codec=cfg.codec)
        answer = "yes" if kind == "possible" else "no"
        records.append(qa(video, "physics", answer, pair_id=f"physics-{name}", violation=violation))
    return [{**r, "scene": f"physics/{name}", "split": split} for r in records]


def selected_violations(text: str, num_pairs: int) -> list[str]:
    if num_pairs == 0:
        return []
    names = list(VIOLATIONS) if text == "all" else [v.strip() for v in text.split(",") if v.strip()]
    if not names or any(v not in VIOLATIONS for v in names):
        raise UserError(f"violations must be 'all' or a comma-separated subset of {VIOLATIONS}, got {text!r}")
    return names


def counts(records: list[dict]) -> dict:
    """Questions per split and type, and answers per type (what guessing the majority gives)."""
    out: dict = {"questions": {}, "answers": {}}
    for r in records:
        split = out["questions"].setdefault(r["split"], {})
        split[r["type"]] = split.get(r["type"], 0) + 1
        answers = out["answers"].setdefault(r["type"], {})
        answers[r["answer"]] = answers.get(r["answer"], 0) + 1
    return out


def write_jsonl(path: Path, records: list[dict]) -> None:
    with atomic_open(path, "w") as fh:
        fh.writelines(json.dumps({k: v for k, v in r.items() if k != "split"}) + "\n" for r in records)


def run_make_vqa(cfg: MakeVQAConfig) -> int:
    violations = selected_violations(cfg.violations, cfg.num_pairs)
    out = Path(cfg.out)
    (out / "videos" / "physics").mkdir(parents=True, exist_ok=True)
    scenes = run_parallel(_scene_job, [(cfg, i) for i in range(cfg.num_scenes)], cfg.workers, "scenes")
    pair_jobs = [(cfg, v, i) for v in violations for i in range(cfg.num_pairs)]
    pairs = run_parallel(_pair_job, pair_jobs, cfg.workers, "physics pairs") if pair_jobs else []
    records = [r for group in scenes + pairs for r in group]
    for split in ("train", "val"):
        write_jsonl(out / f"{split}.jsonl", [r for r in records if r["split"] == split])
    summary = counts(records)
    meta = {
        "config": vars(cfg),
        "questions": {k: {"question": q, "choices": c} for k, (q, c) in QUESTIONS.items()},
    }
    atomic_write_json(out / "vqa.json", {**meta, **summary})
    for split, by_type in summary["questions"].items():
        print(
            f"{split}: {sum(by_type.values())} questions ({', '.join(f'{k} {v}' for k, v in by_type.items())})"
        )
    print(
        f"wrote {len(records)} questions about {len(scenes) * (2 if cfg.reversed else 1) + 2 * len(pairs)} videos to {out}"
    )
    return 0
