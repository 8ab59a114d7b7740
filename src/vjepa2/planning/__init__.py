"""Goal-image planning with the V-JEPA 2-AC world model.

    from vjepa2.planning import Planner, PlannerConfig
    planner = Planner("runs/ac-reach/model")            # written by `vjepa2 train-ac`
    action = planner.act(observation, goal_image, state)  # uint8 (H, W, 3) images -> (A,) action

- ``cem``: the cross-entropy method (and iCEM options), action bounds (box or L1 ball), the
  latent L1 energy;
- ``WorldModel`` (``models.world_model``): frozen encoder + AC predictor, batched rollouts;
  ``load_world_model`` reads the folder ``vjepa2 train-ac`` writes;
- ``mpc``: the ``Planner`` (receding horizon with warm starts, sub-goal sequences);
- ``subgoals``: sub-goals proposed from a graph of training frames (only the final goal needed);
- ``oracle``: CEM + MPC on the true simulator (the upper-bound baseline);
- ``evaluate``: ``vjepa2 plan-eval`` with the random and simulator-oracle baselines;
- ``drive``: ``vjepa2 plan``, one planning step for a robot loop, as JSON.
"""

from vjepa2.checkpoints.world_models import load_world_model, save_world_model
from vjepa2.models.world_model import LatentStats, WorldModel, WorldModelSpec
from vjepa2.planning.cem import CEMConfig, CEMResult, cem, latent_energy, project_l1_ball
from vjepa2.planning.mpc import GoalSchedule, MPCConfig, Planner, PlannerConfig, RecedingHorizon

__all__ = [
    "CEMConfig",
    "CEMResult",
    "cem",
    "latent_energy",
    "project_l1_ball",
    "GoalSchedule",
    "MPCConfig",
    "RecedingHorizon",
    "Planner",
    "PlannerConfig",
    "LatentStats",
    "WorldModel",
    "WorldModelSpec",
    "load_world_model",
    "save_world_model",
]
