"""Synthetic physics clips: simulation, labels on hand-built scenes, determinism, balance, files."""

import json

import numpy as np
import pytest

from vjepa2.cli import main
from vjepa2.data.video import decode_frames, read_clip
from vjepa2.worlds.physics import Bodies, PhysicsConfig, simulate
from vjepa2.worlds.render import BACKGROUND, COLOURS, OCCLUDER, TAG
from vjepa2.worlds.sampling import SceneConfig
from vjepa2.worlds.scenes import (
    TAGGED,
    TASKS,
    chance_level,
    clip_targets,
    direction_class,
    hidden_from,
    make_clip,
    sample_scene,
    scene_labels,
)

NO_GRAVITY = PhysicsConfig(gravity=0.0, restitution=1.0, wall_restitution=1.0)


def bodies(positions, velocities, radii):
    positions = np.asarray(positions, dtype=np.float64)
    return Bodies(
        positions,
        np.asarray(velocities, dtype=np.float64),
        np.asarray(radii, dtype=np.float64),
        np.ones(len(radii), dtype=bool),
    )


def test_head_on_collision_swaps_velocities_and_is_recorded():
    scene = bodies([[0.3, 0.5], [0.7, 0.5]], [[0.2, 0.0], [-0.2, 0.0]], [0.05, 0.05])
    motion = simulate(scene, num_frames=9, fps=4, physics=NO_GRAVITY)
    assert motion.contacts[1:].any() and not motion.contacts[0].any()
    np.testing.assert_allclose(motion.velocities[-1], [[-0.2, 0.0], [0.2, 0.0]], atol=1e-9)
    assert motion.contacts[:, 0, 1].tolist() == motion.contacts[:, 1, 0].tolist()


def test_wall_bounce_and_gravity():
    scene = bodies([[0.9, 0.5]], [[0.3, 0.0]], [0.05])
    motion = simulate(scene, num_frames=9, fps=4, physics=NO_GRAVITY)
    assert motion.positions[..., 0].max() <= 0.95 + 1e-12
    assert motion.velocities[-1, 0, 0] < 0  # came back from the right wall
    falling = simulate(bodies([[0.5, 0.2]], [[0.0, 0.0]], [0.05]), 3, 4, PhysicsConfig(gravity=0.1))
    assert falling.positions[-1, 0, 1] > 0.2 and falling.velocities[-1, 0, 1] > 0  # y points down


def test_batched_simulation_matches_single_scenes():
    rng = np.random.default_rng(0)
    batch = Bodies(
        rng.uniform(0.2, 0.8, (3, 4, 2)),
        rng.normal(0, 0.2, (3, 4, 2)),
        np.full((3, 4), 0.06),
        np.ones((3, 4), bool),
    )
    together = simulate(batch, 8, 4, PhysicsConfig())
    for b in range(3):
        alone = simulate(
            Bodies(batch.positions[b], batch.velocities[b], batch.radii[b], batch.active[b]),
            8,
            4,
            PhysicsConfig(),
        )
        np.testing.assert_allclose(together.positions[:, b], alone.positions, atol=1e-12)
        assert (together.contacts[:, b] == alone.contacts).all()


@pytest.mark.parametrize(
    "displacement, label",
    [
        ((0.3, 0.0), 0),
        ((0.2, -0.2), 1),
        ((0.0, -0.3), 2),
        ((-0.3, 0.0), 4),
        ((-0.2, 0.2), 5),
        ((0.0, 0.3), 6),
        ((0.2, 0.2), 7),
    ],
)
def test_direction_classes_on_screen(displacement, label):
    got, clear = direction_class(np.array(displacement))
    assert got == label and clear


def test_direction_near_a_border_or_too_short_is_not_clear():
    border = 0.3 * np.array([np.cos(np.pi / 8), -np.sin(np.pi / 8)])
    assert not direction_class(border)[1]
    assert not direction_class(np.array([0.05, 0.0]))[1]


def test_labels_of_a_hand_built_scene():
    # Tagged object moves left (no contact); objects 1 and 2 collide; object 2 (blue) is hidden.
    scene = bodies([[0.8, 0.2], [0.3, 0.7], [0.7, 0.7]], [[-0.15, 0.0], [0.2, 0.0], [-0.2, 0.0]], [0.05] * 3)
    motion = simulate(scene, num_frames=16, fps=4, physics=NO_GRAVITY)
    labels = scene_labels(motion.positions, motion.contacts, np.array([0, 1, 2]), hidden=2)
    assert labels == {"direction": 4, "collision": 1, "hidden": 2}
    apart = bodies([[0.8, 0.2], [0.3, 0.7], [0.7, 0.9]], [[0.0, 0.15], [0.0, -0.01], [0.0, 0.0]], [0.05] * 3)
    motion = simulate(apart, num_frames=16, fps=4, physics=NO_GRAVITY)
    labels = scene_labels(motion.positions, motion.contacts, np.array([3, 1, 2]), hidden=1)
    assert labels == {"direction": 6, "collision": 0, "hidden": 1}


