"""Eval transform against transformers' VJEPA2 processor and PIL; the training augmentation."""

import numpy as np
import pytest
import torch
from PIL import Image

from vjepa2.data import transforms
from vjepa2.data.clips import transform_clips
from vjepa2.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    eval_transform,
    repeat_image,
    sample_crop_box,
    short_side_size,
    train_transform,
)

ONE_LEVEL = 1 / 255 / min(IMAGENET_STD)  # one uint8 grey level after normalisation, ~0.0175


def random_video(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def pil_eval(frames, crop):
    """The eval recipe written with PIL: bilinear (antialiased) resize, center crop, normalise."""
    short = int(crop * 256 / 224)
    height, width = frames.shape[1:3]
    size = (short, int(short * width / height)) if height <= width else (int(short * height / width), short)
    resized = np.stack([np.asarray(Image.fromarray(f).resize(size[::-1], Image.BILINEAR)) for f in frames])
    top, left = int((size[0] - crop) / 2), int((size[1] - crop) / 2)
    window = resized[:, top : top + crop, left : left + crop] / 255.0
    return torch.from_numpy((window - IMAGENET_MEAN) / IMAGENET_STD).permute(0, 3, 1, 2).float()


def test_resize_sizes():
    assert short_side_size(480, 640, int(256 * 256 / 224)) == (292, 389)
    assert short_side_size(640, 480, int(384 * 256 / 224)) == (584, 438)


@pytest.mark.parametrize(
    "shape,crop", [((3, 100, 130, 3), 64), ((2, 300, 200, 3), 256), ((2, 50, 60, 3), 96)]
)
def test_eval_transform_matches_transformers(shape, crop):
    # transformers' video processors need torchvision, which this project does not depend on.
    pytest.importorskip("torchvision")
    from transformers.models.vjepa2.video_processing_vjepa2 import VJEPA2VideoProcessor

    video = random_video(shape)
    expected = VJEPA2VideoProcessor(crop_size=crop)(video, return_tensors="pt")["pixel_values_videos"][0]
    ours = eval_transform(video, crop)
    assert ours.shape == expected.shape == (shape[0], 3, crop, crop)
    # Both resize uint8 with the same torch kernel: only float rounding of the normalisation differs.
    assert (ours - expected).abs().max() < 1e-5


@pytest.mark.parametrize(
    "shape,crop", [((3, 100, 130, 3), 64), ((2, 300, 200, 3), 256), ((2, 50, 60, 3), 96)]
)
def test_eval_transform_matches_pil(shape, crop):
    video = random_video(shape, seed=1)
    ours = eval_transform(video, crop)
    gap = (ours - pil_eval(video, crop)).abs()
    # PIL and torch's uint8 antialiased bilinear differ by at most one level, on few pixels.
    assert gap.max() <= ONE_LEVEL + 1e-5
    assert (gap > 1e-4).float().mean() < 0.05


def test_eval_transform_inputs_agree():
    video = random_video((2, 40, 52, 3), seed=2)
    from_numpy = eval_transform(video, 32)
    assert from_numpy.dtype == torch.float32 and from_numpy.shape == (2, 3, 32, 32)
    torch.testing.assert_close(eval_transform(torch.from_numpy(video), 32), from_numpy)
    # Float input takes the float-then-round path: within one level of the uint8 kernel.
    assert (eval_transform(torch.from_numpy(video).double(), 32) - from_numpy).abs().max() <= ONE_LEVEL + 1e-5
    grey = eval_transform(video[..., :1], 32)
    assert grey.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="expected frames"):
        eval_transform(video[0], 32)


def test_eval_transform_constant_frame_normalises_exactly():
    video = np.full((1, 40, 60, 3), (124, 116, 104), np.uint8)
    out = eval_transform(video, 32)
    expected = (np.array([124, 116, 104]) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    torch.testing.assert_close(out.mean((0, 2, 3)), torch.tensor(expected, dtype=torch.float32))


def test_crop_boxes_respect_scale_and_aspect():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = sample_crop_box(120, 160, (0.3, 1.0), (0.75, 1.35), rng)
        assert 0 <= top <= 120 - h and 0 <= left <= 160 - w
        assert 0.3 * 120 * 160 * 0.9 <= h * w <= 120 * 160  # rounding of w, h
        assert 0.75 - 0.05 <= w / h <= 1.35 + 0.05
    # A strip no box fits: the central box of the widest allowed aspect ratio.
    assert sample_crop_box(10, 1000, (0.3, 1.0), (0.75, 1.35), rng) == (0, 493, 10, 14)


def test_train_transform_is_seeded_and_crops_all_frames_alike(monkeypatch):
    base = random_video((1, 64, 80, 3), seed=3) // 2
    video = base + (20 * np.arange(4, dtype=np.uint8))[:, None, None, None]  # frame t = base + 20 t
    calls = []
    real = transforms.F.interpolate
    monkeypatch.setattr(transforms.F, "interpolate", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = train_transform(video, crop=32, rng=np.random.default_rng(5))
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32 and len(calls) == 1
    torch.testing.assert_close(out, train_transform(video, crop=32, rng=np.random.default_rng(5)))
    assert not torch.allclose(out, train_transform(video, crop=32, rng=np.random.default_rng(6)))
    # Same crop and flip for every frame: frame t differs from frame 0 by 20 t levels everywhere.
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    for t in range(1, 4):
        torch.testing.assert_close(out[t] - out[0], (20 * t / 255 / std).expand(3, 32, 32), atol=1e-4, rtol=0)


def test_train_transform_flip():
    video = random_video((2, 48, 48, 3), seed=4)
    plain = train_transform(
        video, crop=24, scale=(1, 1), ratio=(1, 1), flip_prob=0.0, rng=np.random.default_rng(0)
    )
    flipped = train_transform(
        video, crop=24, scale=(1, 1), ratio=(1, 1), flip_prob=1.0, rng=np.random.default_rng(0)
    )
    torch.testing.assert_close(flipped, plain.flip(-1))
    flips = [
        bool(torch.equal(train_transform(video, 24, (1, 1), (1, 1), rng=np.random.default_rng(s)), plain))
        for s in range(40)
    ]
    assert 8 < sum(flips) < 32  # p = 0.5


def test_repeat_image():
    image = random_video((1, 5, 7, 3))[0]
    clip = repeat_image(image, 4)
    assert clip.shape == (4, 5, 7, 3) and all(np.array_equal(frame, image) for frame in clip)


def test_transform_clips_is_the_one_clip_transform_per_clip():
    """Many clips in one call give what each clip gives alone: eval (one resize over every frame)
    and train (each clip its own crop and flip, drawn in order from one generator)."""
    frames = random_video((3, 4, 37, 53, 3))
    each = torch.stack([eval_transform(clip, 24) for clip in frames])
    assert torch.equal(transform_clips(frames, 24), each)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    each = torch.stack([train_transform(clip, 24, rng=rng_a) for clip in frames])
    assert torch.equal(transform_clips(frames, 24, train=True, rng=rng_b), each)
