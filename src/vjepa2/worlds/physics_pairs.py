"""Intuitive-physics test pairs: a possible clip and its impossible twin (IntPhys-like layout).

One object (the target) crosses the scene and passes wholly behind a grey bar in the middle of the
clip. Its twin breaks one law while the target is out of sight:

- ``permanence``: the target vanishes behind the bar and never comes out;
- ``continuity``: the target jumps up or down behind the bar (it comes out at another height);
- ``shape``: the target changes shape behind the bar;
- ``colour``: the target changes colour behind the bar.

The target touches nothing (in either world), so every other object moves the same in both, and the
twins are pixel-identical until the frame where the target comes out again (``reveal_frame``, the
first frame whose pixels differ); the law is broken at ``violation_frame``, the first frame in which
the target is wholly hidden.

Layout of ``vjepa2 worlds make-physics-pairs``::

    out/<violation>/scene_0000/1.mp4, 2.mp4, status.json   (which file is possible: status.json)
    out/pairs.csv                                          "scene_folder violation"
    out/videos.csv                                         "path label" (1 possible, 0 impossible)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vjepa2.config import opt
from vjepa2.data.video import write_video
from vjepa2.errors import UserError
from vjepa2.worlds.physics import Bodies, Motion, simulate
from vjepa2.worlds.render import COLOUR_NAMES, COLOURS, SHAPES, Occluder, render
from vjepa2.worlds.sampling import (
    SceneConfig,
    hidden_frames,
    launch,
    random_bodies,
    random_looks,
    run_candidates,
    scene_drawing,
    touched_any,
    valid_start,
)
from vjepa2.worlds.scenes import run_parallel

VIOLATIONS = ("permanence", "continuity", "shape", "colour")
TARGET = 0  # slot of the object that passes behind the bar


@dataclass
class PhysicsPair:
    """possible and impossible: uint8 (T, H, W, 3); info: violation, frames, target object."""

    possible: np.ndarray
    impossible: np.ndarray
    info: dict


def cross_the_middle(rng: np.random.Generator, bodies: Bodies, cfg: SceneConfig) -> None:
    """Launch the target roughly sideways through the middle of the box (in place)."""
    batch = len(bodies.radii)
    leftwards = rng.random(batch) < 0.5
    angle = rng.uniform(-0.4, 0.4, size=batch) + np.where(leftwards, np.pi, 0.0)
    length = rng.uniform(0.45, 0.7, size=batch)
    midpoint = np.stack([rng.uniform(0.4, 0.6, batch), rng.uniform(0.3, 0.6, batch)], axis=-1)
    launch(bodies, TARGET, angle, length, midpoint, cfg)


def hiding_window(hidden: np.ndarray, min_before: int = 3, min_after: int = 2) -> tuple[int, int] | None:
    """(first hidden frame, first frame after) of a single hidden run that has at least
    ``min_before`` frames in view before it and ``min_after`` after it; None otherwise."""
    frames = np.flatnonzero(hidden)
    if len(frames) == 0 or np.any(np.diff(frames) != 1):
        return None
    start, stop = int(frames[0]), int(frames[-1]) + 1
    if start < min_before or len(hidden) - stop < min_after:
        return None
    return start, stop


def middle_bar(rng: np.random.Generator, xs: np.ndarray, radius: float) -> Occluder:
    """A bar centred on the target's position half-way through, drifting slowly."""
    width = 2 * radius + rng.uniform(0.12, 0.22)
    drift = rng.uniform(-0.2, 0.2)  # world units over the clip
    centre = xs[len(xs) // 2] + rng.uniform(-0.02, 0.02)
    times = np.linspace(-0.5, 0.5, len(xs))
    return Occluder(centre + drift * times, float(width))


def resimulate_from(motion: Motion, b: int, start: int, bodies: Bodies, cfg: SceneConfig) -> Motion:
    """Continue candidate ``b`` from frame ``start`` with the positions and velocities in ``bodies``
    (one scene, (N, 2)); returns the whole clip's motion with frames before ``start`` unchanged."""
    tail = simulate(bodies, len(motion.positions) - start, cfg.fps, cfg.physics)
    return Motion(
        np.concatenate([motion.positions[:start, b], tail.positions]),
        np.concatenate([motion.velocities[:start, b], tail.velocities]),
        np.concatenate([motion.contacts[:start, b], tail.contacts]),
    )


def teleport(rng, motion: Motion, bodies: Bodies, b: int, start: int, cfg: SceneConfig) -> Motion | None:
    """The impossible world of ``continuity``: at frame ``start`` the target jumps up or down by
    0.25-0.45 units; None if that leaves the box or makes the target touch anything."""
    state = Bodies(
        motion.positions[start, b].copy(),
        motion.velocities[start, b].copy(),
        bodies.radii[b].copy(),
        bodies.active[b].copy(),
    )
    jump = rng.uniform(0.25, 0.45) * rng.choice([-1.0, 1.0])
    state.positions[TARGET, 1] += jump
    radius = state.radii[TARGET]
    if not radius <= state.positions[TARGET, 1] <= 1 - radius:
        return None
    twin = resimulate_from(motion, b, start, state, cfg)
    if touched_any(twin.contacts[:, None], TARGET)[0]:
        return None
    return twin


def build_pair(rng, motion: Motion, bodies: Bodies, b: int, violation: str, size: int, cfg: SceneConfig):
    """Turn candidate ``b`` into a pair, or None if it does not hide the target as required."""
    keep = np.flatnonzero(bodies.active[b])
    radius = float(bodies.radii[b, TARGET])
    xs = motion.positions[:, b, TARGET, 0]
    occluder = middle_bar(rng, xs, radius)
    # Hidden with a margin of 1.5 pixels, so anti-aliased edges do not show the target either.
    window = hiding_window(hidden_frames(xs, radius + 1.5 / size, occluder))
    if window is None:
        return None
    start, stop = window
    twin = motion.positions[:, b]
    if violation == "continuity":
        twin_motion = teleport(rng, motion, bodies, b, start, cfg)
        if twin_motion is None:
            return None
        twin = twin_motion.positions
    num_frames, n = len(xs), len(keep)
    shapes, colours, angles = random_looks(rng, n)
    twin_shapes = np.repeat(shapes[None], num_frames, axis=0)
    twin_colours = np.repeat(colours[None], num_frames, axis=0)
    visible = np.ones((num_frames, n), dtype=bool)
    if violation == "permanence":
        visible[start:, TARGET] = False
    elif violation == "shape":
        twin_shapes[start:, TARGET] = (shapes[TARGET] + rng.integers(1, len(SHAPES))) % len(SHAPES)
    elif violation == "colour":
        twin_colours[start:, TARGET] = (colours[TARGET] + rng.integers(1, len(COLOURS))) % len(COLOURS)
    radii = bodies.radii[b, keep]
    possible = scene_drawing(motion.positions[:, b][:, keep], radii, shapes, colours, angles, [occluder])
    impossible = scene_drawing(
        twin[:, keep], radii, twin_shapes, twin_colours, angles, [occluder], visible=visible
    )
    possible, impossible = render(possible, num_frames, size), render(impossible, num_frames, size)
    differs = np.flatnonzero((possible != impossible).any((1, 2, 3)))
    if len(differs) == 0 or differs[0] < start:
        return None  # the break must show, and only after the target went out of sight
    info = {
        "violation": violation,
        "violation_frame": start,
        "reveal_frame": int(differs[0]),
        "num_objects": n,
        "target": {"shape": SHAPES[shapes[TARGET]], "colour": COLOUR_NAMES[colours[TARGET]]},
    }
    return PhysicsPair(possible, impossible, info)


def sample_pair(seed: int, index: int, violation: str, size: int, cfg: SceneConfig) -> PhysicsPair:
    """Pair ``index`` of one violation type; depends only on (seed, violation, index)."""
    if violation not in VIOLATIONS:
        raise UserError(f"unknown violation {violation!r}; known: {VIOLATIONS}")
    rng = np.random.default_rng([seed, VIOLATIONS.index(violation), index])
    for _ in range(cfg.max_batches):
        bodies = random_bodies(rng, cfg.candidates, cfg)
        cross_the_middle(rng, bodies, cfg)
        motion = run_candidates(bodies, cfg)
        fits = valid_start(bodies) & ~touched_any(motion.contacts, TARGET)
        for b in np.flatnonzero(fits):
            pair = build_pair(rng, motion, bodies, b, violation, size, cfg)
            if pair is not None:
                return pair
    raise RuntimeError(f"no {violation} pair found after {cfg.max_batches} batches of {cfg.candidates}")


# ---------------------------------------------------------------------------------------------
# The ``vjepa2 worlds make-physics-pairs`` command


@dataclass
class MakePairsConfig:
    out: str = opt("physics_pairs", help="output folder")
    num_pairs: int = opt(50, help="pairs per violation type")
    violations: str = opt("all", help="comma-separated subset of permanence,continuity,shape,colour or all")
    num_frames: int = opt(16, help="frames per clip")
    size: int = opt(64, help="frame height and width in pixels")
    fps: float = opt(4.0, help="frames per second")
    seed: int = opt(0, help="random seed")
    gravity: float = opt(1.4, help="fall acceleration in frame heights per squared clip duration")
    workers: int = opt(2, help="worker processes (1: no pool)")
    # MPEG-4 part 2 encodes each frame from past frames only, so twins stay bit-identical up to the
    # reveal; x264's default look-ahead would let the break leak into earlier frames.
    codec: str = opt("mpeg4", help="video codec (keep one without look-ahead or B-frames)")


def selected_violations(text: str) -> list[str]:
    names = list(VIOLATIONS) if text == "all" else [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in VIOLATIONS]
    if unknown or not names:
        raise ValueError(
            f"violations must be 'all' or a comma-separated subset of {VIOLATIONS}, got {text!r}"
        )
    return names


def _write_pair(job: tuple[MakePairsConfig, str, int]) -> dict:
    cfg, violation, index = job
    scene_cfg = SceneConfig(num_frames=cfg.num_frames, fps=cfg.fps, gravity=cfg.gravity)
    pair = sample_pair(cfg.seed, index, violation, cfg.size, scene_cfg)
    folder = f"{violation}/scene_{index:04d}"
    (Path(cfg.out) / folder).mkdir(parents=True, exist_ok=True)
    # Which of 1.mp4 / 2.mp4 is possible is random, so file names do not give it away.
    swap = bool(np.random.default_rng([cfg.seed, VIOLATIONS.index(violation), index, 2]).random() < 0.5)
    names = {"possible": "2.mp4" if swap else "1.mp4", "impossible": "1.mp4" if swap else "2.mp4"}
    for kind, frames in (("possible", pair.possible), ("impossible", pair.impossible)):
        write_video(Path(cfg.out) / folder / names[kind], frames, fps=cfg.fps, codec=cfg.codec)
    status = {
        **names,
        "videos": {names["possible"]: {"possible": True}, names["impossible"]: {"possible": False}},
        **pair.info,
        "fps": cfg.fps,
        "num_frames": cfg.num_frames,
        "seed": cfg.seed,
        "index": index,
    }
    (Path(cfg.out) / folder / "status.json").write_text(json.dumps(status, indent=1))
    return {"folder": folder, **status}


def run_make_pairs(cfg: MakePairsConfig) -> int:
    violations = selected_violations(cfg.violations)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(cfg, v, i) for v in violations for i in range(cfg.num_pairs)]
    records = run_parallel(_write_pair, jobs, cfg.workers, desc="pairs")
    with open(out / "pairs.csv", "w") as fh:
        fh.writelines(f"{r['folder']} {r['violation']}\n" for r in records)
    with open(out / "videos.csv", "w") as fh:
        for r in records:
            fh.write(f"{r['folder']}/{r['possible']} 1\n{r['folder']}/{r['impossible']} 0\n")
    print(f"wrote {len(records)} pairs ({', '.join(violations)}) to {out}")
    return 0
