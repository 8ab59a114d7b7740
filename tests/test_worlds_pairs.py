"""Intuitive-physics twins: identical until the target comes out from behind the bar."""

import json

import numpy as np
import pytest

from vjepa2.cli import main
from vjepa2.data.video import decode_frames
from vjepa2.worlds.physics_pairs import VIOLATIONS, sample_pair
from vjepa2.worlds.sampling import SceneConfig


@pytest.mark.parametrize("violation", VIOLATIONS)
def test_twins_are_identical_until_the_reveal(violation):
    for index in range(3):
        pair = sample_pair(0, index, violation, 48, SceneConfig())
        start, reveal = pair.info["violation_frame"], pair.info["reveal_frame"]
        assert 0 < start <= reveal < len(pair.possible)
        assert np.array_equal(pair.possible[:reveal], pair.impossible[:reveal])
        assert not np.array_equal(pair.possible[reveal], pair.impossible[reveal])
        assert not np.array_equal(pair.possible[-1], pair.impossible[-1])  # the break stays visible


@pytest.mark.parametrize("violation", VIOLATIONS)
def test_quadruplets_balance_content(violation):
    # Each impossible video is a possible one until the target hides and the other one after:
    # the same frames are shown on both sides, only their order around the hiding differs.
    pair = sample_pair(1, 0, violation, 48, SceneConfig())
    start, mirror_reveal = pair.info["violation_frame"], pair.info["mirror_reveal_frame"]
    assert np.array_equal(pair.impossible[:start], pair.possible[:start])
    assert np.array_equal(pair.impossible[start:], pair.mirror_possible[start:])
    assert np.array_equal(pair.mirror_impossible[:start], pair.mirror_possible[:start])
    assert np.array_equal(pair.mirror_impossible[start:], pair.possible[start:])
    assert np.array_equal(pair.mirror_possible[:mirror_reveal], pair.mirror_impossible[:mirror_reveal])
    assert not np.array_equal(pair.possible, pair.mirror_possible)


def test_permanence_twin_loses_the_target():
    pair = sample_pair(0, 0, "permanence", 48, SceneConfig())
    # The target is gone in the impossible twin: its last frame has more background pixels.
    background = [
        (np.abs(clip[-1].astype(int) - (30, 30, 36)).sum(-1) < 6).sum()
        for clip in (pair.possible, pair.impossible)
    ]
    assert background[1] > background[0]


def test_pairs_are_deterministic():
    a = sample_pair(3, 2, "continuity", 32, SceneConfig())
    b = sample_pair(3, 2, "continuity", 32, SceneConfig())
    assert np.array_equal(a.possible, b.possible) and np.array_equal(a.impossible, b.impossible)
    assert a.info == b.info


def test_unknown_violation_is_refused():
    with pytest.raises(ValueError, match="unknown violation"):
        sample_pair(0, 0, "gravity", 32, SceneConfig())


def test_make_physics_pairs_layout(tmp_path):
    out = tmp_path / "pairs"
    code = main(
        [
            "worlds",
            "make-physics-pairs",
            "--out",
            str(out),
            "--num-pairs",
            "1",
            "--size",
            "32",
            "--workers",
            "1",
        ]
    )
    assert code == 0
    folders = [line.split() for line in (out / "pairs.csv").read_text().splitlines()]
    assert sorted(v for _, v in folders) == sorted(VIOLATIONS)
    labelled = [line.split() for line in (out / "videos.csv").read_text().splitlines()]
    assert len(labelled) == 4 * len(VIOLATIONS) and sorted(label for _, label in labelled[:4]) == list("0011")
    for folder, violation in folders:
        status = json.loads((out / folder / "status.json").read_text())
        assert status["violation"] == violation
        roles = ("possible", "impossible", "mirror_possible", "mirror_impossible")
        assert {status[role] for role in roles} == {"1.mp4", "2.mp4", "3.mp4", "4.mp4"}
        assert [status["videos"][status[role]]["possible"] for role in roles] == [True, False, True, False]
        possible, _ = decode_frames(out / folder / status["possible"])
        impossible, _ = decode_frames(out / folder / status["impossible"])
        assert possible.shape == impossible.shape == (16, 32, 32, 3)
        reveal = status["reveal_frame"]
        assert np.array_equal(possible[:reveal], impossible[:reveal])  # no look-ahead leak
        assert not np.array_equal(possible[reveal:], impossible[reveal:])
