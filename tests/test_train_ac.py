"""``vjepa2 train-ac``: losses, feature cache, exact resume and the exported world model."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vjepa2.checkpoints.world_models import load_world_model
from vjepa2.cli import main
from vjepa2.data.episodes import write_episode, write_index
from vjepa2.evals.features import load_encoder
from vjepa2.models.ac_predictor import ACPredictor, ACPredictorConfig
from vjepa2.models.encoder import layer_norm_features
from vjepa2.models.world_model import encode_frames, frames_to_clips
from vjepa2.train.ac import ac_losses
from vjepa2.train.ac_features import build_encoder

TINY = ["--model.encoder-overrides", "{depth: 1}", "--model.dim", "32", "--model.depth", "1"]
TINY += ["--model.heads", "1", "--data.num-frames", "4", "--run.batch-size", "4", "--run.dtype", "fp32"]


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    """Six short episodes of a square that moves by its action (32 px frames)."""
    root = tmp_path_factory.mktemp("episodes")
    rng = np.random.default_rng(0)
    folders = []
    for i in range(6):
        actions = rng.uniform(-1, 1, (6, 2)).astype(np.float32)
        states = np.cumsum(np.concatenate([[[12.0, 12.0]], actions[:-1] * 3]), axis=0).astype(np.float32)
        frames = np.zeros((6, 32, 32, 3), dtype=np.uint8)
        for t, (x, y) in enumerate(states.astype(int)):
            frames[t, y : y + 6, x : x + 6] = 255
        folders.append(write_episode(root / f"ep{i}", frames, actions, states, fps=10, lossless=True))
    write_index(root, folders)
    return root


def encode_raw(world, frames):
    return encode_frames(world.encoder, frames, world.spec.crop, world.spec.blur)


def _train(episodes, out, *extra):
    return main(_args(episodes, out, *extra))


def _args(episodes, out, *extra) -> list[str]:
    args = ["train-ac", "--data.source", str(episodes), "--run.out", str(out), *TINY]
    args += [
        "--schedule.warmup-steps",
        "2",
        "--schedule.constant-steps",
        "2",
        "--schedule.cooldown-steps",
        "2",
    ]
    return [*args, "--run.log-every", "1", "--run.eval-every", "3", *extra]


def test_losses_match_their_definition():
    torch.manual_seed(0)
    predictor = ACPredictor(ACPredictorConfig(enc_dim=8, dim=16, depth=1, heads=1, action_dim=2, state_dim=3))
    latents, actions, states = torch.randn(2, 4, 4, 8), torch.randn(2, 3, 2), torch.randn(2, 4, 3)
    teacher, rollout = ac_losses(predictor, latents, actions, states, (2, 2), rollout_steps=3)
    pred = predictor(latents[:, :3].flatten(1, 2), actions, states[:, :3], grid_hw=(2, 2))
    pred = torch.nn.functional.layer_norm(pred, (8,)).view(2, 3, 4, 8)
    torch.testing.assert_close(teacher, (pred - latents[:, 1:]).abs().mean())
    # one rollout step is the first teacher-forced prediction
    _, first = ac_losses(predictor, latents, actions, states, (2, 2), rollout_steps=1)
    torch.testing.assert_close(first, (pred[:, 0] - latents[:, 1]).abs().mean())
    # more steps feed predictions back: a different, still finite loss with gradients
    assert rollout.isfinite() and not torch.isclose(rollout, first)
    rollout.backward()
    assert predictor.action_encoder.weight.grad.abs().sum() > 0
    _, none = ac_losses(predictor, latents, actions, states, (2, 2), rollout_steps=0)
    assert none == 0


def test_train_resume_and_export(episodes, tmp_path, capsys):
    assert _train(episodes, tmp_path / "full", "--run.steps", "6") == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]  # it says where it wrote
    assert (
        last
        == f"train-ac: done at step 6 of 6; wrote model/, latest.pt, log.jsonl, config.yaml in {tmp_path / 'full'}"
    )
    model_dir = tmp_path / "full" / "model"
    world = load_world_model(model_dir)
    assert world.action_dim == 2 and world.state_dim == 2 and world.grid_hw == (2, 2)
    spec = json.loads((model_dir / "world_model.json").read_text())
    assert spec["crop"] == 32 and len(spec["stats"]["action_mean"]) == 2
    rows = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert any("val_teacher" in r for r in rows)
    assert (tmp_path / "full" / "features.safetensors").is_file()

    # interrupted after 2 steps, then resumed: the same weights as the uninterrupted run
    assert _train(episodes, tmp_path / "split", "--run.steps", "6", "--run.stop-after", "2") == 0
    assert _train(episodes, tmp_path / "split", "--run.steps", "6") == 0
    full = load_file(model_dir / "model.safetensors")
    split = load_file(tmp_path / "split" / "model" / "model.safetensors")
    for key in full:
        torch.testing.assert_close(split[key], full[key], atol=0, rtol=0, msg=key)


def test_the_frozen_encoder_comes_from_the_one_random_model_factory(tmp_path):
    encoder, description = build_encoder("random:tiny", {"depth": 1}, seed=3)
    probes = load_encoder("random:tiny", seed=3, depth=1)  # what probes and extract use
    assert description == "random:tiny seed=3 [('depth', 1)]" and not encoder.training
    for key, value in probes.encoder.state_dict().items():
        assert torch.equal(encoder.state_dict()[key], value), key
    probes.save(tmp_path / "trained")  # random:<checkpoint>: its shape, fresh weights
    twin, _ = build_encoder(f"random:{tmp_path / 'trained'}", {}, seed=4)
    assert twin.cfg == encoder.cfg and not torch.equal(
        twin.blocks[0].mlp.fc1.weight, encoder.blocks[0].mlp.fc1.weight
    )


def test_gradient_accumulation_matches_the_full_batch(episodes, tmp_path):
    assert _train(episodes, tmp_path / "full", "--run.steps", "3") == 0
    assert (
        _train(episodes, tmp_path / "accum", "--run.steps", "3", "--run.batch-size", "2", "--run.accum", "2")
        == 0
    )
    rows = {
        name: [json.loads(r) for r in (tmp_path / name / "log.jsonl").read_text().splitlines()]
        for name in ("full", "accum")
    }
    got, want = ([r["loss"] for r in rows[name] if "loss" in r] for name in ("accum", "full"))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    full, accum = (load_file(tmp_path / name / "model" / "model.safetensors") for name in ("full", "accum"))
    for key in full:
        torch.testing.assert_close(accum[key], full[key], atol=1e-5, rtol=0, msg=key)


def test_cache_reuse_and_no_cache(episodes, tmp_path):
    cache = tmp_path / "cache.safetensors"
    assert _train(episodes, tmp_path / "a", "--run.steps", "1", "--data.cache-file", str(cache)) == 0
    stamp = cache.stat().st_mtime_ns
    assert _train(episodes, tmp_path / "b", "--run.steps", "1", "--data.cache-file", str(cache)) == 0
    assert cache.stat().st_mtime_ns == stamp  # same encoder and data: the cache is read, not rewritten
    assert (
        _train(
            episodes, tmp_path / "c", "--run.steps", "1", "--data.cache-file", str(cache), "--model.blur", "2"
        )
        == 0
    )
    assert cache.stat().st_mtime_ns != stamp  # a different preprocessing re-encodes
    # encoding on the fly, with standardized latents: their statistics travel with the model
    assert (
        _train(
            episodes, tmp_path / "d", "--run.steps", "2", "--data.cache", "false", "--model.standardize", "1"
        )
        == 0
    )
    loss = [json.loads(r) for r in (tmp_path / "d" / "log.jsonl").read_text().splitlines()][0]["loss"]
    assert np.isfinite(loss)
    world = load_world_model(tmp_path / "d" / "model")
    assert world.latent_stats is not None and world.latent_stats.std.shape == (4, 192)
    frames = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    torch.testing.assert_close(world.encode(frames), world.latent_stats.apply(encode_raw(world, frames)))


def test_bad_config_errors(episodes, tmp_path, user_error):
    assert "no trajectory source" in user_error(["train-ac", "--run.out", str(tmp_path)])
    assert "run.rollout_steps must be in 0..num_frames-1" in user_error(
        _args(episodes, tmp_path / "x", "--run.rollout-steps", "4")
    )
    assert "model.crop 40 is not a multiple of the encoder patch" in user_error(
        _args(episodes, tmp_path / "y", "--model.crop", "40")
    )


def test_train_ac_on_a_v21_encoder(episodes, tmp_path):
    args = _args(episodes, tmp_path / "v21", "--run.steps", "3")
    args[args.index("--model.encoder-overrides") : args.index("--model.encoder-overrides")] = [
        "--model.encoder", "random:tiny-2.1",
    ]  # fmt: skip
    assert main(args) == 0
    world = load_world_model(tmp_path / "v21" / "model")
    assert world.encoder.cfg.version == "2.1" and world.encoder.cfg.level_layers == (0,)
    frames = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    latents = world.encode(frames)
    assert latents.shape == (3, 4, 192)  # one 2 x 2 token grid per frame, the plain output
    # each frame is a duplicated 2-frame clip through the video tokenizer, not an image
    clips = frames_to_clips(frames, 32)
    with torch.no_grad():
        as_video = layer_norm_features(world.encoder(clips))
        as_image = layer_norm_features(world.encoder(clips[:, :1]))
    torch.testing.assert_close(latents, as_video, atol=1e-5, rtol=0)
    assert not torch.allclose(latents, as_image, atol=1e-2)
    assert clips.shape[1] == 2 and not world.encoder.is_image(clips)
    # planning imagines from these latents as from a 2.0 world model's
    imagined = world.rollout(latents[0], torch.zeros(2), torch.zeros(5, 3, 2))
    assert imagined.shape == (5, 3, 4, 192) and imagined.isfinite().all()


@pytest.mark.parametrize("name", ["pretrain_tiny.pt", "ac_tiny.pt"])
def test_train_ac_on_a_released_checkpoint(episodes, fixtures_dir, tmp_path, name):
    """``model.encoder=<released .pt>`` (issue 21, 2c): a pretraining checkpoint (target_encoder)
    or a V-JEPA 2-AC one (encoder + predictor), in the reference's layout, becomes the frozen
    encoder, stored with the world model so planning needs the .pt no more."""
    released = fixtures_dir / name
    out = tmp_path / "released"
    assert (
        _train(episodes, out, "--run.steps", "3", "--model.encoder", str(released), "--model.crop", "64") == 0
    )
    world = load_world_model(out / "model")
    reference = load_encoder(str(released)).encoder
    ours = world.encoder.state_dict()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(ours[key], value, atol=0, rtol=0, msg=key)
    frames = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    latents = world.encode(frames)
    assert latents.shape == (3, 16, 192)  # 32 px frames resized to the 64 px crop: 4 x 4 tokens
    expected = encode_frames(reference, frames, world.spec.crop, world.spec.blur)
    if world.latent_stats is not None:
        expected = world.latent_stats.apply(expected)
    torch.testing.assert_close(latents, expected, atol=1e-5, rtol=0)
    imagined = world.rollout(latents[0], torch.zeros(2), torch.zeros(4, 2, 2))  # planning's call
    assert imagined.shape == (4, 2, 16, 192) and imagined.isfinite().all()
