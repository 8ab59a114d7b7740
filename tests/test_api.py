"""The package face a transformers / timm user reaches for: dir, help, load("random:tiny"), and
the extrinsics switch of reference V-JEPA 2-AC files (which do not store it)."""

import pydoc
import subprocess
import sys

import pytest
import torch

import vjepa2
from vjepa2.checkpoints import keymaps as km
from vjepa2.checkpoints.loading import load_encoder
from vjepa2.errors import UserError
from vjepa2.models import presets
from vjepa2.models.ac_predictor import ACPredictor
from vjepa2.models.encoder import VideoEncoder

ENTRY_POINTS = ["VJEPA2", "load", "load_probe", "save_probe", "preprocess", "export_transformers",
                "export_classifier_transformers", "list_weights", "download"]  # fmt: skip


def test_dir_shows_the_entry_points_without_loading_torch():
    code = "import sys, vjepa2, vjepa2.cli; names = dir(vjepa2); print('torch' in sys.modules, *names)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "False"
    assert set(ENTRY_POINTS) <= set(out[1:])


def test_help_lists_the_entry_points():
    text = pydoc.render_doc(vjepa2, renderer=pydoc.plaintext)
    for name in ENTRY_POINTS:
        assert name in text
    assert "random:tiny" in text and "list_weights()" in text


def test_load_takes_random_presets_as_the_cli_does():
    model = vjepa2.load("random:tiny")
    same = load_encoder("random:tiny")
    assert not model.training and model.predictor is not None
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values()))
    other = vjepa2.load("random:tiny", seed=1)
    assert not torch.equal(other.encoder.patch_embed.proj.weight, model.encoder.patch_embed.proj.weight)
    with pytest.raises(UserError, match="apply to checkpoints"):
        vjepa2.load("random:tiny", heads=3)
    assert "vitl" in vjepa2.list_weights() and vjepa2.list_weights("ac") == ["vjepa2-ac-vitg"]


def ac_reference_file(path):
    """A tiny V-JEPA 2-AC file in the reference layout (the extrinsics layer stored, as released)."""
    torch.manual_seed(0)
    encoder = VideoEncoder(presets.encoder_config("tiny", depth=1))
    ac = ACPredictor(presets.ac_predictor_config(encoder.cfg.dim, "reach", depth=1))

    def prefixed(state, table):
        return {f"module.backbone.{k}": v for k, v in km.to_theirs(state, table).items()}

    ckpt = {"encoder": prefixed(encoder.state_dict(), km.REFERENCE_ENCODER),
            "predictor": prefixed(ac.state_dict(), km.REFERENCE_PREDICTOR)}  # fmt: skip
    torch.save(ckpt, path)
    return path


def test_use_extrinsics_for_reference_ac_files(tmp_path):
    path = ac_reference_file(tmp_path / "ac.pt")
    plain = vjepa2.load(path).ac_predictor
    with_ext = vjepa2.load(path, use_extrinsics=True).ac_predictor
    assert not plain.cfg.use_extrinsics and with_ext.cfg.use_extrinsics
    tokens, actions, states = torch.randn(1, 2 * 16, 192), torch.randn(1, 2, 7), torch.randn(1, 2, 7)
    extrinsics = torch.randn(1, 2, 6)
    with torch.no_grad():
        a = plain(tokens, actions, states, grid_hw=(4, 4))
        b = with_ext(tokens, actions, states, extrinsics, grid_hw=(4, 4))
    assert a.shape == b.shape == (1, 32, 192) and not torch.allclose(a, b)
    # our format records the switch: it is kept, and a contradicting argument is refused
    vjepa2.load(path, use_extrinsics=True).save(tmp_path / "ours")
    assert vjepa2.load(tmp_path / "ours").ac_predictor.cfg.use_extrinsics
    with pytest.raises(UserError, match="records use_extrinsics=True"):
        vjepa2.load(tmp_path / "ours", use_extrinsics=False)
    vjepa2.VJEPA2(VideoEncoder(presets.encoder_config("tiny", depth=1))).save(tmp_path / "no-ac")
    with pytest.raises(UserError, match="no action-conditioned predictor"):
        vjepa2.load(tmp_path / "no-ac", use_extrinsics=True)
