"""Intuitive-physics test sets: IntPhys-style quadruplets of possible and impossible clips.

One object (the target) crosses the scene and passes wholly behind a grey bar in the middle of the
clip. World A shows it as it is; world B shows what the law-breaking twin turns it into, from the
first frame on (both possible). The impossible videos switch worlds while the target is hidden:

- ``permanence``: the target vanishes behind the bar and never comes out (B: no target at all;
  B then A: a target comes out of nowhere);
- ``continuity``: the target jumps up or down behind the bar (B: the same launch at that height);
- ``shape``: the target changes shape behind the bar (B: the other shape throughout);
- ``colour``: the target changes colour behind the bar (B: the other colour throughout).

As in IntPhys, each impossible video shows the same frames as a possible one before and after
the switch, so the content of the possible and the impossible videos is balanced: a score that
only reacts to how much moves (the pixel baseline) ties, and only a model that expects the target
to come out as it went in is more surprised by the two impossible videos. The target touches
nothing (in any world), so every other object moves the same in all four, and each impossible
video is pixel-identical to its possible twin until the frame where the target comes out again
(``reveal_frame``; ``mirror_reveal_frame`` for B); the law is broken at ``violation_frame``, the
first frame in which the target is wholly hidden.

Layout of ``vjepa2 worlds make-physics-pairs``::

    out/<violation>/scene_0000/{1,2,3,4}.mp4, status.json   (which file is which: status.json)
    out/pairs.csv                                          "scene_folder violation"
    out/videos.csv                                         "path label" (1 possible, 0 impossible)

``--quadruplets false`` writes the A pair only (``1.mp4``, ``2.mp4``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vjepa2.atomic import atomic_open, atomic_write_json
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
ROLES = ("possible", "impossible", "mirror_possible", "mirror_impossible")


@dataclass
class PhysicsPair:
    """An IntPhys-style quadruplet, each video uint8 (T, H, W, 3): two possible worlds A (the
    target as it is) and B (the target absent, at another height, of another shape or colour),
    and the two impossible splices, A then B and B then A, switched while the target is hidden.
    Every impossible video shows the same frames as a possible one, so content alone (how much
    moves, which colours show) cannot tell them apart: only what the target did behind the bar.
    info: violation, frames, target object."""

    possible: np.ndarray
    impossible: np.ndarray
    info: dict
    mirror_possible: np.ndarray  # world B throughout
    mirror_impossible: np.ndarray  # world B until the target is hidden, world A after


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


def other_height(rng, motion: Motion, bodies: Bodies, b: int, cfg: SceneConfig) -> Motion | None:
    """World B of ``continuity``: the same launch 0.25-0.45 units higher or lower, simulated from
    the start (so it is a possible world of its own); None if the target then leaves the box,
    touches anything or is no longer hidden exactly when it was."""
    state = Bodies(
        motion.positions[0, b].copy(),
        motion.velocities[0, b].copy(),
        bodies.radii[b].copy(),
        bodies.active[b].copy(),
    )
    state.positions[TARGET, 1] += rng.uniform(0.25, 0.45) * rng.choice([-1.0, 1.0])
    other = simulate(state, len(motion.positions), cfg.fps, cfg.physics)
    ys, radius = other.positions[:, TARGET, 1], state.radii[TARGET]
    if ys.min() < radius or ys.max() > 1 - radius or touched_any(other.contacts[:, None], TARGET)[0]:
        return None
    if not np.allclose(other.positions[:, TARGET, 0], motion.positions[:, b, TARGET, 0], atol=1e-6):
        return None  # a wall bounce changed its course sideways: the bar would hide it at other times
    return other


@dataclass
class World:
    """What one video of a scene shows of its kept objects, frame by frame."""

    positions: np.ndarray  # (T, n, 2) world units
    shapes: np.ndarray  # (T, n) shape ids
    colours: np.ndarray  # (T, n) colour ids
    visible: np.ndarray  # (T, n) bool

    def until_then(self, other: World, start: int) -> World:
        """This world until frame ``start``, ``other`` from then on: an impossible video."""
        return World(*(np.concatenate([a[:start], c[start:]]) for a, c in zip(self.fields(), other.fields())))

    def fields(self) -> tuple[np.ndarray, ...]:
        return self.positions, self.shapes, self.colours, self.visible


def world_b(rng, violation: str, a: World, motion: Motion, bodies: Bodies, b: int, keep, cfg) -> World | None:
    """The second possible world of the quadruplet: what the target becomes while hidden in the
    impossible video (absent, another height, shape or colour) shown from the first frame on."""
    positions, shapes, colours, visible = (x.copy() for x in a.fields())
    if violation == "permanence":
        visible[:, TARGET] = False
    elif violation == "continuity":
        other = other_height(rng, motion, bodies, b, cfg)
        if other is None:
            return None
        positions = other.positions[:, keep]
    elif violation == "shape":
        shapes[:, TARGET] = (shapes[0, TARGET] + rng.integers(1, len(SHAPES))) % len(SHAPES)
    elif violation == "colour":
        colours[:, TARGET] = (colours[0, TARGET] + rng.integers(1, len(COLOURS))) % len(COLOURS)
    return World(positions, shapes, colours, visible)


def first_differing_frame(x: np.ndarray, y: np.ndarray) -> int | None:
    differs = np.flatnonzero((x != y).any((1, 2, 3)))
    return int(differs[0]) if len(differs) else None


def build_pair(rng, motion: Motion, bodies: Bodies, b: int, violation: str, size: int, cfg: SceneConfig):
    """Turn candidate ``b`` into a quadruplet (see ``PhysicsPair``), or None if it does not hide
    the target as required."""
    keep = np.flatnonzero(bodies.active[b])
    radius = float(bodies.radii[b, TARGET])
    xs = motion.positions[:, b, TARGET, 0]
    occluder = middle_bar(rng, xs, radius)
    # Hidden with a margin of 1.5 pixels, so anti-aliased edges do not show the target either.
    window = hiding_window(hidden_frames(xs, radius + 1.5 / size, occluder))
    if window is None:
        return None
    start, num_frames, n = window[0], len(xs), len(keep)
    shapes, colours, angles = random_looks(rng, n)
    a = World(
        motion.positions[:, b][:, keep],
        np.repeat(shapes[None], num_frames, axis=0),
        np.repeat(colours[None], num_frames, axis=0),
        np.ones((num_frames, n), dtype=bool),
    )
    b_world = world_b(rng, violation, a, motion, bodies, b, keep, cfg)
    if b_world is None:
        return None
    radii = bodies.radii[b, keep]

    def draw(world: World) -> np.ndarray:
        drawing = scene_drawing(world.positions, radii, world.shapes, world.colours, angles, [occluder],
                                visible=world.visible)  # fmt: skip
        return render(drawing, num_frames, size)

    videos = [draw(w) for w in (a, a.until_then(b_world, start), b_world, b_world.until_then(a, start))]
    reveals = [first_differing_frame(videos[0], videos[1]), first_differing_frame(videos[2], videos[3])]
    if any(r is None or r < start for r in reveals):
        return None  # the break must show, and only after the target went out of sight
    info = {
        "violation": violation,
        "violation_frame": start,
        "reveal_frame": reveals[0],
        "mirror_reveal_frame": reveals[1],
        "num_objects": n,
        "target": {"shape": SHAPES[shapes[TARGET]], "colour": COLOUR_NAMES[colours[TARGET]]},
    }
    return PhysicsPair(*videos[:2], info, *videos[2:])


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
    out: str = opt("runs/physics-pairs", help="output folder")
    num_pairs: int = opt(50, help="pairs per violation type")
    violations: str = opt("all", help="comma-separated subset of permanence,continuity,shape,colour or all")
    num_frames: int = opt(16, help="frames per clip", min=1)
    size: int = opt(64, help="frame height and width in pixels", min=8)
    fps: float = opt(4.0, help="frames per second", above=0)
    seed: int = opt(0, help="random seed")
    quadruplets: bool = opt(
        True,
        help="write IntPhys-style quadruplets (also world B and the B-then-A splice, so possible and "
        "impossible videos show the same content); false: the A pair only",
    )
    gravity: float = opt(1.4, help="fall acceleration in frame heights per squared clip duration")
    workers: int = opt(2, help="worker processes (1: no pool)")
    # MPEG-4 part 2 encodes each frame from past frames only, so twins stay bit-identical up to the
    # reveal; x264's default look-ahead would let the break leak into earlier frames.
    codec: str = opt("mpeg4", help="video codec (keep one without look-ahead or B-frames)")


def selected_violations(text: str) -> list[str]:
    """'all', 'permanence,shape' or the YAML list '[permanence, shape]' -> the violation names."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    names = list(VIOLATIONS) if text == "all" else [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in VIOLATIONS]
    if unknown or not names:
        raise UserError(f"violations must be 'all' or a comma-separated subset of {VIOLATIONS}, got {text!r}")
    return names


