"""Procedural physics clips with labels for three probe tasks that need time to solve.

Every clip shows 3-4 objects (circle, square, triangle; red, green, blue, yellow) falling under
gravity, bouncing off the walls and off each other, and one grey bar (an occluder) sliding in
front of them. One object, the tagged one, is drawn white. Each clip has three labels:

- ``direction`` (8 classes, chance 1/8): the direction of the tagged object's displacement from the
  first to the last frame, in 45-degree sectors (0 = right, 2 = up, 4 = left, 6 = down). Its path is
  centred on a uniform random point, so the middle frame says nothing about where it goes.
- ``collision`` (2 classes, chance 1/2): whether two objects touch during the clip. Two objects are
  always sent close to each other: they either hit or miss narrowly, so closeness in a single frame
  does not give the answer away; no other pair ever touches, so the number and spread of the
  objects do not either.
- ``hidden`` (4 classes, chance 1/4): the colour of the object that is wholly behind the bar from
  the middle frame to the last. It is in view (at least half of it) in the first frame and slides
  behind the bar during the first half. Colours are drawn independently, so no frame from the
  middle on says anything about it: the answer has to be carried from the first half (which
  colours were there, and which one went behind the bar). A single early frame does show which
  colours exist, so the single-frame baseline reads the middle frame.

Targets are balanced in blocks of 64 clips (every combination of the three labels once per block);
a scene is resampled until its simulated labels match the targets. A clip depends only on (seed,
index), so clips can be made in any order by any number of workers.
"""

from __future__ import annotations

import csv
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vjepa2.atomic import atomic_open, atomic_write_json
from vjepa2.config import opt
from vjepa2.data.video import write_video
from vjepa2.errors import UserError
from vjepa2.worlds.physics import Bodies
from vjepa2.worlds.render import (
    COLOUR_NAMES,
    SHAPES,
    Occluder,
    Texture,
    covered_fraction,
    random_texture,
    render,
)
from vjepa2.worlds.sampling import (
    SceneConfig,
    aim_pair,
    launch,
    random_bodies,
    random_looks,
    run_candidates,
    scene_drawing,
    valid_start,
)

DIRECTIONS = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")
TASKS: dict[str, tuple[str, ...]] = {
    "direction": DIRECTIONS,
    "collision": ("no", "yes"),
    "hidden": COLOUR_NAMES,
}
WORLD_VERSION = 3  # bumped whenever the clips of a (seed, index) change: cached clips are remade
TAGGED = 0  # slot of the tagged object
TEXTURE_STREAM = 1  # third seed word of the background pattern's generator
PAIR = (1, 2)  # slots of the two objects sent close to each other
SECTOR = np.pi / 4


def chance_level(task: str) -> float:
    """Accuracy of guessing for a task whose classes are balanced."""
    return 1.0 / len(TASKS[task])


