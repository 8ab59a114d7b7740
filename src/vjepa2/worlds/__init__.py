"""Built-in synthetic physical worlds: the default data of every pipeline, made on the spot.

- ``scenes``: procedural physics clips (objects under gravity, bouncing, occluders) with labels for
  three probe tasks that need time (direction, collision, hidden); ``vjepa2 worlds make-videos``.
- ``physics_pairs``: possible / impossible twins for intuitive physics (permanence, continuity,
  shape, colour); ``vjepa2 worlds make-physics-pairs``.
- ``envs``: gymnasium environments ``reach`` and ``push`` (pixels + proprio, goal images, success
  rules, scripted experts); ``pusht``: the gym-pusht adapter; ``collect``: trajectory collection
  (``vjepa2 worlds collect``) in the episode format of ``vjepa2.data.episodes``.
- ``physics``, ``render``, ``sampling``: the simulation, the NumPy renderer and shared scene pieces;
  ``pushing``: the geometry ``push`` and PushT share (angle errors, the scripted pusher's waypoint).
"""

from vjepa2.worlds.envs import PushEnv, ReachEnv, make_env
from vjepa2.worlds.physics_pairs import VIOLATIONS, sample_pair
from vjepa2.worlds.scenes import TASKS, chance_level, make_clip, sample_scene

__all__ = [
    "PushEnv",
    "ReachEnv",
    "make_env",
    "VIOLATIONS",
    "sample_pair",
    "TASKS",
    "chance_level",
    "make_clip",
    "sample_scene",
]
