"""Intuitive physics from surprise: is the predictor more surprised by an impossible video than by
its possible twin?

- ``surprise``: sliding windows, past-to-future prediction, the surprise curve; the pixel baseline;
- ``metrics``: relative and absolute accuracy, AUROC, AUPRC, bootstrap intervals;
- ``readers``: synthetic pairs, IntPhys 2, IntPhys dev, a plain CSV;
- ``plots``: the figures of ``vjepa2 physics-eval`` (``evals.commands.physics_eval``).
"""

from vjepa2.evals.physics.metrics import score_pairs
from vjepa2.evals.physics.readers import PhysicsVideo, read_pairs
from vjepa2.evals.physics.surprise import Windows, surprise_curves

__all__ = ["PhysicsVideo", "Windows", "read_pairs", "score_pairs", "surprise_curves"]
