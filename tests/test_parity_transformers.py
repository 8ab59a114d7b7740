"""Parity with the independent `transformers` implementation (VJEPA2Model) on random weights."""

import pytest
import torch
import transformers  # a core dependency: missing, this module fails rather than skips

import vjepa2


def hf_model(tmp_path, **overrides):
    cfg = dict(
        crop_size=64,
        frames_per_clip=8,
        patch_size=16,
        tubelet_size=2,
        hidden_size=128,
        num_attention_heads=2,
        num_hidden_layers=2,
        mlp_ratio=4.0,
        pred_hidden_size=64,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=2,
        pred_num_mask_tokens=4,
    )
    cfg.update(overrides)
    torch.manual_seed(0)
    model = transformers.VJEPA2Model(transformers.VJEPA2Config(**cfg)).eval()
    with torch.no_grad():  # non-zero mask tokens and biases, so every weight matters
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "hf")
    return model, tmp_path / "hf"


def random_masks(batch, n_tokens, n_context, seed):
    g = torch.Generator().manual_seed(seed)
    perm = torch.stack([torch.randperm(n_tokens, generator=g) for _ in range(batch)])
    context = perm[:, :n_context].sort(dim=1).values
    target = perm[:, n_context:].sort(dim=1).values
    return context, target


@pytest.mark.parametrize("heads", [2, 4])
def test_encoder_and_full_mask_predictor(tmp_path, heads):
    hf, path = hf_model(tmp_path, num_attention_heads=heads)
    ours = vjepa2.load(path)
    video = torch.randn(2, 8, 3, 64, 64)
    with torch.no_grad():
        ref = hf(pixel_values_videos=video)
        tokens = ours.encode(video)
        full = torch.arange(tokens.shape[1]).expand(2, -1)
        preds = ours.predict(tokens, full, full)
    assert (tokens - ref.last_hidden_state).abs().max() < 1e-4
    assert (preds - ref.predictor_output.last_hidden_state).abs().max() < 1e-4


def test_partial_and_multiple_masks(tmp_path):
    hf, path = hf_model(tmp_path)
    ours = vjepa2.load(path)
    video = torch.randn(2, 8, 3, 64, 64)
    masks = [random_masks(2, 64, k, seed) for seed, k in enumerate((20, 37))]
    context = [m[0] for m in masks[:1]]
    target = [m[1][:, :30] for m in masks[:1]]
    with torch.no_grad():
        ref = hf(pixel_values_videos=video, context_mask=context, target_mask=target)
        tokens = ours.encode(video)
        preds = ours.predict(tokens, context[0], target[0])
        assert (preds - ref.predictor_output.last_hidden_state).abs().max() < 1e-4
        # several mask sets, stacked along the batch; transformers' own multi-set path breaks on
        # batch sizes > 1, so its reference is one call per set
        context = [random_masks(2, 64, 24, s)[0] for s in (5, 6)]
        target = [random_masks(2, 64, 24, s)[1][:, :16] for s in (7, 8)]
        refs = [
            hf(
                pixel_values_videos=video, context_mask=[c], target_mask=[t]
            ).predictor_output.last_hidden_state
            for c, t in zip(context, target)
        ]
        preds = ours.predict(tokens, context, target)
    assert preds.shape == (4, 16, 128)
    assert (preds - torch.cat(refs)).abs().max() < 1e-4


def test_export_round_trip(tmp_path):
    _, path = hf_model(tmp_path)
    ours = vjepa2.load(path)
    out = vjepa2.export_transformers(ours, tmp_path / "exported")
    again = transformers.VJEPA2Model.from_pretrained(out).eval()
    video = torch.randn(1, 4, 3, 64, 64)
    c, t = random_masks(1, 32, 12, 3)
    with torch.no_grad():
        ref = again(pixel_values_videos=video, context_mask=[c], target_mask=[t])
        tokens = ours.encode(video)
        assert (tokens - ref.last_hidden_state).abs().max() < 1e-4
        assert (ours.predict(tokens, c, t) - ref.predictor_output.last_hidden_state).abs().max() < 1e-4


def test_reference_to_ours_to_transformers(fixtures_dir, tmp_path):
    """Reference layout -> our format -> transformers layout keeps the reference's outputs."""
    from safetensors.torch import load_file

    io = load_file(fixtures_dir / "pretrain_tiny_io.safetensors")
    vjepa2.load(fixtures_dir / "pretrain_tiny.pt").save(tmp_path / "ours")
    ours = vjepa2.load(tmp_path / "ours")
    hf = transformers.VJEPA2Model.from_pretrained(
        vjepa2.export_transformers(ours, tmp_path / "hf", crop_size=64)
    ).eval()
    with torch.no_grad():
        out = hf(
            pixel_values_videos=io["video"], context_mask=[io["context_idx"]], target_mask=[io["target_idx"]]
        )
    torch.testing.assert_close(out.last_hidden_state, io["target_encoder_out"], atol=1e-4, rtol=0)
    torch.testing.assert_close(
        out.predictor_output.last_hidden_state, io["predictor_out_mask_index_1"], atol=1e-4, rtol=0
    )