def clip_targets(seed: int, index: int) -> dict[str, int]:
    """Target labels of clip ``index``: each block of 64 clips holds every combination once."""
    block, slot = divmod(index, 64)
    combo = np.random.default_rng([seed, block, 64]).permutation(64)[slot]
    return {"direction": int(combo % 8), "collision": int(combo // 8 % 2), "hidden": int(combo // 16)}


def direction_class(displacement: np.ndarray, margin: float = np.radians(5), min_length: float = 0.12):
    """Sector (..., ) int of displacements (..., 2), and whether it is clear-cut: at least
    ``margin`` radians from a sector border and ``min_length`` world units long."""
    angle = np.arctan2(-displacement[..., 1], displacement[..., 0])  # counter-clockwise on screen
    sector = angle / SECTOR
    label = np.round(sector).astype(np.int64) % 8
    clear = (np.abs(sector - np.round(sector)) * SECTOR < SECTOR / 2 - margin) & (
        np.linalg.norm(displacement, axis=-1) >= min_length
    )
    return label, clear


def aim_tagged(rng: np.random.Generator, bodies: Bodies, direction: int, cfg: SceneConfig) -> None:
    """Launch the tagged object so that it moves towards ``direction`` over the clip (in place).

    The path's midpoint is uniform in a square that does not depend on the direction, so the middle
    frame says nothing. Thrown paths bulge upwards by g tau^2 / 8 at the middle (tau: the clip's
    duration), so the square sits higher by that much (up to 0.2): both ends stay off the floor.
    """
    batch = len(bodies.radii)
    angle = direction * SECTOR + rng.uniform(-0.6, 0.6, size=batch) * SECTOR / 2
    length = rng.uniform(0.25, 0.45, size=batch)
    lift = min(cfg.gravity / 8, 0.2)
    midpoint = np.stack([rng.uniform(0.3, 0.7, batch), rng.uniform(0.3 - lift, 0.7 - lift, batch)], axis=-1)
    launch(bodies, TAGGED, angle, length, midpoint, cfg)


@dataclass
class ProbeScene:
    """A chosen scene: positions (T, N, 2), radii (N,), looks (N,), the occluder, labels, details."""

    positions: np.ndarray
    radii: np.ndarray
    shapes: np.ndarray
    colours: np.ndarray
    angles: np.ndarray
    occluder: Occluder
    labels: dict[str, int]
    info: dict = field(default_factory=dict)
    texture: Texture | None = None

    def render(self, size: int) -> np.ndarray:
        """uint8 (T, size, size, 3)."""
        drawing = scene_drawing(
            self.positions, self.radii, self.shapes, self.colours, self.angles, [self.occluder], TAGGED
        )
        drawing.texture = self.texture
        return render(drawing, len(self.positions), size)


def hidden_from(num_frames: int) -> int:
    """First frame of the hidden stretch: the middle frame (index T // 2, as the single-frame
    baseline reads it)."""
    return num_frames // 2


def hiding_occluder(
    rng: np.random.Generator, xs: np.ndarray, radii: np.ndarray, hidden: int
) -> Occluder | None:
    """A bar that wholly hides object ``hidden`` from the middle frame to the last, no other object
    at those two frames, and leaves the hidden object half in view or more in the first frame and
    the tagged object in view at both ends. xs (T, N) x centres. None if this draw fails the rules.

    The bar moves at constant speed, so the object's offset from the bar's centre changes linearly
    (until a bounce): it goes from +a to -a times the slack (width / 2 - radius) over the second
    half and so starts about 3.3 a slacks off centre. Half in view at the start needs that offset
    to reach width / 2, hence bars a little over 3 radii wide.
    """
    num_frames = len(xs)
    mid, last = hidden_from(num_frames), num_frames - 1
    radius = radii[hidden]
    width = radius * rng.uniform(3.2, 3.6)
    offset = rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 0.95) * (width / 2 - radius)
    # The bar's centre passes xs[mid] - offset at the middle frame and xs[last] + offset at the end.
    speed = (xs[last, hidden] - xs[mid, hidden] + 2 * offset) / (last - mid)
    bar = xs[mid, hidden] - offset + speed * (np.arange(num_frames) - mid)
    cover = covered_fraction(xs, radii[None], bar[:, None], width)  # (T, N)
    others = np.arange(len(radii)) != hidden
    fits = (
        np.all(cover[mid:, hidden] >= 0.999)
        and cover[0, hidden] <= 0.5
        and np.all(cover[[mid, last]][:, others] < 0.5)
        and max(cover[0, TAGGED], cover[-1, TAGGED]) < 0.5
    )
    return Occluder(bar, float(width)) if fits else None


def scene_labels(positions: np.ndarray, contacts: np.ndarray, colours: np.ndarray, hidden: int) -> dict:
    """The three labels of a scene: positions (T, N, 2) with the tagged object first, contacts
    (T, N, N) bool, colour ids (N,), ``hidden`` the object behind the bar from the middle frame on."""
    return {
        "direction": int(direction_class(positions[-1, TAGGED] - positions[0, TAGGED])[0]),
        "collision": int(contacts[1:].any()),
        "hidden": int(colours[hidden]),
    }


def finish_scene(rng, motion, bodies: Bodies, b: int, targets: dict[str, int]) -> ProbeScene | None:
    """Give candidate ``b`` its looks and its occluder; None if no occluder placement works."""
    keep = np.flatnonzero(bodies.active[b])  # the tagged object stays first
    positions = motion.positions[:, b][:, keep]  # (T, N, 2)
    radii = bodies.radii[b, keep]
    for _ in range(8):
        hidden = int(rng.integers(1, len(keep)))
        occluder = hiding_occluder(rng, positions[..., 0], radii, hidden)
        if occluder is not None:
            break
    else:
        return None
    shapes, colours, angles = random_looks(rng, len(keep))
    colours[hidden] = targets["hidden"]
    contacts = motion.contacts[:, b][:, keep][:, :, keep]  # (T, N, N)
    labels = scene_labels(positions, contacts, colours, hidden)
    info = {
        "num_objects": len(keep),
        "tagged_shape": SHAPES[shapes[TAGGED]],
        "hidden_object": hidden,
        "contact_frames": np.flatnonzero(contacts.any((-1, -2))).tolist(),
    }
    return ProbeScene(positions, radii, shapes, colours, angles, occluder, labels, info)


def sample_scene(seed: int, index: int, cfg: SceneConfig) -> ProbeScene:
    """The scene of clip ``index``: its simulated labels equal ``clip_targets(seed, index)``."""
    rng = np.random.default_rng([seed, index])
    targets = clip_targets(seed, index)
    batch = cfg.candidates
    for _ in range(cfg.max_batches):
        bodies = random_bodies(rng, batch, cfg)
        aim_tagged(rng, bodies, targets["direction"], cfg)
        aim_pair(rng, bodies, PAIR, np.full(batch, bool(targets["collision"])), cfg)
        motion = run_candidates(bodies, cfg)
        tagged_path = motion.positions[-1, :, TAGGED] - motion.positions[0, :, TAGGED]
        direction, clear = direction_class(tagged_path)
        # Only the pair may touch, in "yes" and "no" clips alike: asking "no contact at all" of the
        # "no" clips alone would favour fewer, more spread-out objects there, which one frame shows.
        touched = motion.contacts[1:].any(0)  # (B, N, N)
        pair = np.zeros(touched.shape[1:], dtype=bool)
        pair[PAIR] = pair[PAIR[::-1]] = True
        collided = touched[:, PAIR[0], PAIR[1]]
        fits = ~(touched & ~pair).any((-1, -2))
        fits &= valid_start(bodies) & clear & (direction == targets["direction"])
        fits &= collided == bool(targets["collision"])
        for b in np.flatnonzero(fits):
            scene = finish_scene(rng, motion, bodies, b, targets)
            if scene is not None:
                if cfg.texture:  # its own stream: the textured world has the flat world's scenes
                    texture_rng = np.random.default_rng([seed, index, TEXTURE_STREAM])
                    scene.texture = random_texture(texture_rng, cfg.texture, cfg.texture_cells)
                return scene
    raise RuntimeError(
        f"no scene met the targets {targets} after {cfg.max_batches} batches of {batch}; "
        "the clip may be too short or the frame rate too high for the default speeds"
    )


# ---------------------------------------------------------------------------------------------
# The ``vjepa2 worlds make-videos`` command


@dataclass
class MakeVideosConfig:
    out: str = opt("runs/synthetic-videos", help="output folder (videos/, CSV indexes, labels)")
    num_videos: int = opt(1000, help="number of clips")
    num_frames: int = opt(16, help="frames per clip", min=1)
    size: int = opt(64, help="frame height and width in pixels", min=8)
    fps: float = opt(4.0, help="frames per second (the simulation runs in seconds)", above=0)
    seed: int = opt(0, help="random seed; clip i depends only on (seed, i)")
    task: str = opt("all", help="which labels get 'path label' CSVs: direction, collision, hidden or all")
    val_fraction: float = opt(0.1, help="share of clips in the validation split (evenly spread)")
    gravity: float = opt(1.4, help="fall acceleration in frame heights per squared clip duration")
    workers: int = opt(2, help="worker processes (1: no pool)")
    codec: str = opt("h264", help="video codec")
    texture: float = opt(
        0.0,
        help="background: 0 flat; > 0 a still random pattern of 16 x 16 smoothed colour cells, "
        "+- this many levels per channel (the same scenes and labels as the flat world)",
    )


def scene_config(cfg: MakeVideosConfig) -> SceneConfig:
    return SceneConfig(num_frames=cfg.num_frames, fps=cfg.fps, gravity=cfg.gravity, texture=cfg.texture)


def make_clip(seed: int, index: int, scene_cfg: SceneConfig, size: int) -> tuple[np.ndarray, ProbeScene]:
    """Frames uint8 (T, size, size, 3) and the scene (with labels) of clip ``index``."""
    scene = sample_scene(seed, index, scene_cfg)
    return scene.render(size), scene


def _write_clip(job: tuple[MakeVideosConfig, int]) -> dict:
    cfg, index = job
    frames, scene = make_clip(cfg.seed, index, scene_config(cfg), cfg.size)
    path = f"videos/clip_{index:06d}.mp4"
    write_video(Path(cfg.out) / path, frames, fps=cfg.fps, codec=cfg.codec)
    return {"path": path, **scene.labels, **scene.info}


def run_parallel(fn, jobs: list, workers: int, desc: str) -> list:
    """``[fn(job) for job in jobs]`` in ``workers`` processes, in order, with a progress bar."""
    if workers <= 1:
        return [fn(job) for job in tqdm(jobs, desc=desc)]
    chunk = max(1, min(32, len(jobs) // (8 * workers)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(fn, jobs, chunksize=chunk), total=len(jobs), desc=desc))


def is_val(index: int, fraction: float) -> bool:
    """Evenly spread validation clips: index i is in when floor((i+1) f) > floor(i f)."""
    return int((index + 1) * fraction) > int(index * fraction)


def selected_tasks(task: str) -> list[str]:
    names = list(TASKS) if task == "all" else [t.strip() for t in task.split(",") if t.strip()]
    unknown = [t for t in names if t not in TASKS]
    if unknown or not names:
        raise UserError(f"task must be one of {list(TASKS)} or 'all' (comma-separated), got {task!r}")
    return names


def write_index(path: Path, records: list[dict], task: str) -> None:
    """A 'path label' CSV (space-separated, paths relative to the CSV's folder)."""
    with atomic_open(path, "w") as fh:
        fh.writelines(f"{r['path']} {r[task]}\n" for r in records)


def write_labels(out: Path, records: list[dict], cfg: MakeVideosConfig) -> dict:
    """labels.csv (every label of every clip) and labels.json (tasks, classes, chance, counts)."""
    columns = ["path", *TASKS, "split", "num_objects", "tagged_shape"]
    with atomic_open(out / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    summary = {
        task: {
            "classes": list(classes),
            "chance": chance_level(task),
            "counts": np.bincount([r[task] for r in records], minlength=len(classes)).tolist(),
        }
        for task, classes in TASKS.items()
    }
    meta = {"config": vars(cfg), "world_version": WORLD_VERSION, "tasks": summary, "clips": records}
    atomic_write_json(out / "labels.json", meta)
    return summary


def run_make_videos(cfg: MakeVideosConfig) -> int:
    tasks = selected_tasks(cfg.task)
    out = Path(cfg.out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    jobs = [(cfg, i) for i in range(cfg.num_videos)]
    records = run_parallel(_write_clip, jobs, cfg.workers, desc="clips")
    for index, record in enumerate(records):
        record["split"] = "val" if is_val(index, cfg.val_fraction) else "train"
    summary = write_labels(out, records, cfg)
    for task in tasks:
        write_index(out / f"{task}.csv", records, task)
        for split in ("train", "val"):
            write_index(out / f"{task}_{split}.csv", [r for r in records if r["split"] == split], task)
        counts = summary[task]["counts"]
        print(f"{task}: {len(counts)} classes, chance {summary[task]['chance']:.3f}, counts {counts}")
    print(f"wrote {len(records)} clips to {out}")
    return 0
