"""Vectorised NumPy rendering of 2-D scenes into RGB frames.

Shapes are drawn from signed distance fields evaluated on a grid of pixel centres for all frames of a
clip at once: coverage = clip(0.5 - distance * size, 0, 1) gives one pixel of anti-aliasing for free.
World coordinates are those of ``physics``: the unit box, x right, y down; a frame of ``size`` pixels
shows the whole box, so the same scene renders at any resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

SHAPES = ("circle", "square", "triangle")
COLOUR_NAMES = ("red", "green", "blue", "yellow")
COLOURS = np.array([(225, 45, 45), (45, 185, 75), (55, 105, 235), (245, 205, 35)], dtype=np.float32)
BACKGROUND = np.array((30, 30, 36), dtype=np.float32)
OCCLUDER = np.array((150, 140, 130), dtype=np.float32)
TAG = np.array((255, 255, 255), dtype=np.float32)
SQUARE_HALF_SIDE = 0.8  # of the radius: corners stay close to the collision disc
TRIANGLE_NORMALS = np.array([(0.0, 1.0), (0.866, -0.5), (-0.866, -0.5)], dtype=np.float32)


@dataclass
class Sprite:
    """One object drawn over T frames.

    centres (T, 2) world units; radius (world units); shapes (T,) int index into SHAPES; colours
    (T, 3) RGB 0-255; angles (T,) radians; visible (T,) bool; tagged: drawn white whatever its colour.
    """

    centres: np.ndarray
    radius: float
    shapes: np.ndarray
    colours: np.ndarray
    angles: np.ndarray
    visible: np.ndarray
    tagged: bool = False


@dataclass
class Occluder:
    """A full-height bar drawn in front of every sprite: centres (T,) x in world units, width."""

    centres: np.ndarray
    width: float


@dataclass
class Texture:
    """A still background pattern: RGB offsets (cells, cells, 3) on a grid over the unit box,
    smoothed bilinearly between cell centres and added to the background colour."""

    offsets: np.ndarray

    def image(self, size: int) -> np.ndarray:
        """(size, size, 3) offsets at the pixel centres, in levels."""
        cells = self.offsets.shape[0]
        x, _ = pixel_grid(size)
        at = np.clip(x[0, 0] * cells - 0.5, 0, cells - 1)  # pixel centres in cell units
        low = np.minimum(at.astype(int), cells - 2)
        w = (at - low)[:, None]  # (size, 1) weight of the upper cell
        rows = self.offsets[low] * (1 - w[..., None]) + self.offsets[low + 1] * w[..., None]  # (S, C, 3)
        return rows[:, low] * (1 - w[None]) + rows[:, low + 1] * w[None]  # (S, S, 3)


def random_texture(rng: np.random.Generator, contrast: float, cells: int = 16) -> Texture:
    """Offsets drawn uniformly in [-contrast, contrast] levels per channel and cell."""
    return Texture(rng.uniform(-contrast, contrast, (cells, cells, 3)).astype(np.float32))


@dataclass
class Drawing:
    """Everything drawn in one clip: sprites back to front, then occluders."""

    sprites: list[Sprite]
    occluders: list[Occluder] = field(default_factory=list)
    background: np.ndarray = field(default_factory=lambda: BACKGROUND)
    texture: Texture | None = None


@lru_cache(maxsize=16)
def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """x (1, 1, size) and y (1, size, 1) of the pixel centres in world units (they broadcast)."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    return coords[None, None, :], coords[None, :, None]


def signed_distance(shape: str, centres: np.ndarray, radius: float, angles: np.ndarray, size: int):
    """Distance (T, H, W) in world units from each pixel to the outline (negative inside)."""
    x, y = pixel_grid(size)
    dx = x - centres[:, 0, None, None].astype(np.float32)  # (T, 1, W)
    dy = y - centres[:, 1, None, None].astype(np.float32)  # (T, H, 1)
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - radius
    cos = np.cos(angles).astype(np.float32)[:, None, None]
    sin = np.sin(angles).astype(np.float32)[:, None, None]
    u, v = cos * dx + sin * dy, cos * dy - sin * dx  # pixel offset in the object's own frame
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - SQUARE_HALF_SIDE * radius
    if shape == "triangle":  # equilateral, circumradius = radius, pointing up
        faces = [nx * u + ny * v for nx, ny in TRIANGLE_NORMALS]
        return np.maximum(np.maximum(faces[0], faces[1]), faces[2]) - radius / 2
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def coverage(distance: np.ndarray, size: int) -> np.ndarray:
    return np.clip(0.5 - distance * size, 0.0, 1.0)


def paint(canvas: np.ndarray, alpha: np.ndarray, colours: np.ndarray) -> None:
    """Blend ``colours`` (T, 3) or (3,) into ``canvas`` (T, H, W, 3) where ``alpha`` (T, H, W) says.

    Only the covered pixels are touched (objects cover a few percent of a frame).
    """
    covered = alpha > 0
    colours = np.asarray(colours, dtype=np.float32)
    if colours.ndim == 2:  # one colour per frame
        colours = np.broadcast_to(colours[:, None, None], canvas.shape)[covered]
    below = canvas[covered]
    canvas[covered] = below + alpha[covered][:, None] * (colours - below)


def draw_sprite(canvas: np.ndarray, sprite: Sprite, size: int) -> None:
    shown = sprite.visible.astype(np.float32)[:, None, None]
    for shape_id in np.unique(sprite.shapes):  # a shape may change mid-clip (constancy violations)
        frames = sprite.shapes == shape_id
        distance = signed_distance(SHAPES[shape_id], sprite.centres, sprite.radius, sprite.angles, size)
        alpha = coverage(distance, size) * shown * frames[:, None, None]
        paint(canvas, alpha, TAG if sprite.tagged else sprite.colours)


def draw_occluder(canvas: np.ndarray, occluder: Occluder, size: int) -> None:
    x, _ = pixel_grid(size)
    distance = np.abs(x - occluder.centres.astype(np.float32)[:, None, None]) - occluder.width / 2
    alpha = np.broadcast_to(coverage(distance, size), canvas.shape[:3])  # (T, 1, W) -> (T, H, W)
    paint(canvas, alpha, OCCLUDER)


def render(drawing: Drawing, num_frames: int, size: int) -> np.ndarray:
    """Draw a clip: uint8 (T, size, size, 3)."""
    canvas = np.empty((num_frames, size, size, 3), dtype=np.float32)
    canvas[:] = drawing.background
    if drawing.texture is not None:
        canvas += drawing.texture.image(size)
    for sprite in drawing.sprites:
        draw_sprite(canvas, sprite, size)
    for occluder in drawing.occluders:
        draw_occluder(canvas, occluder, size)
    return np.round(np.clip(canvas, 0, 255)).astype(np.uint8)


def covered_fraction(centre_x: np.ndarray, radius, bar_x: np.ndarray, bar_width: float) -> np.ndarray:
    """Fraction of an object's horizontal extent [x - r, x + r] hidden behind a full-height bar."""
    left = np.maximum(centre_x - radius, bar_x - bar_width / 2)
    right = np.minimum(centre_x + radius, bar_x + bar_width / 2)
    return np.clip(right - left, 0.0, None) / (2 * radius)
