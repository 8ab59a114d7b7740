"""The tubelet embedding (``models/encoder.tubelet_embed``): the Conv3d of the checkpoints, run as
the one matrix product it is."""

import pytest
import torch

from vjepa2.models.encoder import tubelet_embed


@pytest.mark.parametrize("kernel, shape", [((2, 16, 16), (2, 6, 3, 40, 56)), ((1, 8, 8), (1, 1, 3, 24, 20))])
def test_tubelet_embedding_is_the_convolution(kernel, shape):
    """Same tokens as the Conv3d, in (t, h, w) order; pixels past the last whole patch dropped as
    the convolution drops them."""
    torch.manual_seed(0)
    proj = torch.nn.Conv3d(3, 24, kernel, stride=kernel)
    clips = torch.randn(shape)
    with torch.no_grad():
        conv = proj(clips.transpose(1, 2))  # (B, dim, t, h, w)
        tokens, grid = tubelet_embed(clips, proj)
    assert grid == tuple(conv.shape[2:])
    torch.testing.assert_close(tokens, conv.flatten(2).transpose(1, 2), atol=1e-5, rtol=1e-5)


def test_gradients_reach_the_convolution_weights():
    torch.manual_seed(0)
    proj = torch.nn.Conv3d(3, 8, (2, 4, 4), stride=(2, 4, 4))
    clips = torch.randn(1, 4, 3, 8, 8)
    tubelet_embed(clips, proj)[0].square().sum().backward()
    ours = proj.weight.grad.clone()
    proj.weight.grad = None
    proj(clips.transpose(1, 2)).square().sum().backward()
    torch.testing.assert_close(ours, proj.weight.grad, atol=1e-5, rtol=1e-5)
