"""int8 inference: dynamic int8 Linear layers for the encoder (extract) and the world model (plan)."""

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_planning import _frames, _world_model

from vjepa2.checkpoints.loading import held, random_model
from vjepa2.cli import main
from vjepa2.data.video import write_video
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.precision import choose_dtype, resolve_dtype
from vjepa2.models.presets import encoder_config
from vjepa2.models.quantize import is_quantized, quantize_int8
from vjepa2.planning.cem import CEMConfig
from vjepa2.planning.mpc import Planner, PlannerConfig
from vjepa2.runtime.process import compile_encoder


def test_quantized_encoder_is_close_to_fp32_and_the_original_is_kept():
    torch.manual_seed(0)
    encoder = VideoEncoder(encoder_config("tiny", depth=2, heads=3)).eval()
    int8 = quantize_int8(encoder)
    assert is_quantized(int8) and not is_quantized(encoder)
    video = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        ref, out = encoder(video), int8(video)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    cos = F.cosine_similarity(out, ref, dim=-1)
    assert cos.min() > 0.99 and not torch.equal(out, ref)  # close, but really int8


@pytest.mark.skipif(shutil.which("c++") is None, reason="torch.compile on the CPU needs a C++ compiler")
def test_int8_encoder_compiles_and_agrees_with_eager():
    """``--dtype int8 --compile``: torch.compile traces the quantized Linear layers (inductor on
    the CPU) and the compiled encoder gives the eager one's tokens."""
    model = held(random_model("tiny", predictor=False, depth=2), "int8")
    video = torch.randn(1, 4, 3, 64, 64)
    with torch.no_grad():
        eager = model.encode(video)
        compiled = compile_encoder(model, True).encode(video)
    assert is_quantized(model.encoder) and compiled.shape == eager.shape
    assert F.cosine_similarity(compiled, eager, dim=-1).min() > 0.9999


def test_int8_is_for_cpu_inference_only():
    assert resolve_dtype("int8", "cpu", inference=True) == "int8"
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        resolve_dtype("int8", "cpu")  # training
    with pytest.raises(ValueError, match="CPU only"):
        choose_dtype("int8", "cuda", inference=True)


def extract_tokens(tmp_path, dtypes) -> dict:
    """``vjepa2 extract`` of one random video with random:tiny, per dtype: {dtype: tokens}."""
    rng = np.random.default_rng(0)
    write_video(tmp_path / "a.mp4", rng.integers(0, 255, (8, 48, 48, 3), dtype=np.uint8), fps=8)
    feats = {}
    for dtype in dtypes:
        out = tmp_path / dtype
        args = [str(tmp_path / "a.mp4"), "--encoder", "random:tiny", "--out", str(out), "--num-frames", "4"]
        assert main(["extract", *args, "--crop", "32", "--pooling", "none", f"dtype={dtype}"]) == 0
        feats[dtype] = torch.from_numpy(np.load(out / "a.npy"))
    return feats


def test_extract_int8_agrees_with_fp32(tmp_path):
    feats = extract_tokens(tmp_path, ("fp32", "int8"))
    assert F.cosine_similarity(feats["int8"], feats["fp32"], dim=-1).min() > 0.99
    assert not torch.equal(feats["int8"], feats["fp32"])


def test_int8_planner_predicts_like_fp32_and_leaves_the_model_alone():
    model = _world_model()
    cem = CEMConfig(samples=16, iterations=2, elites=4, horizon=2, bound="l1", radius=0.5)
    fp32 = Planner(model, PlannerConfig(cem=cem, dtype="fp32"))
    int8 = Planner(model, PlannerConfig(cem=cem, dtype="int8"))
    assert is_quantized(int8.model.predictor) and is_quantized(int8.model.encoder)
    assert not is_quantized(model.predictor) and fp32.model is model
    frames, state = _frames(2), torch.tensor([0.5, 0.5])
    actions = torch.randn(8, 2, 2) * 0.1
    with torch.no_grad():
        latents = [p.model.rollout(p.model.encode(frames[0])[0], state, actions) for p in (fp32, int8)]
    assert F.cosine_similarity(latents[0], latents[1], dim=-1).min() > 0.99
    action = int8.act(frames[0], frames[1], state=np.array([0.5, 0.5]))
    assert action.shape == (2,) and np.abs(action).sum() <= 0.5 + 1e-5