def test_clips_are_deterministic_and_hit_their_targets():
    cfg = SceneConfig()
    frames, scene = make_clip(7, 5, cfg, size=32)
    again, scene_again = make_clip(7, 5, cfg, size=32)
    assert frames.shape == (16, 32, 32, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, again) and scene.labels == scene_again.labels
    assert scene.labels == clip_targets(7, 5)
    other, _ = make_clip(8, 5, cfg, size=32)
    assert not np.array_equal(frames, other)


def test_textured_world_has_the_flat_worlds_scenes():
    flat, scene = make_clip(7, 5, SceneConfig(), size=64)
    textured, textured_scene = make_clip(7, 5, SceneConfig(texture=48.0), size=64)
    assert textured_scene.labels == scene.labels
    np.testing.assert_array_equal(textured_scene.positions, scene.positions)
    # The bar is drawn over the pattern; the pattern is still, bounded by the contrast.
    bar = np.abs(flat.astype(float) - OCCLUDER).max(-1) <= 1  # (T, H, W)
    assert bar.any() and np.array_equal(textured[bar], flat[bar])
    ground = (np.abs(flat.astype(float) - BACKGROUND).max(-1) == 0).all(0)  # (H, W) in every frame
    assert ground.mean() > 0.1 and (textured[:, ground] == textured[0, ground]).all()
    offsets = textured[0, ground].astype(int) - flat[0, ground]
    assert np.abs(offsets).max() <= 48 + 1 and (np.abs(offsets) > 8).mean() > 0.5
    again, _ = make_clip(7, 5, SceneConfig(texture=48.0), size=64)
    assert np.array_equal(textured, again)


def test_pixels_agree_with_labels():
    cfg = SceneConfig()
    for index in range(4):
        frames, scene = make_clip(0, index, cfg, size=64)
        hidden = scene.info["hidden_object"]
        for t in range(hidden_from(16), 16):  # the bar covers it from the middle frame on
            x, y = np.round(scene.positions[t, hidden] * 64 - 0.5).astype(int)
            assert np.abs(frames[t, y, x].astype(float) - OCCLUDER).max() <= 2
        x, y = np.round(scene.positions[0, hidden] * 64 - 0.5).astype(int)
        assert np.abs(frames[0, y - 1 : y + 2, x - 1 : x + 2].astype(float) - OCCLUDER).max() > 30
        assert scene.labels["hidden"] == scene.colours[hidden]
        x, y = np.round(scene.positions[0, TAGGED] * 64 - 0.5).astype(int)
        assert np.abs(frames[0, y, x].astype(float) - TAG).max() <= 2  # the tagged object is white


