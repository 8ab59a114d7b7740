"""Random scene pieces shared by the probe scenes and the intuitive-physics pairs.

A scene is searched for, not constructed: a batch of candidate scenes is drawn, simulated at once
(``physics.simulate`` takes leading batch dimensions) and the first candidate that meets every
requirement is kept. Labels are always read off the simulated motion, never assumed from the aim.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vjepa2.worlds.physics import Bodies, Motion, PhysicsConfig, launch_to_hit, rewind, simulate
from vjepa2.worlds.render import COLOURS, SHAPES, Drawing, Occluder, Sprite, covered_fraction


@dataclass
class SceneConfig:
    """What every synthetic clip shares: length, frame rate, object sizes and speeds, physics.

    Motion is set per clip, not per second: a clip of 64 frames shows the same kind of scene as one
    of 16 frames, sampled more finely. The simulation itself runs in seconds (see ``physics``).
    """

    num_frames: int = 16
    fps: float = 4.0
    min_objects: int = 3
    max_objects: int = 4
    radius: tuple[float, float] = (0.08, 0.12)  # world units (the frame is 1 x 1): 10-15 px at 64 px
    speed: tuple[float, float] = (0.2, 0.9)  # world units per clip, objects without a role
    gravity: float = 1.4  # world units per clip duration squared (16 frames at 4 fps: 0.1 / s^2)
    restitution: float = 0.95
    wall_restitution: float = 0.9
    substeps: int = 8
    candidates: int = 16  # scenes simulated at once while searching for one that fits
    max_batches: int = 200  # give up (with an error) after this many batches
    texture: float = 0.0  # contrast of a still random background pattern, in levels (0: flat)
    texture_cells: int = 16  # pattern cells across the frame (4 px each at 64 px)

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) / self.fps

    @property
    def physics(self) -> PhysicsConfig:
        """The simulation's settings, in seconds."""
        return PhysicsConfig(
            self.gravity / self.duration**2, self.restitution, self.wall_restitution, self.substeps
        )


def unit_vectors(angles: np.ndarray) -> np.ndarray:
    """(..., 2) directions for angles in radians measured counter-clockwise on screen (y is down)."""
    return np.stack([np.cos(angles), -np.sin(angles)], axis=-1)


def random_bodies(rng: np.random.Generator, batch: int, cfg: SceneConfig) -> Bodies:
    """``batch`` scenes of ``max_objects`` slots, the first 2..max active, free random motion."""
    n = cfg.max_objects
    radii = rng.uniform(*cfg.radius, size=(batch, n))
    positions = rng.uniform(radii[..., None], 1 - radii[..., None], size=(batch, n, 2))
    speeds = rng.uniform(*cfg.speed, size=(batch, n, 1)) / cfg.duration
    velocities = speeds * unit_vectors(rng.uniform(0, 2 * np.pi, size=(batch, n)))
    counts = rng.integers(cfg.min_objects, cfg.max_objects + 1, size=batch)
    active = np.arange(n)[None] < counts[:, None]
    return Bodies(positions, velocities, radii, active)


def launch(
    bodies: Bodies,
    slot: int,
    angle: np.ndarray,
    length: np.ndarray,
    midpoint: np.ndarray,
    cfg: SceneConfig,
) -> None:
    """Give object ``slot`` the free flight that moves it by ``length`` (B,) towards ``angle`` (B,)
    over the clip, passing ``midpoint`` (B, 2) half-way through (in place)."""
    displacement = length[:, None] * unit_vectors(angle)
    velocity, midpoint_offset = launch_to_hit(displacement, cfg.duration, cfg.physics)
    bodies.positions[:, slot] = midpoint - midpoint_offset
    bodies.velocities[:, slot] = velocity
    bodies.active[:, slot] = True


