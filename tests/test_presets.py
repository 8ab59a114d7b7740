"""Every shipped preset at its released widths and head counts, depth cut to 1-2 blocks.

The fixtures cover a few small shapes; a defect that shows only at another head size (the AC
predictor at head size 64) or grid (16 x 16) hides there. Here each preset's encoder, mask
predictor and probe agree with the independent `transformers` classes, and every module keeps
its head count through the reference layout, which does not store it.
"""

import warnings

import pytest
import torch
import transformers  # a core dependency: missing, this module fails rather than skips
from conftest import perturbed

import vjepa2
from vjepa2.checkpoints import keymaps as km
from vjepa2.models import presets
from vjepa2.models.ac_predictor import ACPredictor


def reference_file(path, encoder, predictor=None):
    """Write our modules in the reference checkpoint layout (prefixed as the released files)."""
    ckpt = {"target_encoder": km.to_theirs(encoder.state_dict(), km.REFERENCE_ENCODER)}
    ckpt["target_encoder"] = {f"module.backbone.{k}": v for k, v in ckpt["target_encoder"].items()}
    if predictor is not None:
        state = km.to_theirs(predictor.state_dict(), km.REFERENCE_PREDICTOR)
        ckpt["predictor"] = {f"module.backbone.{k}": v for k, v in state.items()}
    torch.save(ckpt, path)
    return path


