"""The V-JEPA 2.1 presets: exact parameter counts at full size, and each preset at its released
widths and head counts (depth cut to 2 blocks) through the reference layout and back.

`transformers` has no 2.1 class, so the independent check of 2.1 numerics is the reference
fixtures (test_models_reference21.py); here the shapes the fixtures do not cover (head size 64,
16 x 16 and 24 x 24 grids, the 4-level MLP embedding at ViT-g/G widths) are exercised.
"""

import warnings

import pytest
import torch
from conftest import perturbed

import vjepa2
from vjepa2.checkpoints import keymaps as km
from vjepa2.models import presets
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.predictor import MaskPredictor

# Parameter counts of the released modules (reference classes, see vjepa21-system.md section 4)
RELEASED = {
    "vitb-2.1": (86_833_152, 22_874_752),
    "vitl-2.1": (304_680_960, 22_973_056),
    "vitg-2.1": (1_013_267_968, 55_400_704),
    "vitG-2.1": (1_845_216_768, 59_433_472),
}
# Encoder key of each release file (the hub reads the EMA encoder under these names)
EMA_KEY = {"vitb-2.1": "ema_encoder", "vitl-2.1": "ema_encoder", "vitg-2.1": "target_encoder", "vitG-2.1": "target_encoder"}  # fmt: skip


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", list(RELEASED))
def test_full_size_parameter_counts(name):
    enc_cfg = presets.encoder_config(name)
    pred_cfg = presets.paired_predictor(enc_cfg, presets.PAIRED_PREDICTOR[name])
    with torch.device("meta"):  # shapes only: ViT-G would take 7 GB
        encoder, predictor = VideoEncoder(enc_cfg), MaskPredictor(pred_cfg)
    assert (n_params(encoder), n_params(predictor)) == RELEASED[name]
    # the reference's state-dict entries (it keeps one tensor per mask token)
    encoder_entries = len(km.to_theirs(encoder.state_dict(), km.REFERENCE_ENCODER))
    predictor_entries = len(km.to_theirs(predictor.state_dict(), km.REFERENCE_PREDICTOR))
    want = {"vitb-2.1": (158, 162), "vitl-2.1": (302, 162), "vitg-2.1": (494, 308), "vitG-2.1": (590, 308)}
    assert (encoder_entries, predictor_entries) == want[name]


def release_layout(path, key, encoder, predictor):
    """Our modules written as a released 2.1 file: the EMA encoder under ``key``, keys prefixed."""

    def prefixed(state):
        return {f"module.backbone.{k}": v for k, v in state.items()}

    ckpt = {
        "encoder": prefixed(
            km.to_theirs(perturbed(VideoEncoder(encoder.cfg)).state_dict(), km.REFERENCE_ENCODER)
        ),
        key: prefixed(km.to_theirs(encoder.state_dict(), km.REFERENCE_ENCODER)),
        "predictor": prefixed(km.to_theirs(predictor.state_dict(), km.REFERENCE_PREDICTOR)),
        "epoch": 1,
    }
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("name", list(RELEASED))
def test_presets_at_released_widths_through_the_reference_layout(name, tmp_path):
    enc_cfg = presets.encoder_config(name, depth=2)
    assert enc_cfg.level_layers == (0, 1)  # a shallow 2.1 encoder gets levels of its own depth
    pred_cfg = presets.paired_predictor(enc_cfg, presets.PAIRED_PREDICTOR[name], depth=1)
    encoder, predictor = perturbed(VideoEncoder(enc_cfg)), perturbed(MaskPredictor(pred_cfg))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # release widths: no head count is guessed
        model = vjepa2.load(release_layout(tmp_path / f"{name}.pt", EMA_KEY[name], encoder, predictor))
    assert model.version == "2.1" and model.encoder.cfg == enc_cfg and model.predictor.cfg.heads == 12
    assert model.predictor.cfg == pred_cfg
    video = torch.randn(1, 2, 3, 256, 256)  # one tubelet, a 16 x 16 grid
    context_idx, target_idx = torch.arange(0, 256, 2)[None], torch.arange(1, 256, 2)[None]
    levels = pred_cfg.embed_hidden > 0
    with torch.no_grad():
        tokens = model.encode(video, levels=levels)
        assert torch.equal(tokens, encoder(video, levels=levels))  # the EMA encoder, not "encoder"
        pred, ctx = model.predict(tokens, context_idx, target_idx, return_context=True)
        want = predictor(
            tokens[:, ::2].contiguous(), context_idx, target_idx, (1, 16, 16), return_context=True
        )
        assert torch.equal(pred, want[0]) and torch.equal(ctx, want[1])
        assert pred.shape == (1, 128, 1664 if name in ("vitb-2.1", "vitl-2.1") else 2 * enc_cfg.dim)
        image = model.encode(torch.randn(1, 1, 3, 384, 384))  # the image tokenizer, 24 x 24
        assert image.shape == (1, 576, enc_cfg.dim) and model._modality == "image"
