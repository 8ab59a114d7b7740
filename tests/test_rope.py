"""The RoPE layout: tiled frequencies (the released weights' quirk) versus interleaved."""

import math

import torch

from vjepa2.models.rope import RoPE3D, apply_rope, grid_coords, segment_width, token_coords


def rotate_by_hand(x, coords, head_dim, interleaved):
    """Channel by channel, straight from the description in vjepa2-system.md."""
    d = segment_width(head_dim)
    out = x.clone()
    for n in range(x.shape[0]):
        for axis in range(3):
            for pair in range(d // 2):
                c0, c1 = axis * d + 2 * pair, axis * d + 2 * pair + 1
                for c, sign_src in ((c0, -x[n, c1]), (c1, x[n, c0])):
                    j = c - axis * d
                    freq_i = j // 2 if interleaved else j % (d // 2)
                    angle = coords[n, axis].item() / 10000 ** (freq_i / (d / 2))
                    out[n, c] = x[n, c] * math.cos(angle) + sign_src * math.sin(angle)
    return out


def test_segments():
    assert [segment_width(h) for h in (64, 80, 32)] == [20, 26, 10]


def test_tiled_and_interleaved_match_hand_rotation():
    torch.manual_seed(0)
    x = torch.randn(6, 64, dtype=torch.float64)
    coords = token_coords(torch.tensor([0, 5, 17, 30, 41, 63]), (4, 4, 4))
    for interleaved in (False, True):
        rope = RoPE3D(64, interleaved=interleaved)
        cos, sin = rope.tables(coords)
        got = apply_rope(x, cos.double(), sin.double())
        want = rotate_by_hand(x, coords, 64, interleaved)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
        assert torch.equal(got[:, 60:], x[:, 60:])  # the 4 leftover channels are not rotated


def test_quirk_differs_from_interleaved():
    x = torch.randn(8, 64)
    coords = grid_coords((2, 2, 2))
    a = apply_rope(x, *RoPE3D(64, interleaved=False).tables(coords))
    b = apply_rope(x, *RoPE3D(64, interleaved=True).tables(coords))
    assert (a - b).abs().max() > 1e-2


def test_relative_positions():
    """RoPE scores depend only on the offset between positions (per axis)."""
    rope = RoPE3D(64, interleaved=True)
    q, k = torch.randn(64), torch.randn(64)

    def score(pq, pk):
        cq, sq = rope.tables(torch.tensor([pq], dtype=torch.float32))
        ck, sk = rope.tables(torch.tensor([pk], dtype=torch.float32))
        return (apply_rope(q[None], cq, sq) * apply_rope(k[None], ck, sk)).sum()

    torch.testing.assert_close(score([1, 2, 3], [0, 0, 1]), score([4, 5, 6], [3, 3, 4]), atol=1e-4, rtol=0)


def test_token_coords_non_square():
    coords = token_coords(torch.arange(30), (2, 3, 5))
    assert coords[7].tolist() == [0, 1, 2] and coords[29].tolist() == [1, 2, 4]
