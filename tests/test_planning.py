"""Planning with a world model: batched rollouts, the Planner (CEM + MPC, sub-goals), plan-eval."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vjepa2.checkpoints.world_models import SPEC_FILE, load_world_model, save_world_model
from vjepa2.cli import main
from vjepa2.data.trajectories import NormStats
from vjepa2.errors import MissingPathError, UserError
from vjepa2.models.ac_predictor import ACPredictor, ACPredictorConfig
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.presets import encoder_config
from vjepa2.models.world_model import LatentStats, WorldModel, WorldModelSpec
from vjepa2.planning.cem import CEMConfig, cem
from vjepa2.planning.evaluate import EpisodeSpec, run_episode
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


@pytest.mark.parametrize("standardize", [False, True])
def test_kv_cached_rollout_equals_the_whole_history_each_step(standardize):
    model = _world_model("add")
    model.predictor = ACPredictor(
        ACPredictorConfig(enc_dim=192, dim=32, depth=2, heads=2, action_dim=2, state_dim=2)
    ).eval()
    if standardize:
        model.spec.standardize = True
        model.latent_stats = LatentStats.compute(model.encode(_frames(4)))
    latent = model.encode(_frames(1))[0]
    state, actions = torch.tensor([0.2, 0.7]), torch.randn(3, 4, 2)
    cached = model.rollout(latent, state, actions)
    latents, states = latent.expand(3, *latent.shape)[:, None], state.expand(3, 2)[:, None]
    for h in range(4):  # the whole history through the predictor at every step, no cache
        pred = model.step(latents, actions[:, : h + 1], states)
        latents = torch.cat([latents, pred[:, None]], dim=1)
        states = torch.cat([states, model.next_state(states[:, -1], actions[:, h])[:, None]], dim=1)
    torch.testing.assert_close(cached, latents[:, 1:], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="one step at a time"):
        from vjepa2.models.ac_predictor import KVCache

        tokens = latents[:, :2].flatten(1, 2)
        model.predictor(tokens, actions[:, :2], states[:, :2], grid_hw=model.grid_hw, cache=KVCache())


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
    for name in (
        "strip_world_model.png",
        "strip_oracle.png",
        "energy_landscape.png",
        "strip_world_model.gif",
    ):
        assert (out / name).stat().st_size > 1000
    with Image.open(out / "strip_world_model.gif") as gif:  # animated: one picture per step
        assert gif.n_frames > 1 and gif.width > gif.height  # the goal beside the observation
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 6


def test_mpc_warm_start_seeds_the_next_search_with_the_shifted_plan(monkeypatch):
    import vjepa2.planning.mpc as mpc

    seeds, plans = [], []

    def recording_cem(energy, action_dim, cfg, init_mean=None, *args, **kw):
        seeds.append(None if init_mean is None else init_mean.clone())
        result = cem(energy, action_dim, cfg, init_mean, *args, **kw)
        plans.append(result.actions.clone())
        return result

    monkeypatch.setattr(mpc, "cem", recording_cem)
    cfg = CEMConfig(samples=16, iterations=2, elites=4, horizon=4, bound="box")
    planner = Planner(_world_model(), PlannerConfig(cem=cfg, execute=3))
    frames = _frames(2)
    played = [planner.act(frames[0], frames[1]) for _ in range(6)]
    assert len(seeds) == 2 and seeds[0] is None  # the first search starts from the prior
    # the second starts from the last (unplayed) step of the first plan, then the prior's zeros
    torch.testing.assert_close(seeds[1], torch.cat([plans[0][3:], torch.zeros(3, 2)]))
    np.testing.assert_allclose(np.stack(played[:3]), plans[0][:3].numpy())
    np.testing.assert_allclose(np.stack(played[3:]), plans[1][:3].numpy())
    planner.cfg.warm_start = False
    planner.act(frames[0], frames[1])
    assert seeds[2] is None


def test_goal_schedule_moves_on_when_a_subgoal_is_reached():
    schedule = GoalSchedule([("a", 10), ("b", 10), ("c", 10)])
    assert schedule.next() == "a" and schedule.next(reached=False) == "a"
    assert schedule.next(reached=True) == "b" and schedule.current == "b"
    assert schedule.next(reached=True) == "c"
    assert schedule.next(reached=True) == "c"  # the last goal stays
    # the planner: a sub-goal image equal to the observation is reached at once
    cem_cfg = CEMConfig(samples=8, iterations=1, elites=2)
    planner = Planner(_world_model(), PlannerConfig(cem=cem_cfg, subgoal_tolerance=1e-3))
    frames = _frames(3)
    planner.set_goals([(frames[0], 50), (frames[2], 50)])
    planner.act(frames[0])
    assert planner.schedule.index == 0  # pursued for one step first
    planner.act(frames[0])
    assert planner.schedule.index == 1
    planner.act(frames[1])
    assert planner.schedule.index == 1


def test_checking_a_subgoal_and_planning_encode_the_observation_once():
    cem_cfg = CEMConfig(samples=8, iterations=1, elites=2)
    planner = Planner(_world_model(), PlannerConfig(cem=cem_cfg, subgoal_tolerance=1e-3))
    frames = _frames(3)
    planner.set_goals([(frames[2], 50)])
    encoded = []
    encode = planner.model.encode
    planner.model.encode = lambda images: encoded.append(len(images)) or encode(images)
    planner.act(frames[0])  # the goal once, the observation once (for the check and the plan)
    planner.act(frames[1])  # a new observation: once more
    assert len(encoded) == 3


def test_oracle_solves_a_small_push_case():
    from vjepa2.planning.oracle import OracleConfig, OraclePolicy
    from vjepa2.worlds.envs import PushEnv

    env = PushEnv(size=16, max_steps=40)
    # the agent starts on the wrong side of the block (it must walk round it); the goal: the
    # block 0.15 to the right (towards the agent's start), turned by 0.1 rad
    start, goal = np.array([0.8, 0.5, 0.45, 0.5, 0.0]), np.array([0.5, 0.3, 0.6, 0.5, 0.1])
    spec = EpisodeSpec(seed=0, start=start, goals=[(goal, 40)])
    row = run_episode(env, OraclePolicy(OracleConfig()), spec, keep_frames=False)  # push's settings
    assert row["success"] and row["steps"] < 40
    # one greedy step at a time sees a flat energy until the agent touches the block: it fails
    greedy = OracleConfig(cem=CEMConfig(samples=200, iterations=5, elites=10, horizon=1, bound="box"))
    greedy.execute, greedy.contact = 1, 0.0
    assert not run_episode(env, OraclePolicy(greedy), spec, keep_frames=False)["success"]


def test_plan_command_prints_the_next_actions_as_json(tmp_path, capsys):
    from PIL import Image

    model = _world_model()
    save_world_model(tmp_path / "model", model.encoder, model.predictor, model.spec)
    frames = _frames(2)
    for name, frame in zip(("obs.png", "goal.png"), frames):
        Image.fromarray(frame).save(tmp_path / name)
    args = ["plan", "--model", str(tmp_path / "model"), "--observation", str(tmp_path / "obs.png")]
    args += ["--goal", str(tmp_path / "goal.png"), "--state", "0.4,0.6", "--planner.cem.samples", "16"]
    args += ["--planner.cem.iterations", "2", "--planner.cem.elites", "4", "--planner.cem.horizon", "3"]
    args += ["--planner.cem.radius", "0.5", "--planner.execute", "2", "--out", str(tmp_path / "plan.json")]
    capsys.readouterr()
    assert main(args) == 0
    printed = capsys.readouterr().out
    answer = json.loads(printed)
    assert json.loads((tmp_path / "plan.json").read_text()) == answer
    assert (answer["horizon"], answer["action_dim"]) == (3, 2)
    plan = np.array(answer["plan"])
    assert plan.shape == (3, 2) and np.abs(plan).sum(-1).max() <= 0.5 + 1e-5  # the L1 ball
    np.testing.assert_allclose(answer["actions"], plan[:2], atol=1e-6)  # execute 2: play these
    np.testing.assert_allclose(answer["warm_start"], [plan[2], [0, 0], [0, 0]], atol=1e-6)
    assert answer["energy"] >= 0 and len(answer["energy_history"]) == 2
    # the next call warm-starts from it; mistakes are one-line user errors (exit 2)
    assert main([*args, "--previous", str(tmp_path / "plan.json")]) == 0
    assert main([*args[:-2], "--previous", str(tmp_path / "plan.json"), "--planner.cem.horizon", "4"]) == 2
    assert "warm_start is (3, 2)" in capsys.readouterr().err
    assert main([*args, "--state", "0.1,0.2,0.3"]) == 2
    assert "takes 2 values, got 3" in capsys.readouterr().err
    assert main([*args, "--goal", str(tmp_path / "none.png")]) == 2
