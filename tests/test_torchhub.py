"""torch.hub: every entry of hubconf.py loads through ``torch.hub.load(<this checkout>, ...,
source="local")`` and returns what the reference's returns, called as the reference's.

Shapes: every backbone at full width, built on the meta device (a random ViT-g costs ~4 GB and
minutes on two cores; meta tensors carry shapes only). Numbers: tiny files in the reference
layout served under the released names by a loopback mirror (``VJEPA2_MIRROR``); with the
reference fixtures, the outputs the reference code computed, through the reference's call
convention (clips (B, C, T, H, W), masks as index tensors, 2.1 ``(pred, ctx)``).
"""

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch
from release_server import WeightsServer, reference_checkpoint
from safetensors.torch import load_file

import vjepa2
from vjepa2.weights import http

ROOT = Path(__file__).resolve().parents[1]
ATOL = dict(atol=1e-5, rtol=0)
# entry -> (encoder width, depth, heads, predictor class, predictor output width)
ENTRIES = {
    "vjepa2_vit_large": (1024, 24, 16, "HubPredictor", 1024),
    "vjepa2_vit_huge": (1280, 32, 16, "HubPredictor", 1280),
    "vjepa2_vit_giant": (1408, 40, 22, "HubPredictor", 1408),
    "vjepa2_vit_giant_384": (1408, 40, 22, "HubPredictor", 1408),
    "vjepa2_ac_vit_giant": (1408, 40, 22, "HubACPredictor", 1408),
    "vjepa2_1_vit_base_384": (768, 12, 12, "HubPredictor21", 1664),
    "vjepa2_1_vit_large_384": (1024, 24, 16, "HubPredictor21", 1664),
    "vjepa2_1_vit_giant_384": (1408, 40, 22, "HubPredictor21", 4 * 1408),
    "vjepa2_1_vit_gigantic_384": (1664, 48, 26, "HubPredictor21", 4 * 1664),
}


def hub_load(name, **kwargs):
    return torch.hub.load(str(ROOT), name, source="local", **kwargs)


