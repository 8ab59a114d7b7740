"""V-JEPA 2.1 loaded from checkpoints written by the reference 2.1 classes reproduces their outputs.

The fixtures store clips as the reference takes them, (B, C, T, H, W); ours take (B, T, C, H, W).
"""

import pytest
import torch
from safetensors.torch import load_file

import vjepa2
from vjepa2.errors import UserError

FIXTURES = ("v21_tiny_g", "v21_tiny_dist")
ATOL = dict(atol=1e-5, rtol=0)


# The fixtures' widths (32, 40) are not release widths, whose head counts the loader knows.
HEADS = dict(heads=2, predictor_heads=2)


def _load(folder, name):
    return vjepa2.load(folder / f"{name}.pt", **HEADS), load_file(folder / f"{name}_io.safetensors")


def _clip(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2)  # (B, C, T, H, W) -> (B, T, C, H, W)


@pytest.mark.parametrize("name", FIXTURES)
def test_architecture_read_off_the_weights(fixtures21, name):
    model, _ = _load(fixtures21, name)
    enc, pred = model.encoder.cfg, model.predictor.cfg
    assert model.version == "2.1" and enc.version == pred.version == "2.1"
    assert (enc.dim, enc.depth, enc.heads, enc.level_layers) == (32, 12, 2, (2, 5, 8, 11))
    assert enc.image_tokenizer and enc.modality_embed and enc.rope_interleaved and enc.rope_rescale == 16
    assert (pred.dim, pred.depth, pred.heads, pred.num_mask_tokens) == (40, 4, 2, 8)
    if name == "v21_tiny_g":  # reads and predicts the 4 levels
        assert (pred.enc_dim, pred.embed_hidden, pred.pred_dim) == (128, 32, 128)
    else:  # reads the plain output, predicts the teacher's width
        assert (pred.enc_dim, pred.embed_hidden, pred.pred_dim) == (32, 0, 48)


# Each fixture has one wide input of its own: an image for g, a 2-frame video for dist.
ENCODER_INPUTS = [(name, clip) for name in FIXTURES for clip in ("video", "video_ns", "image")] + [
    ("v21_tiny_g", "image_wide"),
    ("v21_tiny_dist", "video_wide"),
]


@pytest.mark.parametrize(("name", "clip"), ENCODER_INPUTS)
def test_encoder_plain_and_levels(fixtures21, name, clip):
    model, io = _load(fixtures21, name)
    x = _clip(io[f"{clip}.x"])
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x), io[f"{clip}.out"], **ATOL)
        levels = model.encode(x, levels=True)
        torch.testing.assert_close(levels, io[f"{clip}.hier"], **ATOL)
        # out_layers gives the levels one by one
        chunks = model.encode(x, out_layers=list(model.encoder.cfg.level_layers))
        torch.testing.assert_close(torch.cat(chunks, dim=-1), levels, atol=0, rtol=0)
    assert model._modality == ("image" if clip.startswith("image") else "video")


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("clip", ["video", "image"])
def test_masked_context_encoding(fixtures21, name, clip):
    model, io = _load(fixtures21, name)
    x, ctx = _clip(io[f"{clip}.x"]), io[f"{clip}.ctx_idx"]
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x, context_idx=ctx), io[f"{clip}.ctx_out"], **ATOL)
        torch.testing.assert_close(
            model.encode(x, context_idx=ctx, levels=True), io[f"{clip}.ctx_hier"], **ATOL
        )


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("clip,mask_index", [("video", 1), ("video", 6), ("image", 1)])
def test_predictor(fixtures21, name, clip, mask_index):
    model, io = _load(fixtures21, name)
    x, ctx, tgt = _clip(io[f"{clip}.x"]), io[f"{clip}.ctx_idx"], io[f"{clip}.tgt_idx"]
    levels = model.predictor.cfg.embed_hidden > 0  # g/G read the 4-level output
    with torch.no_grad():
        tokens = model.encode(x, context_idx=ctx, levels=levels)  # what the predictor reads
        pred, context = model.predict(tokens, ctx, tgt, mask_index=mask_index, return_context=True)
        torch.testing.assert_close(pred, io[f"{clip}.pred_m{mask_index}.out"], **ATOL)
        torch.testing.assert_close(context, io[f"{clip}.pred_m{mask_index}.ctx"], **ATOL)
        # the same inputs given by hand (the fixture's predictor input, explicit modality)
        key = "ctx_hier" if levels else "ctx_out"
        alone = model.predict(io[f"{clip}.{key}"], ctx, tgt, mask_index=mask_index, modality=clip)
        torch.testing.assert_close(alone, io[f"{clip}.pred_m{mask_index}.out"], **ATOL)


def test_mistakes_the_fixtures_catch(fixtures21):
    """The tests above can fail: a 2-frame clip is not an image, the wrong modality or mask token
    changes the prediction, the online encoder is not the EMA one."""
    model, io = _load(fixtures21, "v21_tiny_g")
    image = _clip(io["image.x"])
    with torch.no_grad():
        as_video = model.encode(image.repeat(1, 2, 1, 1, 1))  # the 2.0 habit
        assert (as_video - io["image.out"]).abs().max() > 0.1
        ctx, tgt = io["video.ctx_idx"], io["video.tgt_idx"]
        model.encode(_clip(io["video.x"]))
        pred = model.predict(io["video.ctx_hier"], ctx, tgt, modality="image")
        assert (pred - io["video.pred_m1.out"]).abs().max() > 0.1
        pred = model.predict(io["video.ctx_hier"], ctx, tgt, mask_index=0)
        assert (pred - io["video.pred_m1.out"]).abs().max() > 0.1
        online = vjepa2.load(fixtures21 / "v21_tiny_g.pt", encoder_key="encoder", **HEADS)
        assert (online.encode(_clip(io["video.x"])) - io["video.out"]).abs().max() > 0.1


def test_wrong_keys_and_wrong_version_fail_loudly(fixtures21, tmp_path):
    ckpt = torch.load(fixtures21 / "v21_tiny_dist.pt", weights_only=True)
    state = ckpt["ema_encoder"]
    del state["module.backbone.norms_block.2.weight"]
    state["module.backbone.norm.weight"] = torch.ones(32)
    torch.save(ckpt, tmp_path / "broken.pt")
    with pytest.raises(UserError) as err:
        vjepa2.load(tmp_path / "broken.pt", **HEADS)
    msg = str(err.value)
    assert "broken.pt [ema_encoder] (read as a V-JEPA 2.1 encoder)" in msg
    assert "level_norms.2.weight" in msg and "unexpected keys (1): ['norm.weight']" in msg
    # 2.1 weights in a folder whose config says 2.0
    model = vjepa2.load(fixtures21 / "v21_tiny_g.pt", **HEADS)
    model.save(tmp_path / "ours")
    config = (tmp_path / "ours" / "config.json").read_text()
    (tmp_path / "ours" / "config.json").write_text(config.replace('"version": "2.1"', '"version": "2.0"'))
    with pytest.raises(UserError, match=r"config.json \[encoder\]: a V-JEPA 2.0 encoder has no 2.1 options"):
        vjepa2.load(tmp_path / "ours")


def test_our_format_keeps_the_version(fixtures21, tmp_path):
    model, io = _load(fixtures21, "v21_tiny_g")
    model.save(tmp_path / "ours")
    back = vjepa2.load(tmp_path / "ours")
    assert back.version == "2.1" and back.encoder.cfg == model.encoder.cfg
    with torch.no_grad():
        torch.testing.assert_close(back.encode(_clip(io["video.x"]), levels=True), io["video.hier"], **ATOL)