def _write_pair(job: tuple[MakePairsConfig, str, int]) -> dict:
    cfg, violation, index = job
    scene_cfg = SceneConfig(num_frames=cfg.num_frames, fps=cfg.fps, gravity=cfg.gravity)
    pair = sample_pair(cfg.seed, index, violation, cfg.size, scene_cfg)
    folder = f"{violation}/scene_{index:04d}"
    (Path(cfg.out) / folder).mkdir(parents=True, exist_ok=True)
    roles = ROLES if cfg.quadruplets else ROLES[:2]
    # File names are shuffled, so they do not give away which video is possible.
    order = np.random.default_rng([cfg.seed, VIOLATIONS.index(violation), index, 2]).permutation(len(roles))
    names = {role: f"{k + 1}.mp4" for role, k in zip(roles, order)}
    for role in roles:
        write_video(Path(cfg.out) / folder / names[role], getattr(pair, role), fps=cfg.fps, codec=cfg.codec)
    status = {
        **names,
        "videos": {names[role]: {"possible": "impossible" not in role, "role": role} for role in roles},
        **pair.info,
        "fps": cfg.fps,
        "num_frames": cfg.num_frames,
        "seed": cfg.seed,
        "index": index,
    }
    atomic_write_json(Path(cfg.out) / folder / "status.json", status)
    return {"folder": folder, **status}


def run_make_pairs(cfg: MakePairsConfig) -> int:
    violations = selected_violations(cfg.violations)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(cfg, v, i) for v in violations for i in range(cfg.num_pairs)]
    records = run_parallel(_write_pair, jobs, cfg.workers, desc="pairs")
    with atomic_open(out / "pairs.csv", "w") as fh:
        fh.writelines(f"{r['folder']} {r['violation']}\n" for r in records)
    with atomic_open(out / "videos.csv", "w") as fh:
        for r in records:
            fh.writelines(f"{r['folder']}/{name} {int(v['possible'])}\n" for name, v in r["videos"].items())
    kind = "quadruplets" if cfg.quadruplets else "pairs"
    print(f"wrote {len(records)} {kind} ({', '.join(violations)}) to {out}")
    return 0