def test_targets_are_balanced_per_block_of_64():
    targets = [clip_targets(3, i) for i in range(64)]
    for task, classes in TASKS.items():
        counts = np.bincount([t[task] for t in targets], minlength=len(classes))
        assert (counts == 64 // len(classes)).all()
        assert chance_level(task) == pytest.approx(1 / len(classes))


def white_centroid(frames):
    """(N, 2) centre of the whitish pixels (the tag) of frames (N, H, W, 3) in [0, 1]."""
    white = np.clip((frames.min(-1) - 0.6) / 0.4, 0, 1)  # yellow, grey and the rest count 0
    grid = (np.arange(frames.shape[1]) + 0.5) / frames.shape[1]
    mass = white.sum((1, 2)) + 1e-9
    x = (white * grid[None, None]).sum((1, 2)) / mass
    y = (white * grid[None, :, None]).sum((1, 2)) / mass
    return np.stack([x, y], -1)


def nearest_centroid_accuracy(features, labels, classes, folds=4):
    """Cross-validated accuracy of a nearest-centroid classifier on standardised features."""
    hits = []
    for fold in range(folds):
        test = np.arange(len(labels)) % folds == fold
        mean, std = features[~test].mean(0), features[~test].std(0) + 1e-6
        z = (features - mean) / std
        centroids = np.stack([z[~test][labels[~test] == c].mean(0) for c in range(classes)])
        predicted = ((z[test][:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
        hits.append(predicted == labels[test])
    return np.concatenate(hits).mean()


def test_direction_needs_two_frames():
    cfg = SceneConfig()
    clips, labels = zip(
        *[(f, s.labels["direction"]) for f, s in (make_clip(1, i, cfg, size=32) for i in range(128))]
    )
    clips, labels = np.stack(clips).astype(np.float64) / 255, np.array(labels)
    middle = clips[:, len(clips[0]) // 2]
    single_pixels = nearest_centroid_accuracy(middle.reshape(len(clips), -1), labels, 8)
    single_tag = nearest_centroid_accuracy(white_centroid(middle), labels, 8)
    motion = white_centroid(clips[:, -1]) - white_centroid(clips[:, 0])
    two_frames = nearest_centroid_accuracy(motion, labels, 8)
    chance = chance_level("direction")
    assert single_pixels < chance + 0.1 and single_tag < chance + 0.1
    assert two_frames > 0.8


def test_collision_is_not_given_away_by_the_scene():
    cfg = SceneConfig()
    scenes = [sample_scene(4, i, cfg) for i in range(128)]
    labels = np.array([s.labels["collision"] for s in scenes])
    counts = np.array([s.info["num_objects"] for s in scenes])
    assert abs(counts[labels == 1].mean() - counts[labels == 0].mean()) < 0.15
    for s in scenes:  # a 'no' clip has no contact at all
        assert s.info["contact_frames"] == [] or s.labels["collision"] == 1
    middle = np.stack([s.render(32)[hidden_from(16)] for s in scenes]).astype(np.float64)
    accuracy = nearest_centroid_accuracy(middle.reshape(len(scenes), -1), labels, 2)
    assert accuracy < chance_level("collision") + 0.12


def colour_areas(frames):
    """(N, 4) pixels of each object colour in frames (N, H, W, 3) of 0-255."""
    distance = np.abs(frames[..., None, :] - COLOURS).sum(-1)  # (N, H, W, colours)
    return (distance < 40).sum((1, 2)).astype(np.float64)


def test_hidden_needs_the_first_half():
    cfg = SceneConfig()
    clips, labels = zip(
        *[(f, s.labels["hidden"]) for f, s in (make_clip(2, i, cfg, size=32) for i in range(128))]
    )
    clips, labels = np.stack(clips).astype(np.float64), np.array(labels)
    middle = clips[:, hidden_from(16)]
    chance = chance_level("hidden")
    assert nearest_centroid_accuracy(middle.reshape(len(clips), -1), labels, 4) < chance + 0.1
    assert nearest_centroid_accuracy(colour_areas(middle), labels, 4) < chance + 0.1
    assert nearest_centroid_accuracy(colour_areas(clips[:, -1]), labels, 4) < chance + 0.1
    gone = colour_areas(clips[:, 0]) - colour_areas(middle)  # the colour that went behind the bar
    assert (gone.argmax(1) == labels).mean() > 0.7


def test_make_videos_command_writes_readable_videos_and_indexes(tmp_path):
    out = tmp_path / "videos"
    code = main(
        [
            "worlds",
            "make-videos",
            "--out",
            str(out),
            "--num-videos",
            "6",
            "--size",
            "32",
            "--workers",
            "1",
            "--val-fraction",
            "0.5",
        ]
    )
    assert code == 0
    meta = json.loads((out / "labels.json").read_text())
    assert meta["tasks"]["direction"]["chance"] == pytest.approx(1 / 8)
    for task in TASKS:
        lines = (out / f"{task}.csv").read_text().splitlines()
        assert len(lines) == 6
        train = (out / f"{task}_train.csv").read_text().splitlines()
        val = (out / f"{task}_val.csv").read_text().splitlines()
        assert len(train) == len(val) == 3 and sorted(train + val) == sorted(lines)
        for line, record in zip(lines, meta["clips"]):
            path, label = line.split(" ")
            assert path == record["path"] and int(label) == record[task] < len(TASKS[task])
    frames, times = decode_frames(out / meta["clips"][0]["path"])
    assert frames.shape == (16, 32, 32, 3) and np.allclose(np.diff(times), 0.25)
    assert read_clip(out / meta["clips"][1]["path"], num_frames=16).shape == (1, 16, 32, 32, 3)
    exact, _ = make_clip(0, 0, SceneConfig(), size=32)
    assert np.abs(frames.astype(float) - exact).mean() < 6  # the codec's loss only


def test_unknown_task_is_refused(tmp_path, user_error):
    args = ["worlds", "make-videos", "--out", str(tmp_path), "--num-videos", "1", "--task", "colour"]
    assert "task must be one of" in user_error(args)
