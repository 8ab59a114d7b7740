"""Our models loaded from checkpoints written by the reference code reproduce its outputs."""

import pytest
import torch
from safetensors.torch import load_file

import vjepa2
from vjepa2.checkpoints.loading import as_model
from vjepa2.checkpoints.reference import read_reference


@pytest.fixture(scope="module")
def pretrain(fixtures_dir):
    return load_file(fixtures_dir / "pretrain_tiny_io.safetensors"), fixtures_dir / "pretrain_tiny.pt"


def test_encoder_square_and_nonsquare(pretrain):
    io, path = pretrain
    model = vjepa2.load(path)  # target_encoder by default
    assert model.encoder.cfg.dim == 192 and model.encoder.cfg.depth == 3 and model.encoder.cfg.heads == 3
    with torch.no_grad():
        out = model.encode(io["video"])
        torch.testing.assert_close(out, io["target_encoder_out"], atol=1e-5, rtol=0)
        out = model.encode(io["video_nonsquare"])  # RoPE on the actual 2x3x5 grid
        torch.testing.assert_close(out, io["target_encoder_out_nonsquare"], atol=1e-5, rtol=0)


def test_encoder_key_choice(pretrain):
    io, path = pretrain
    model = vjepa2.load(path, encoder_key="encoder")
    with torch.no_grad():
        torch.testing.assert_close(model.encode(io["video"]), io["encoder_out"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("mask_index", [0, 1])
def test_predictor(pretrain, mask_index):
    io, path = pretrain
    model = as_model(read_reference(path)).eval()
    with torch.no_grad():
        tokens = model.encode(io["video"])
        preds = model.predict(tokens, io["context_idx"], io["target_idx"], mask_index=mask_index)
    torch.testing.assert_close(preds, io[f"predictor_out_mask_index_{mask_index}"], atol=1e-5, rtol=0)


def test_ac_predictor(fixtures_dir):
    io = load_file(fixtures_dir / "ac_tiny_io.safetensors")
    model = vjepa2.load(fixtures_dir / "ac_tiny.pt")
    assert model.predictor is None and model.ac_predictor is not None
    assert model.ac_predictor.cfg.action_dim == 7 and model.ac_predictor.cfg.heads == 4
    with torch.no_grad():
        out = model.ac_predictor(io["frame_tokens"], io["actions"], io["states"], grid_hw=(4, 4))
    torch.testing.assert_close(out, io["ac_predictor_out"], atol=1e-5, rtol=0)


def test_ac_predictor_head_size_64(fixtures_dir):
    """The released V-JEPA 2-AC's head size; at width 256 the file cannot say 4 heads from 8."""
    io = load_file(fixtures_dir / "ac_hd64_io.safetensors")
    with pytest.warns(UserWarning, match="assuming 4 heads"):
        guessed = vjepa2.load(fixtures_dir / "ac_hd64.pt").ac_predictor
    given = vjepa2.load(fixtures_dir / "ac_hd64.pt", predictor_heads=4).ac_predictor
    wrong = vjepa2.load(fixtures_dir / "ac_hd64.pt", predictor_heads=8).ac_predictor
    args = io["frame_tokens"], io["actions"], io["states"]
    with torch.no_grad():
        for model in (guessed, given):
            assert model.cfg.heads == 4
            torch.testing.assert_close(
                model(*args, grid_hw=(4, 4)), io["ac_predictor_out"], atol=1e-5, rtol=0
            )
        # head size 32 (what every predictor used to assume) computes another model
        assert (wrong(*args, grid_hw=(4, 4)) - io["ac_predictor_out"]).abs().max() > 1e-3


def test_probe(fixtures_dir):
    io = load_file(fixtures_dir / "probe_tiny_io.safetensors")
    probe = vjepa2.load_probe(fixtures_dir / "probe_tiny.pt")
    assert probe.cfg.eps == 1e-5 and probe.cfg.num_classes == 5 and probe.cfg.depth == 4
    with torch.no_grad():
        torch.testing.assert_close(probe(io["tokens"]), io["logits"], atol=1e-5, rtol=0)


def test_probe_eps_matters(fixtures_dir):
    """The reference probe needs eps 1e-5: 1e-6 is measurably off (a check that the test can fail)."""
    io = load_file(fixtures_dir / "probe_tiny_io.safetensors")
    probe = vjepa2.load_probe(fixtures_dir / "probe_tiny.pt", eps=1e-6)
    with torch.no_grad():
        assert (probe(io["tokens"]) - io["logits"]).abs().max() > 1e-6


def test_wrong_file_is_a_clear_error(fixtures_dir, tmp_path):
    ckpt = torch.load(fixtures_dir / "pretrain_tiny.pt", weights_only=True)
    del ckpt["target_encoder"]["module.backbone.blocks.1.attn.qkv.weight"]
    ckpt["target_encoder"]["module.backbone.blocks.1.attn.proj.weight"] = torch.zeros(7, 7)
    torch.save(ckpt, tmp_path / "broken.pt")
    with pytest.raises(ValueError) as err:
        vjepa2.load(tmp_path / "broken.pt")
    msg = str(err.value)
    assert "broken.pt" in msg and "missing keys" in msg and "blocks.1.attn.qkv.weight" in msg
    assert "shape mismatches" in msg and "expected (192, 192), found (7, 7)" in msg


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="junk.pt"):
        vjepa2.load(bad)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        vjepa2.load(tmp_path / "missing.pt")
