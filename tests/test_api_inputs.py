"""The public API refuses what it cannot read with a ValueError naming the expected shape, before
any work: never a silent wrong result (an index past the last token, a NaN plan, a float frame)."""

import math

import numpy as np
import pytest
import torch

import vjepa2
from vjepa2.models.world_model import WorldModel


@pytest.fixture(scope="module")
def model():
    return vjepa2.load("random:tiny")


CLIP = (1, 4, 3, 32, 32)  # tiny: patch 16, tubelet 2 -> grid (2, 2, 2), 8 tokens


@pytest.mark.parametrize(
    "clips, match",
    [
        (np.zeros(CLIP, np.float32), r"got ndarray"),
        (torch.zeros(1, 4, 32, 32, 3), r"got 32 channels .*channels last"),
        (torch.zeros(1, 4, 3, 8, 8), r"smaller than a patch \(16\)"),
        (torch.zeros(0, 4, 3, 32, 32), r"empty batch"),
        (torch.zeros(CLIP, dtype=torch.uint8), r"dtype torch.uint8"),
        (torch.zeros(4, 32, 32), r"got shape \(4, 32, 32\)"),
    ],
)
def test_encode_refuses_clips_it_cannot_read(model, clips, match):
    with pytest.raises(ValueError, match=r"expected clips \(B, T, C=3, H, W\).*" + match):
        model.encode(clips)


def test_encode_refuses_blocks_it_does_not_have(model):
    depth = len(model.encoder.blocks)
    with pytest.raises(ValueError, match=rf"out_layers \[99\]: this encoder has {depth} blocks"):
        model.encode(torch.zeros(CLIP), out_layers=[99])
    assert len(model.encode(torch.zeros(CLIP), out_layers=[-1, 0])) == 2


@pytest.mark.parametrize(
    "context, target, match",
    [
        ([[0, 1, 2]], [[5, 8]], r"target_idx: indices 5..8 outside the clip's tokens 0..7"),
        ([[0, 1, 2]], [[-1, 4]], r"target_idx: indices -1..4 outside"),
        (torch.zeros(1, 0, dtype=torch.long), [[4, 5]], r"context_idx: empty"),
        ([[0.0, 1.0]], [[4, 5]], r"context_idx: expected a \(B, K\) tensor of token indices"),
        ([[0, 1], [2, 3]], [[4, 5], [6, 7]], r"context_idx: 2 rows for a batch of 1"),
    ],
)
def test_predict_refuses_indices_outside_the_clip(model, context, target, match):
    tokens = model.encode(torch.zeros(CLIP))
    context = context if isinstance(context, torch.Tensor) else torch.tensor(context)
    with pytest.raises(ValueError, match=match):
        model.predict(tokens, context, torch.tensor(target))


def test_predict_refuses_half_precision_tokens(model):
    tokens = model.encode(torch.zeros(CLIP))
    with pytest.raises(ValueError, match=r"tokens in float32 or bfloat16; got torch.float16"):
        model.predict(tokens.half(), torch.tensor([[0, 1]]), torch.tensor([[4]]))
    assert model.predict(tokens, torch.tensor([[0, 1]]), torch.tensor([[4]])).shape[:2] == (1, 1)


@pytest.fixture(scope="module")
def planner():
    from vjepa2.models.ac_predictor import ACPredictor, ACPredictorConfig
    from vjepa2.models.world_model import WorldModelSpec
    from vjepa2.planning.mpc import Planner, PlannerConfig

    encoder = vjepa2.load("random:tiny").encoder
    predictor = ACPredictor(
        ACPredictorConfig(enc_dim=192, dim=32, depth=1, heads=1, action_dim=2, state_dim=3)
    )
    world = WorldModel(encoder, predictor, WorldModelSpec(crop=32))
    cfg = PlannerConfig()
    cfg.cem.samples, cfg.cem.iterations, cfg.cem.elites = 8, 1, 2
    return Planner(world, cfg)


FRAME = np.zeros((32, 32, 3), np.uint8)


@pytest.mark.parametrize(
    "observation, state, match",
    [
        (FRAME.astype(np.float32) / 255, None, r"observation: expected one uint8 frame \(H, W, 3\)"),
        (np.stack([FRAME, FRAME]), None, r"observation: expected one uint8 frame .* \(2, 32, 32, 3\)"),
        (FRAME, [1.0, 2.0], r"state: expected \(3,\) values; got shape \(2,\)"),
        (FRAME, [1.0, math.nan, 0.0], r"state: expected finite values"),
    ],
)
def test_planner_refuses_what_it_cannot_plan_from(planner, observation, state, match):
    with pytest.raises(ValueError, match=match):
        planner.act(observation, FRAME, state)


def test_planner_refuses_a_nan_plan_instead_of_acting(planner, monkeypatch):
    energy = planner.energy_fn
    monkeypatch.setattr(planner, "energy_fn", lambda *a: lambda x: energy(*a)(x) * math.nan)
    planner.reset()
    with pytest.raises(ValueError, match=r"the plan's energy is nan: no action comes out of it"):
        planner.act(FRAME, FRAME, [0.0, 0.0, 0.0])


def test_world_model_refuses_wrong_action_and_state_widths(planner):
    world = planner.model
    latent = world.encode(FRAME)[0]
    with pytest.raises(
        ValueError, match=r"actions: expected \(B, H, A\) with 2 values last; got \(4, 1, 3\)"
    ):
        world.rollout(latent, torch.zeros(3), torch.zeros(4, 1, 3))
    with pytest.raises(ValueError, match=r"state: expected \(S,\) or \(B, S\) with 3 values last"):
        world.rollout(latent, torch.zeros(2), torch.zeros(4, 1, 2))
    with pytest.raises(ValueError, match=r"actions: expected .* got \(0, 1, 2\)"):
        world.rollout(latent, torch.zeros(3), torch.zeros(0, 1, 2))
