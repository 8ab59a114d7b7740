"""Self-proposed sub-goals: a graph of training frames links episodes where they look alike."""

import numpy as np
import torch

from vjepa2.planning.subgoals import SubgoalConfig, SubgoalGraph


class _Model:
    """encode(frames) -> the 2-D point each frame's pixel value indexes, as (N, 1, 2) latents."""

    def __init__(self, points):
        self.points = points

    def encode(self, frames):
        return self.points[torch.as_tensor(np.asarray(frames)[:, 0, 0, 0], dtype=torch.long)][:, None]


def _two_episodes():
    # episode 0 walks right along y = 0, episode 1 walks up along x = 10: they meet near (10, 0)
    a = [(float(x), 0.0) for x in range(11)]
    b = [(10.3, float(y)) for y in range(11)]
    points = torch.tensor(a + b)
    frames = np.arange(len(points), dtype=np.uint8)[:, None, None, None].repeat(3, -1)
    episode = np.array([0] * 11 + [1] * 11)
    return points, frames, episode


def test_the_path_follows_one_episode_then_jumps_to_another_where_they_look_alike():
    points, frames, episode = _two_episodes()
    cfg = SubgoalConfig(neighbours=2, spacing=5, budget=7, jump_cost=1.0)
    graph = SubgoalGraph(frames, points, episode, cfg)
    graph.project = lambda latents: latents.flatten(1)
    assert graph.nearest(torch.tensor([0.2, 0.1])) == 0 and graph.nearest(torch.tensor([10.2, 9.8])) == 21
    path = graph.path(0, 21)
    assert path[:11] == list(range(11)) and path[-1] == 21 and path[11] == 11  # (10, 0) -> (10.3, 0)
    assert path == sorted(path) and len(path) == 22
    goal = frames[21]
    proposed = graph.propose(_Model(points), frames[0], goal, final_budget=30)
    images = [int(image[0, 0, 0]) for image, _ in proposed]
    assert images == [5, 10, 15, 20, 21] and [b for _, b in proposed] == [7, 7, 7, 7, 30]


def test_unreachable_goal_gives_the_goal_alone():
    points, frames, episode = _two_episodes()
    graph = SubgoalGraph(frames, points, episode, SubgoalConfig(neighbours=0))
    graph.project = lambda latents: latents.flatten(1)
    assert graph.path(0, 21) == [0]
    proposed = graph.propose(_Model(points), frames[0], frames[21], final_budget=9)
    assert len(proposed) == 1 and proposed[0][1] == 9


def test_plan_eval_proposes_subgoals_from_collected_episodes(tmp_path):
    import json

    from test_planning import _world_model

    from vjepa2.checkpoints.world_models import save_world_model
    from vjepa2.cli import main

    data = tmp_path / "push"
    collect = ["worlds", "collect", "--env", "push", "--episodes", "3", "--steps", "8", "--size", "32"]
    assert main([*collect, "--lossless", "true", "--out", str(data)]) == 0
    model = _world_model()
    save_world_model(tmp_path / "model", model.encoder, model.predictor, model.spec)
    args = ["plan-eval", "--env", "push", "--size", "32", "--model", str(tmp_path / "model")]
    args += ["--methods", "world_model", "--episodes", "2", "--max_steps", "5", "--goal", "expert:6"]
    args += [
        "--propose_subgoals",
        "true",
        "--subgoal_graph.sources",
        str(data),
        "--subgoal_graph.spacing",
        "2",
    ]
    args += ["--planner.cem.samples", "8", "--planner.cem.iterations", "1", "--planner.cem.elites", "2"]
    args += ["--landscape", "0", "--strips", "0", "--out", str(tmp_path / "eval")]
    assert main(args) == 0
    result = json.loads((tmp_path / "eval" / "results.json").read_text())["methods"]["world_model"]
    assert result["episodes"] == 2 and result["proposed_subgoals"] >= 0