def test_hubconf_names_the_reference_entries_and_importable_dependencies():
    spec = importlib.util.spec_from_file_location("hubconf_under_test", ROOT / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    assert set(ENTRIES) | {"vjepa2_preprocessor"} <= set(dir(hubconf))
    assert all(importlib.util.find_spec(name) for name in hubconf.dependencies)


@pytest.mark.parametrize("name", list(ENTRIES))
def test_every_entry_builds_with_the_released_shapes(name):
    dim, depth, heads, predictor_class, out = ENTRIES[name]
    with torch.device("meta"):  # shapes only
        encoder, predictor = hub_load(name, pretrained=False)
        assert (encoder.embed_dim, encoder.get_num_layers(), encoder.num_heads) == (dim, depth, heads)
        assert type(predictor).__name__ == predictor_class
        video = torch.randn(2, 3, 4, 64, 64)  # (B, C, T, H, W): 2 x 4 x 4 tokens
        assert encoder(video).shape == (2, 32, dim)
        keep = torch.arange(8).expand(2, -1)
        assert encoder(video, masks=keep).shape == (2, 8, dim)
        if predictor_class == "HubACPredictor":
            actions = torch.randn(2, 2, 7)
            tokens = torch.randn(2, 2 * 16 * 16, dim)  # 2 frames at 256 px: the hub's 16 x 16 grid
            assert predictor(tokens, actions, actions).shape == (2, 512, dim)
            return
        targets = torch.arange(8, 12).expand(2, -1)
        levels = predictor.predictor.cfg.enc_dim == 4 * dim  # 2.1 g/G read the 4-level output
        tokens = encoder(video, masks=keep, training=levels)
        assert tokens.shape[-1] == predictor.predictor.cfg.enc_dim
        result = predictor(tokens, keep, targets)
        if predictor_class == "HubPredictor21":
            pred, ctx = result
            assert pred.shape == (2, 4, out) and ctx.shape == (2, 8, out)
            assert encoder(torch.randn(2, 3, 1, 64, 64)).shape == (2, 16, dim)  # an image: one frame
        else:
            assert result.shape == (2, 4, out)


def test_unknown_or_architecture_changing_keywords_are_refused():
    with torch.device("meta"):
        hub_load("vjepa2_vit_large", pretrained=False, use_rope=True, use_sdpa=True)  # the release's values
        with pytest.raises(TypeError, match="unexpected keyword argument 'embed_dim'"):
            hub_load("vjepa2_vit_large", pretrained=False, embed_dim=32)
        with pytest.raises(ValueError, match="use_rope=False is not available"):
            hub_load("vjepa2_vit_large", pretrained=False, use_rope=False)


def test_the_preprocessor_is_the_eval_transform_in_the_reference_layout():
    processor = hub_load("vjepa2_preprocessor", crop_size=64)
    frames = torch.randint(0, 256, (4, 72, 96, 3), dtype=torch.uint8)
    (clip,) = processor(frames)
    want = vjepa2.preprocess(frames, crop=64).transpose(0, 1)  # (C, T, crop, crop)
    assert clip.shape == (3, 4, 64, 64) and torch.equal(clip, want)
    assert torch.equal(processor(frames.permute(0, 3, 1, 2))[0], want)  # (T, C, H, W), as the demo passes
    assert torch.equal(processor(frames.numpy())[0], want)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """``mirror({released file name: source file})``: those files on a loopback server that
    VJEPA2_MIRROR points at, with a fresh cache."""
    monkeypatch.setenv("VJEPA2_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VJEPA2_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(http, "BACKOFF", 0.0)
    servers = []

    def serve(files: dict) -> WeightsServer:
        root = tmp_path / "release"
        for name, source in files.items():
            root.mkdir(exist_ok=True)
            shutil.copy(source, root / name)
        server = WeightsServer(root).__enter__()
        servers.append(server)
        monkeypatch.setenv("VJEPA2_MIRROR", server.url)
        return server

    yield serve
    for server in servers:
        server.__exit__(None, None, None)


def test_pretrained_weights_come_through_the_mirror(mirror, tmp_path):
    model = reference_checkpoint(tmp_path / "made" / "vitl.pt")
    server = mirror({"vitl.pt": tmp_path / "made" / "vitl.pt"})
    encoder, predictor = hub_load("vjepa2_vit_large", img_size=64, num_frames=4)
    assert server.requests == [("/vitl.pt", None)]
    video = torch.randn(1, 4, 3, 64, 64)  # ours: (B, T, C, H, W)
    keep, targets = torch.arange(16)[None], torch.arange(16, 32)[None]
    with torch.no_grad():
        assert torch.equal(encoder(video.transpose(1, 2)), model.encode(video))
        tokens = model.encode(video)
        assert torch.equal(predictor(tokens[:, :16], keep, targets), model.predict(tokens, keep, targets))
    assert (tmp_path / "cache" / "vitl.pt").is_file()


def test_reference_outputs_through_the_reference_calls_20_and_ac(fixtures_dir, mirror):
    mirror({"vitl.pt": fixtures_dir / "pretrain_tiny.pt", "vjepa2-ac-vitg.pt": fixtures_dir / "ac_tiny.pt"})
    io = load_file(fixtures_dir / "pretrain_tiny_io.safetensors")
    encoder, predictor = hub_load("vjepa2_vit_large", img_size=64, num_frames=8)
    with torch.no_grad():
        tokens = encoder(io["video"].transpose(1, 2))  # the reference takes (B, C, T, H, W)
        torch.testing.assert_close(tokens, io["target_encoder_out"], **ATOL)
        context = torch.gather(tokens, 1, io["context_idx"][..., None].expand(-1, -1, tokens.shape[-1]))
        out = predictor(context, io["context_idx"], io["target_idx"])
        torch.testing.assert_close(out, io["predictor_out_mask_index_1"], **ATOL)
        out = predictor(context, [io["context_idx"]], [io["target_idx"]], mask_index=0)
        torch.testing.assert_close(out, io["predictor_out_mask_index_0"], **ATOL)
    ac_io = load_file(fixtures_dir / "ac_tiny_io.safetensors")
    _, ac = hub_load("vjepa2_ac_vit_giant", img_size=64)
    with torch.no_grad():
        out = ac(ac_io["frame_tokens"], ac_io["actions"], ac_io["states"])
    torch.testing.assert_close(out, ac_io["ac_predictor_out"], **ATOL)


@pytest.mark.parametrize(
    "entry, file, fixture, img_size",
    [
        ("vjepa2_1_vit_giant_384", "vjepa2_1_vitg_384.pt", "v21_tiny_g", 64),
        ("vjepa2_1_vit_base_384", "vjepa2_1_vitb_dist_vitG_384.pt", "v21_tiny_dist", 48),
    ],
)
def test_reference_outputs_through_the_reference_calls_21(
    fixtures_dir, mirror, entry, file, fixture, img_size
):
    folder = fixtures_dir.parent / "reference21"
    if not folder.is_dir():
        pytest.skip(f"2.1 reference fixtures not found at {folder}")
    mirror({file: folder / f"{fixture}.pt"})
    io = load_file(folder / f"{fixture}_io.safetensors")
    # the fixtures' widths are no release's: their head counts are given (the hub passes kwargs on)
    encoder, predictor = hub_load(entry, img_size=img_size, num_frames=16, num_heads=2)
    levels = predictor.predictor.cfg.embed_hidden > 0  # g/G read the 4-level output
    with torch.no_grad():
        for clip in ("video", "image"):
            x, mod = io[f"{clip}.x"], clip
            torch.testing.assert_close(encoder(x), io[f"{clip}.out"], **ATOL)
            torch.testing.assert_close(encoder(x, training=True), io[f"{clip}.hier"], **ATOL)
            context = encoder(x, masks=io[f"{clip}.ctx_idx"], training=levels)
            torch.testing.assert_close(
                context, io[f"{clip}.ctx_hier" if levels else f"{clip}.ctx_out"], **ATOL
            )
            pred, ctx = predictor(context, io[f"{clip}.ctx_idx"], io[f"{clip}.tgt_idx"], mod)
            torch.testing.assert_close(pred, io[f"{clip}.pred_m1.out"], **ATOL)
            torch.testing.assert_close(ctx, io[f"{clip}.pred_m1.ctx"], **ATOL)
        context = encoder(io["video.x"], masks=io["video.ctx_idx"], training=levels)
        pred, ctx = predictor(context, io["video.ctx_idx"], io["video.tgt_idx"], mask_index=6)
        torch.testing.assert_close(pred, io["video.pred_m6.out"], **ATOL)
        encoder.return_hierarchical = True
        torch.testing.assert_close(encoder(io["video.x"]), io["video.hier"], **ATOL)
