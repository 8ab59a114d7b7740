"""The geometry of pushing, shared by the ``push`` world (``envs``) and the PushT adapter
(``pusht``): how far apart two angles are, and where a scripted pusher heads next.

Angles in radians; lengths in the caller's units (world units for push, board pixels for PushT).
"""

from __future__ import annotations

import numpy as np


def angle_error(a, b, period: float = 2 * np.pi):
    """Smallest absolute difference of two angles that repeat every ``period`` radians."""
    d = np.mod(np.asarray(a) - np.asarray(b), period)
    return np.minimum(d, period - d)


def push_waypoint(agent, block, target, standoff: float, detour: float) -> np.ndarray:
    """Where a pusher should head to move ``block`` towards ``target`` (any units).

    Behind the block (seen from the target) at ``standoff`` from its centre; once there, through
    the block towards the target. While getting behind it, go around: aim ``detour`` to the side.
    """
    heading = target - block
    heading = heading / max(np.linalg.norm(heading), 1e-9)
    behind = block - standoff * heading
    to_agent = agent - block
    aligned = np.dot(to_agent, -heading) > 0.9 * np.linalg.norm(to_agent)
    if aligned and np.linalg.norm(agent - behind) < 0.5 * standoff:
        return target  # in position: push through the block
    if np.dot(to_agent, heading) > -0.3 * standoff:  # on the wrong side: walk around the block
        side = np.array([-heading[1], heading[0]])
        side = side if np.dot(to_agent, side) >= 0 else -side
        return block + detour * side - 0.5 * standoff * heading
    return behind
