"""Rigid discs under gravity in a unit box: the simulation behind the synthetic scenes.

World coordinates: x to the right, y downwards (the image convention), the box is [0, 1]^2, time in
seconds. Every object collides as a disc of its radius (squares and triangles are drawn inside that
disc), so contacts are cheap to find. Arrays may carry leading batch dimensions: positions of shape
(..., N, 2) simulate many candidate scenes in one call, which is how the scene samplers find a scene
that meets its target labels without a Python loop per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PhysicsConfig:
    gravity: float = 0.1  # world units / s^2, pointing down (+y)
    restitution: float = 0.95  # between objects
    wall_restitution: float = 0.9
    substeps: int = 8  # integration steps between two frames


@dataclass
class Bodies:
    """The state of N discs (with optional leading batch dimensions).

    positions (..., N, 2) and velocities (..., N, 2) in world units and units/s; radii (..., N);
    active (..., N) bool: inactive slots pad scenes that have fewer objects and never touch anything.
    """

    positions: np.ndarray
    velocities: np.ndarray
    radii: np.ndarray
    active: np.ndarray

    def copy(self) -> Bodies:
        return Bodies(self.positions.copy(), self.velocities.copy(), self.radii.copy(), self.active.copy())


@dataclass
class Motion:
    """What a simulation recorded at each frame.

    positions (T, ..., N, 2); velocities (T, ..., N, 2); contacts (T, ..., N, N) bool, True where two
    objects touched during the steps that led to frame t (frame 0 has none).
    """

    positions: np.ndarray
    velocities: np.ndarray
    contacts: np.ndarray


def gravity_vector(physics: PhysicsConfig) -> np.ndarray:
    return np.array([0.0, physics.gravity])


def bounce_off_walls(positions: np.ndarray, velocities: np.ndarray, radii: np.ndarray, restitution: float):
    """Reflect discs that crossed a wall of the unit box (in place)."""
    r = radii[..., None]
    low, high = positions < r, positions > 1.0 - r
    if not (low.any() or high.any()):
        return
    np.maximum(positions, r, out=positions)
    np.minimum(positions, 1.0 - r, out=positions)
    velocities[low] = np.abs(velocities[low]) * restitution
    velocities[high] = -np.abs(velocities[high]) * restitution


class Pairs:
    """The N (N - 1) / 2 object pairs (i < j) of a batch of scenes, with what contacts need."""

    def __init__(self, bodies: Bodies):
        n = bodies.radii.shape[-1]
        self.first, self.second = np.triu_indices(n, 1)
        self.allowed = bodies.active[..., self.first] & bodies.active[..., self.second]  # (..., P)
        self.reach = bodies.radii[..., self.first] + bodies.radii[..., self.second]
        inv_mass = 1.0 / bodies.radii**2  # masses grow with the area
        self.inv_mass = inv_mass[..., None]  # (..., N, 1)
        self.inv_mass_sum = inv_mass[..., self.first] + inv_mass[..., self.second]
        # (P, N) +1 on the second object of a pair, -1 on the first: spreads pair terms to objects.
        self.incidence = np.zeros((len(self.first), n))
        self.incidence[np.arange(len(self.first)), self.second] = 1.0
        self.incidence[np.arange(len(self.first)), self.first] = -1.0

    def to_matrix(self, touching: np.ndarray) -> np.ndarray:
        """(..., P) bool per pair -> (..., N, N) symmetric bool."""
        n = self.incidence.shape[1]
        matrix = np.zeros(touching.shape[:-1] + (n, n), dtype=bool)
        matrix[..., self.first, self.second] = touching
        matrix[..., self.second, self.first] = touching
        return matrix


def collide(bodies: Bodies, pairs: Pairs, restitution: float) -> np.ndarray:
    """Resolve all touching pairs at once (in place); returns touching (..., P) bool.

    Approaching pairs exchange an impulse along the line of centres; overlapping pairs are pushed
    apart by half the overlap each so they do not sink into each other.
    """
    pos, vel = bodies.positions, bodies.velocities
    offset = pos[..., pairs.second, :] - pos[..., pairs.first, :]  # (..., P, 2) from first to second
    dist = np.sqrt((offset * offset).sum(-1))
    touching = pairs.allowed & (dist < pairs.reach)
    if not touching.any():
        return touching
    normal = offset / np.maximum(dist, 1e-9)[..., None]
    closing = ((vel[..., pairs.second, :] - vel[..., pairs.first, :]) * normal).sum(-1)  # < 0: approaching
    impulse = np.where(touching & (closing < 0), -(1.0 + restitution) * closing / pairs.inv_mass_sum, 0.0)
    overlap = np.where(touching, pairs.reach - dist, 0.0)
    # Each pair pushes its second object along the normal and its first one against it.
    vel += np.einsum("pn,...p,...pd->...nd", pairs.incidence, impulse, normal) * pairs.inv_mass
    pos += 0.5 * np.einsum("pn,...p,...pd->...nd", pairs.incidence, overlap, normal)
    return touching


def simulate(bodies: Bodies, num_frames: int, fps: float, physics: PhysicsConfig) -> Motion:
    """Run the scene for ``num_frames`` frames at ``fps`` (frame 0 is the initial state).

    Semi-implicit Euler with ``physics.substeps`` steps per frame; ``bodies`` is not modified.
    """
    state = bodies.copy()
    pairs = Pairs(state)
    dt = 1.0 / (fps * physics.substeps)
    gravity_step = gravity_vector(physics) * dt
    positions = [state.positions.copy()]
    velocities = [state.velocities.copy()]
    contacts = [np.zeros(pairs.allowed.shape, dtype=bool)]
    for _ in range(num_frames - 1):
        touched = np.zeros_like(contacts[0])
        for _ in range(physics.substeps):
            state.velocities += gravity_step
            state.positions += state.velocities * dt
            bounce_off_walls(state.positions, state.velocities, state.radii, physics.wall_restitution)
            touched |= collide(state, pairs, physics.restitution)
        positions.append(state.positions.copy())
        velocities.append(state.velocities.copy())
        contacts.append(touched)
    return Motion(np.stack(positions), np.stack(velocities), pairs.to_matrix(np.stack(contacts)))


def launch_to_hit(
    displacement: np.ndarray, duration: float, physics: PhysicsConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Initial velocity, and the offset of the path's midpoint, for a free flight that moves by
    ``displacement`` (..., 2) in ``duration`` seconds under gravity (no walls, no contacts).

    x(t) = x0 + v0 t + g t^2 / 2, so v0 = d / tau - g tau / 2, and x(tau / 2) - x0 = d / 2 - g tau^2 / 8.
    """
    gravity = gravity_vector(physics)
    velocity = displacement / duration - gravity * duration / 2
    midpoint_offset = displacement / 2 - gravity * duration**2 / 8
    return velocity, midpoint_offset


def rewind(position: np.ndarray, velocity: np.ndarray, time: float, physics: PhysicsConfig):
    """The free-flight state ``time`` seconds earlier that passes ``position`` with ``velocity``."""
    gravity = gravity_vector(physics)
    start_velocity = velocity - gravity * time
    start_position = position - velocity * time + gravity * time**2 / 2
    return start_position, start_velocity
