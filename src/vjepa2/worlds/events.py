"""Synthetic action-anticipation data: physics scenes whose "actions" are their events.

Each video shows 2-3 objects moving under gravity; an event is a bounce off the floor, ceiling or
a wall, or a collision between two objects (the verb), done by one object (the noun, e.g.
``red-circle``). ``make_event_videos`` writes the videos and annotation CSVs in the format of
``vjepa2 anticipate`` (docs/anticipation-format.md), so the EK100 protocol runs with no data set.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vjepa2.atomic import atomic_open
from vjepa2.data.annotations import COLUMNS
from vjepa2.data.video import write_video
from vjepa2.worlds.render import COLOUR_NAMES, SHAPES, render
from vjepa2.worlds.sampling import SceneConfig, random_bodies, run_candidates, scene_drawing, valid_start


def scene_events(positions: np.ndarray, velocities: np.ndarray, contacts: np.ndarray, radii, fps: float):
    """Events (frame, verb, object) of one simulated scene: positions, velocities (T, N, 2),
    contacts (T, N, N). A bounce is a velocity component changing sign next to a wall; a
    collision is a new contact, credited to the faster of the two objects."""
    events = []
    for t in range(1, len(positions)):
        for i in range(positions.shape[1]):
            new = np.flatnonzero(contacts[t, i] & ~contacts[t - 1, i])
            if len(new):
                speeds = np.linalg.norm(velocities[t - 1], axis=-1)
                if speeds[i] >= speeds[new].max():
                    events.append((t, "collide", i))
                continue
            (vx0, vy0), (vx1, vy1) = velocities[t - 1, i], velocities[t, i]
            x, y = positions[t - 1 : t + 1, i, 0], positions[t - 1 : t + 1, i, 1]
            near = radii[i] + np.abs(velocities[t - 1, i]).max() / fps + 0.01  # within a frame's travel
            for flipped, side, verb in (
                (vy0 > 0 > vy1, 1 - y.max(), "floor"),
                (vy0 < 0 < vy1, y.min(), "ceiling"),
                (vx0 < 0 < vx1, x.min(), "left-wall"),
                (vx0 > 0 > vx1, 1 - x.max(), "right-wall"),
            ):
                if flipped and side <= near:
                    events.append((t, verb, i))
                    break
    return events


def event_scene(rng: np.random.Generator, cfg: SceneConfig):
    """A random scene of 2-3 objects: (its Drawing, its events, the noun of each object)."""
    for _ in range(cfg.max_batches):
        bodies = random_bodies(rng, cfg.candidates, cfg)
        valid = np.flatnonzero(valid_start(bodies))
        if len(valid):
            break
    else:
        raise RuntimeError("no valid event scene found; lower the number or size of objects")
    b = valid[0]
    motion = run_candidates(bodies, cfg)
    keep = np.flatnonzero(bodies.active[b])
    positions, velocities = motion.positions[:, b][:, keep], motion.velocities[:, b][:, keep]
    contacts = motion.contacts[:, b][:, keep][:, :, keep]
    radii = bodies.radii[b, keep]
    colours, shapes = (
        rng.permutation(len(COLOUR_NAMES))[: len(keep)],
        rng.integers(len(SHAPES), size=len(keep)),
    )
    angles = rng.uniform(0, 2 * np.pi, size=len(keep))
    nouns = [f"{COLOUR_NAMES[c]}-{SHAPES[s]}" for c, s in zip(colours, shapes)]
    drawing = scene_drawing(positions, radii, shapes, colours, angles, [])
    return drawing, scene_events(positions, velocities, contacts, radii, cfg.fps), nouns


def make_event_videos(
    folder: str | Path, num_videos: int, seed: int = 0, num_frames: int = 48, fps: float = 4.0, size: int = 64,
    min_start_sec: float = 2.0, val_every: int = 5,
) -> tuple[str, str]:  # fmt: skip
    """Write ``num_videos`` scenes and their events as annotation CSVs (every ``val_every``-th
    video goes to validation). An event's action starts at its frame's time and lasts 0.5 s;
    frames with two events, and events before ``min_start_sec``, are left out. Returns the paths
    (train CSV, val CSV)."""
    folder = Path(folder)
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    # SceneConfig counts motion per clip: 0.2-0.4 units/s and gravity 0.1 units/s^2 whatever the length.
    seconds = (num_frames - 1) / fps
    cfg = SceneConfig(num_frames=num_frames, fps=fps, min_objects=2, max_objects=3)
    cfg.speed, cfg.gravity = (0.2 * seconds, 0.4 * seconds), 0.1 * seconds**2
    rows = {"train": [], "val": []}
    for index in tqdm(range(num_videos), desc="event videos"):
        drawing, events, nouns = event_scene(np.random.default_rng([seed, index, 17]), cfg)
        path = f"videos/events_{index:05d}.mp4"
        write_video(folder / path, render(drawing, num_frames, size), fps=fps)
        frames = [t for t, _, _ in events]
        split = "val" if index % val_every == val_every - 1 else "train"
        for t, verb, obj in events:
            if frames.count(t) == 1 and t / fps >= min_start_sec:
                rows[split].append((path, f"{t / fps:.3f}", f"{t / fps + 0.5:.3f}", verb, nouns[obj]))
    files = []
    for split, lines in rows.items():
        file = folder / f"annotations_{split}.csv"
        with atomic_open(file, "w", newline="") as fh:
            csv.writer(fh).writerows([COLUMNS, *lines])
        files.append(str(file))
    print(f"wrote {num_videos} event videos: {len(rows['train'])} train / {len(rows['val'])} val events")
    return files[0], files[1]
