"""Planning with a world model: batched rollouts, the Planner (CEM + MPC, sub-goals), plan-eval."""

import json

import numpy as np
import pytest
import torch

from vjepa2.checkpoints.world_models import SPEC_FILE, load_world_model, save_world_model
from vjepa2.cli import main
from vjepa2.data.trajectories import NormStats
from vjepa2.errors import MissingPathError, UserError
from vjepa2.models.ac_predictor import ACPredictor, ACPredictorConfig
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.presets import encoder_config
from vjepa2.models.world_model import LatentStats, WorldModel, WorldModelSpec
from vjepa2.planning.cem import CEMConfig
from vjepa2.planning.mpc import GoalSchedule, Planner, PlannerConfig


def _world_model(state_update="hold") -> WorldModel:
    torch.manual_seed(0)
    encoder = VideoEncoder(encoder_config("tiny", depth=1))
    predictor = ACPredictor(
        ACPredictorConfig(enc_dim=192, dim=32, depth=1, heads=1, action_dim=2, state_dim=2)
    )
    stats = NormStats([0.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.3, 0.3])
    spec = WorldModelSpec(crop=32, state_update=state_update, action_scale=0.1, stats=stats)
    return WorldModel(encoder, predictor, spec)


def _frames(n, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("state_update", ["hold", "add"])
def test_batched_rollout_equals_one_by_one(state_update):
    model = _world_model(state_update)
    latent = model.encode(_frames(1))[0]
    assert latent.shape == (4, 192)  # 32 px with patch 16: 2 x 2 tokens
    state = torch.tensor([0.2, 0.7])
    actions = torch.randn(5, 3, 2)
    batched = model.rollout(latent, state, actions)
    assert batched.shape == (5, 3, 4, 192)
    single = torch.cat([model.rollout(latent, state, actions[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)


def test_planner_scores_all_samples_in_one_call_per_step():
    model = _world_model()
    batches = []
    model.predictor.register_forward_hook(lambda mod, args, out: batches.append(args[0].shape[0]))
    cem = CEMConfig(samples=24, iterations=3, elites=4, horizon=2, bound="l1", radius=0.5)
    planner = Planner(model, PlannerConfig(cem=cem, execute=1))
    frames = _frames(2)
    action = planner.act(frames[0], frames[1], state=np.array([0.5, 0.5]))
    assert action.shape == (2,) and action.dtype == np.float32
    assert np.abs(action).sum() <= 0.5 + 1e-5
    # horizon 2: two predictor calls per iteration with every sample, then two for the final mean
    assert batches == [24, 24] * 3 + [1, 1]
    assert len(planner.last.history) == 3


def test_receding_horizon_and_goal_cache():
    model = _world_model()
    calls = []
    planner = Planner(
        model, PlannerConfig(cem=CEMConfig(samples=8, iterations=1, elites=2, horizon=3), execute=2)
    )
    original = planner.plan
    planner.plan = lambda *a, **k: calls.append(1) or original(*a, **k)
    frames = _frames(3)
    for _ in range(4):
        planner.act(frames[0], frames[1])
    assert len(calls) == 2  # replans every 2 actions
    planner.act(frames[0], frames[2])  # a new goal drops the queued plan
    assert len(calls) == 3
    with pytest.raises(ValueError, match="execute"):
        Planner(model, PlannerConfig(cem=CEMConfig(horizon=1), execute=2))


def test_goal_schedule_and_subgoals():
    schedule = GoalSchedule([("a", 2), ("b", 1), ("c", 5)])
    assert [schedule.next() for _ in range(6)] == ["a", "a", "b", "c", "c", "c"]
    planner = Planner(_world_model(), PlannerConfig(cem=CEMConfig(samples=8, iterations=1, elites=2)))
    frames = _frames(3)
    planner.set_goals([(frames[1], 1), (frames[2], 3)])
    planner.act(frames[0])
    first = planner._goal_key
    planner.act(frames[0])
    assert planner._goal_key != first  # moved on to the second goal image
    with pytest.raises(ValueError, match="goal"):
        Planner(_world_model()).act(frames[0])


def test_world_model_folder_round_trip_and_its_errors(tmp_path):
    model = _world_model("add")
    model.spec.standardize = True
    stats = LatentStats.compute(torch.randn(8, model.tokens_per_frame, 192))
    save_world_model(tmp_path / "wm", model.encoder, model.predictor, model.spec, stats)
    back = load_world_model(tmp_path / "wm")
    assert back.spec == model.spec and torch.equal(back.latent_stats.std, stats.std)
    frames = _frames(2)
    standardized = LatentStats.apply(stats, model.encode(frames))
    torch.testing.assert_close(back.encode(frames), standardized)
    (tmp_path / "wm" / "latent_stats.safetensors").unlink()
    with pytest.raises(MissingPathError, match="latent_stats.safetensors: missing"):
        load_world_model(tmp_path / "wm")
    spec = json.loads((tmp_path / "wm" / SPEC_FILE).read_text())
    (tmp_path / "wm" / SPEC_FILE).write_text(json.dumps({**spec, "horizon": 3}))
    with pytest.raises(UserError, match="world_model.json: unexpected fields"):
        load_world_model(tmp_path / "wm")
    (tmp_path / "wm" / SPEC_FILE).unlink()
    with pytest.raises(MissingPathError, match="written by `vjepa2 train-ac`"):
        load_world_model(tmp_path / "wm")


def test_plan_eval_reach_end_to_end(tmp_path):
    model = _world_model()
    model.spec.crop = 64  # the reach env renders 64 px frames
    save_world_model(tmp_path / "model", model.encoder, model.predictor, model.spec)
    out = tmp_path / "eval"
    args = [
        "plan-eval",
        "--env",
        "reach",
        "--episodes",
        "2",
        "--max-steps",
        "25",
        "--model",
        str(tmp_path / "model"),
    ]
    args += ["--planner.cem.samples", "16", "--planner.cem.iterations", "2", "--planner.cem.elites", "4"]
    args += ["--planner.cem.bound", "box", "--landscape", "5", "--strips", "1", "--out", str(out)]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    methods = results["methods"]
    assert set(methods) == {"world_model", "random", "oracle"}
    # CEM on the true simulator reaches every goal; random actions do worse
    assert methods["oracle"]["success_rate"] == 1.0
    assert methods["random"]["final_distance"] > methods["oracle"]["final_distance"]
    assert methods["world_model"]["time_per_action_s"] > 0
    for name in ("strip_world_model.png", "strip_oracle.png", "energy_landscape.png"):
        assert (out / name).stat().st_size > 1000
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 6
