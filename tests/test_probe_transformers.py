"""Probe parity with transformers' VJEPA2ForVideoClassification, and the export round trip."""

import pytest
import torch

import vjepa2

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_classifier(tmp_path_factory):
    cfg = transformers.VJEPA2Config(
        crop_size=32, frames_per_clip=4, hidden_size=128, num_attention_heads=2, num_hidden_layers=2,
        pred_hidden_size=64, pred_num_attention_heads=2, pred_num_hidden_layers=1, num_labels=7,
    )  # fmt: skip
    torch.manual_seed(1)
    model = transformers.VJEPA2ForVideoClassification(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("hf") / "cls"
    model.save_pretrained(path)
    return model, path


def test_load_classifier_directory(hf_classifier):
    hf, path = hf_classifier
    model, probe = vjepa2.load(path), vjepa2.load_probe(path)
    video = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        want = hf(pixel_values_videos=video).logits
        got = probe(model.encode(video))
    assert (got - want).abs().max() < 1e-4


def test_export_classifier(hf_classifier, tmp_path):
    hf, path = hf_classifier
    model, probe = vjepa2.load(path), vjepa2.load_probe(path)
    out = vjepa2.export_classifier_transformers(model, probe, tmp_path / "x", labels=list("abcdefg"))
    again = transformers.VJEPA2ForVideoClassification.from_pretrained(out).eval()
    assert again.config.id2label[3] == "d"
    video = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        assert (again(pixel_values_videos=video).logits - probe(model.encode(video))).abs().max() < 1e-4


def test_our_probe_format_round_trip(fixtures_dir, tmp_path):
    probe = vjepa2.load_probe(fixtures_dir / "probe_tiny.pt")
    vjepa2.save_probe(probe, tmp_path / "p", labels=list("vwxyz"))
    again = vjepa2.load_probe(tmp_path / "p")
    tokens = torch.randn(2, 64, 192)
    with torch.no_grad():
        assert torch.equal(again(tokens), probe(tokens))
