"""Block-causal attention of the AC predictor: the prediction at step k never sees step k + 1."""

import pytest
import torch

from vjepa2.models.ac_predictor import ACPredictor, ACPredictorConfig, block_causal_mask

H, W, T = 2, 3, 4  # tokens per frame h x w, steps


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    cfg = ACPredictorConfig(enc_dim=16, dim=32, depth=2, heads=2, action_dim=3, state_dim=5)
    return ACPredictor(cfg).eval()


def _inputs(seed=0):
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randn(2, T * H * W, 16, generator=gen)
    actions = torch.randn(2, T, 3, generator=gen)
    states = torch.randn(2, T, 5, generator=gen)
    return frames, actions, states


def test_mask_shape_and_blocks():
    mask = block_causal_mask(3, 2)
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(mask, expected)


@pytest.mark.parametrize("k", [0, 1, 2])
@pytest.mark.parametrize("what", ["frames", "actions", "states"])
def test_future_step_does_not_change_past_predictions(predictor, k, what):
    frames, actions, states = _inputs()
    with torch.no_grad():
        before = predictor(frames, actions, states, grid_hw=(H, W)).view(2, T, H * W, -1)
        frames2, actions2, states2 = frames.clone(), actions.clone(), states.clone()
        if what == "frames":
            frames2.view(2, T, H * W, -1)[:, k + 1] += 30.0
        elif what == "actions":
            actions2[:, k + 1] += 30.0
        else:
            states2[:, k + 1] += 30.0
        after = predictor(frames2, actions2, states2, grid_hw=(H, W)).view(2, T, H * W, -1)
    # steps <= k are untouched (up to float rounding of the fused attention kernel) ...
    torch.testing.assert_close(after[:, : k + 1], before[:, : k + 1], atol=1e-5, rtol=0)
    # ... and the changed step itself moves, so the test would notice a mask that hid everything
    assert (after[:, k + 1] - before[:, k + 1]).abs().max() > 1e-3


def test_prefix_run_equals_full_run(predictor):
    # Predicting from the first k + 1 steps alone gives the same predictions as the full sequence.
    frames, actions, states = _inputs(1)
    tokens_per_frame = H * W
    with torch.no_grad():
        full = predictor(frames, actions, states, grid_hw=(H, W))
        prefix = predictor(frames[:, : 2 * tokens_per_frame], actions[:, :2], states[:, :2], grid_hw=(H, W))
    torch.testing.assert_close(prefix, full[:, : 2 * tokens_per_frame], atol=1e-5, rtol=0)
