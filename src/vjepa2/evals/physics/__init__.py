"""Intuitive physics from surprise: is the predictor more surprised by an impossible video than by
its possible twin?

- ``surprise``: sliding windows, past-to-future prediction, the surprise curve; the pixel baseline;
- ``official``: the jepa-intuitive-physics metrics, exactly, under their official names;
- ``metrics``: this project's own (ties half, clipped threshold, impossible-positive AP), with
  bootstrap intervals;
- ``readers``: synthetic pairs, IntPhys 2 (``intphys2``: the release and its per-video accuracy),
  IntPhys dev, a plain CSV; ``videos``: ``PhysicsVideo``;
- ``summary``: what ``physics-eval`` reports (official first) and prints;
- ``plots``: the figures of ``vjepa2 physics-eval`` (``evals.commands.physics_eval``).
"""

from vjepa2.evals.physics.metrics import score_pairs
from vjepa2.evals.physics.readers import PhysicsVideo, read_pairs
from vjepa2.evals.physics.surprise import Windows, surprise_curves

__all__ = ["PhysicsVideo", "Windows", "read_pairs", "score_pairs", "surprise_curves"]