def load_without_guessing(path):
    """vjepa2.load, failing if any head count had to be guessed (a known width warns nothing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return vjepa2.load(path)


def hf_model(enc, pred, tmp_path):
    cfg = transformers.VJEPA2Config(
        crop_size=enc.crop, frames_per_clip=2, patch_size=enc.patch, tubelet_size=enc.tubelet,
        hidden_size=enc.dim, num_attention_heads=enc.heads, num_hidden_layers=enc.depth,
        mlp_ratio=enc.mlp_ratio, pred_hidden_size=pred.dim, pred_num_attention_heads=pred.heads,
        pred_num_hidden_layers=pred.depth, pred_num_mask_tokens=pred.num_mask_tokens,
    )  # fmt: skip
    model = perturbed(transformers.VJEPA2Model(cfg))
    model.save_pretrained(tmp_path / "hf")
    return model, tmp_path / "hf"


def half_masks(n_tokens):
    perm = torch.randperm(n_tokens, generator=torch.Generator().manual_seed(1))
    return perm[: n_tokens // 2].sort().values[None], perm[n_tokens // 2 :].sort().values[None]


V20 = [name for name, cfg in presets.ENCODERS.items() if cfg.version == "2.0"]  # 2.1: test_presets21.py
CASES = [(name, "default") for name in V20] + [("tiny", "tiny"), ("tiny", "small")]


@pytest.mark.parametrize("encoder_name, predictor_name", CASES)
def test_encoder_and_predictor_presets_match_transformers(encoder_name, predictor_name, tmp_path):
    enc = presets.encoder_config(encoder_name, depth=1)
    pred = presets.predictor_config(enc.dim, predictor_name, depth=1)
    hf, hf_dir = hf_model(enc, pred, tmp_path)
    ours = vjepa2.load(hf_dir)
    assert (ours.encoder.cfg.heads, ours.predictor.cfg.heads) == (enc.heads, pred.heads)
    video = torch.randn(1, 2, 3, enc.crop, enc.crop)  # one tubelet; released crops give 16 x 16
    n = (enc.crop // enc.patch) ** 2
    context, target = half_masks(n)
    with torch.no_grad():
        want = hf(pixel_values_videos=video, context_mask=[context], target_mask=[target])
        tokens = ours.encode(video)
        preds = ours.predict(tokens, context, target)
        assert (tokens - want.last_hidden_state).abs().max() < 1e-4
        assert (preds - want.predictor_output.last_hidden_state).abs().max() < 1e-4
        # the reference layout stores no head counts: a preset's width must bring its own back
        again = load_without_guessing(reference_file(tmp_path / "ref.pt", ours.encoder, ours.predictor))
        assert (again.encoder.cfg.heads, again.predictor.cfg.heads) == (enc.heads, pred.heads)
        assert torch.equal(again.predict(again.encode(video), context, target), preds)


@pytest.mark.parametrize("name", list(presets.AC_PREDICTORS))
def test_ac_predictor_presets_keep_their_heads(name, tmp_path):
    enc = presets.encoder_config("vitg" if name == "vjepa2-ac" else "tiny", depth=1)
    encoder = vjepa2.models.encoder.VideoEncoder(enc)
    ac = perturbed(ACPredictor(presets.ac_predictor_config(enc.dim, name, depth=2)))
    again = load_without_guessing(reference_file(tmp_path / "ac.pt", encoder, ac)).ac_predictor
    assert again.cfg.heads == ac.cfg.heads and again.cfg.dim // again.cfg.heads == ac.cfg.dim // ac.cfg.heads
    grid = enc.crop // enc.patch  # 16 x 16 tokens per frame for the released model
    frames, actions, states = (
        torch.randn(1, 2 * grid * grid, enc.dim),
        torch.randn(1, 2, 7),
        torch.randn(1, 2, 7),
    )
    with torch.no_grad():
        assert torch.equal(
            again(frames, actions, states, grid_hw=(grid, grid)),
            ac(frames, actions, states, grid_hw=(grid, grid)),
        )


def test_unknown_width_warns_and_heads_can_be_given(tmp_path):
    enc = presets.encoder_config("tiny", depth=1)
    encoder = vjepa2.models.encoder.VideoEncoder(enc)
    ac = ACPredictor(presets.ac_predictor_config(enc.dim, "reach", dim=256, heads=8, depth=1))
    path = reference_file(tmp_path / "ac.pt", encoder, ac)
    with pytest.warns(
        UserWarning, match=r"ac.pt \[predictor\].*width 256.*assuming 4 heads.*predictor_heads="
    ):
        assert vjepa2.load(path).ac_predictor.cfg.heads == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # given, not guessed
        model = vjepa2.load(path, predictor_heads=8)
    assert model.ac_predictor.cfg.heads == 8
    model.save(tmp_path / "ours")  # our format records the count: an override would contradict it
    with pytest.raises(ValueError, match="records its head counts"):
        vjepa2.load(tmp_path / "ours", predictor_heads=4)


@pytest.mark.parametrize("encoder_name", ["vitl", "vith", "vitg"])
def test_probe_presets_match_transformers(encoder_name, tmp_path):
    enc = presets.encoder_config(encoder_name, depth=1, crop=64)
    cfg = transformers.VJEPA2Config(
        crop_size=enc.crop, frames_per_clip=2, hidden_size=enc.dim, num_attention_heads=enc.heads,
        num_hidden_layers=1, mlp_ratio=enc.mlp_ratio, pred_num_hidden_layers=1, num_pooler_layers=1,
        num_labels=5,
    )  # fmt: skip
    hf = perturbed(transformers.VJEPA2ForVideoClassification(cfg))
    hf.save_pretrained(tmp_path / "cls")
    probe = vjepa2.load_probe(tmp_path / "cls")
    assert probe.cfg.heads == enc.heads and probe.cfg.depth == 2
    video = torch.randn(1, 2, 3, enc.crop, enc.crop)
    with torch.no_grad():
        want = hf(pixel_values_videos=video).logits
        tokens = vjepa2.load(tmp_path / "cls").encode(video)
        assert (probe(tokens) - want).abs().max() < 1e-4
        # reference probe layout: heads come back from the width
        state = {f"module.{k}": v for k, v in km.to_theirs(probe.state_dict(), km.REFERENCE_PROBE).items()}
        torch.save({"classifiers": [state]}, tmp_path / "probe.pt")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            again = vjepa2.load_probe(tmp_path / "probe.pt", eps=probe.cfg.eps)
        assert again.cfg.heads == enc.heads
        assert torch.equal(again(tokens), probe(tokens))