def aim_pair(
    rng: np.random.Generator, bodies: Bodies, slots: tuple[int, int], hit: np.ndarray, cfg: SceneConfig
) -> np.ndarray:
    """Send two objects towards each other so their closest approach falls inside the clip.

    ``hit`` (B,) bool: touch (impact parameter below the sum of radii) or miss narrowly (a gap of
    0.01-0.06 units), so that closeness in one frame does not tell the two apart. Returns the
    time (B,) in seconds of closest approach. Gravity acts on both alike, so it does not change
    their relative motion until a wall does.
    """
    a, b = slots
    batch = len(hit)
    meet_time = rng.uniform(0.15, 0.85, size=batch) * cfg.duration
    # Each object flies 0.1-0.35 units before they meet; the meeting point sits high enough that
    # the fall it took to get there (g t^2 / 2 below its start) does not start it under the floor.
    drop = cfg.physics.gravity * meet_time**2 / 2
    low = np.minimum(0.25 + drop, 0.75)
    meet_point = np.stack([rng.uniform(0.25, 0.75, batch), rng.uniform(0.25, low)], axis=-1)
    heading = rng.uniform(0, 2 * np.pi, size=batch)
    along, across = unit_vectors(heading), unit_vectors(heading + np.pi / 2)
    reach = bodies.radii[:, a] + bodies.radii[:, b]
    gap = np.where(hit, -reach * rng.uniform(0.3, 1.0, batch), rng.uniform(0.01, 0.06, batch))
    separation = (reach + gap)[:, None] * across  # (B, 2) from a to b at closest approach
    speed_a = rng.uniform(0.1, 0.35, size=(batch, 1)) / meet_time[:, None]
    speed_b = rng.uniform(0.1, 0.35, size=(batch, 1)) / meet_time[:, None]
    for slot, position, velocity in (
        (a, meet_point - separation / 2, speed_a * along),
        (b, meet_point + separation / 2, -speed_b * along),
    ):
        start, start_velocity = rewind(position, velocity, meet_time[:, None], cfg.physics)
        bodies.positions[:, slot], bodies.velocities[:, slot] = start, start_velocity
    bodies.active[:, [a, b]] = True
    return meet_time


def valid_start(bodies: Bodies, margin: float = 0.01) -> np.ndarray:
    """(B,) True where every active object starts inside the box and apart from the others."""
    pos, r = bodies.positions, bodies.radii
    inside = ((pos >= r[..., None]) & (pos <= 1 - r[..., None])).all(-1) | ~bodies.active
    dist = np.linalg.norm(pos[:, :, None] - pos[:, None, :], axis=-1)
    apart = dist >= r[:, :, None] + r[:, None, :] + margin
    n = r.shape[-1]
    pairs = bodies.active[:, :, None] & bodies.active[:, None, :] & ~np.eye(n, dtype=bool)
    return inside.all(-1) & (apart | ~pairs).all((-1, -2))


def run_candidates(bodies: Bodies, cfg: SceneConfig) -> Motion:
    return simulate(bodies, cfg.num_frames, cfg.fps, cfg.physics)


def touched_any(contacts: np.ndarray, slot: int | None = None) -> np.ndarray:
    """(B,) whether any pair (or any pair with ``slot``) touched, from contacts (T, B, N, N)."""
    touched = contacts[1:].any(0)  # (B, N, N)
    return touched.any((-1, -2)) if slot is None else touched[:, slot].any(-1)


def random_looks(rng: np.random.Generator, num_objects: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Independent shape ids (N,), colour ids (N,) and angles (N,) for ``num_objects`` objects."""
    shapes = rng.integers(len(SHAPES), size=num_objects)
    colours = rng.integers(len(COLOURS), size=num_objects)
    angles = rng.uniform(0, 2 * np.pi, size=num_objects)
    return shapes, colours, angles


def scene_drawing(
    positions: np.ndarray,
    radii: np.ndarray,
    shapes: np.ndarray,
    colours: np.ndarray,
    angles: np.ndarray,
    occluders: list[Occluder],
    tagged: int | None = None,
    visible: np.ndarray | None = None,
) -> Drawing:
    """A Drawing of N objects: positions (T, N, 2); radii, angles (N,); shapes and colour ids
    (N,) constant or (T, N) per frame; visible (T, N) bool (default all)."""
    num_frames, n = positions.shape[:2]
    shapes = np.broadcast_to(shapes, (num_frames, n))
    colours = np.broadcast_to(colours, (num_frames, n))
    visible = np.ones((num_frames, n), dtype=bool) if visible is None else visible
    sprites = [
        Sprite(
            centres=positions[:, i],
            radius=float(radii[i]),
            shapes=shapes[:, i],
            colours=COLOURS[colours[:, i]],
            angles=np.full(num_frames, angles[i]),
            visible=visible[:, i],
            tagged=i == tagged,
        )
        for i in range(n)
    ]
    return Drawing(sprites, occluders)


def hidden_frames(xs: np.ndarray, radius: float, occluder: Occluder, threshold: float = 0.999) -> np.ndarray:
    """(T,) True where an object with x centres ``xs`` (T,) is wholly behind ``occluder``."""
    return covered_fraction(xs, radius, occluder.centres, occluder.width) >= threshold
