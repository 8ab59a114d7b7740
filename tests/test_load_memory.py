"""Loading a checkpoint costs the memory of the model it makes, not of the file or of an fp32 copy.

Released reference files hold two encoders, the predictor and optimizer state where one encoder
is wanted: ``load`` maps the file instead of reading it, builds the modules on the meta device
(no random init) and lets the file's tensors be the weights, so a model held in bf16 never has an
fp32 copy. Memory here is a fresh process's anonymous resident memory while it loads (Linux):
the pages of a mapped file are the file's, not the process's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vjepa2.checkpoints import keymaps as km
from vjepa2.checkpoints.files import read_torch
from vjepa2.checkpoints.loading import load, random_model
from vjepa2.models.held import held_dtype, weight_bytes

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")


def _reference_file(path, depth: int = 2, preset: str = "vitl"):
    """A reference-layout file as released: online and EMA encoder (``preset``'s widths,
    ``depth`` blocks), plus optimizer state as large again; returns the file and its encoder."""
    encoder = random_model(preset, predictor=False, depth=depth).encoder
    theirs = km.to_theirs(encoder.state_dict(), km.REFERENCE_ENCODER)
    online = {f"module.backbone.{k}": v.clone() for k, v in theirs.items()}
    ema = {f"module.backbone.{k}": v for k, v in theirs.items()}
    opt = {"state": {i: {"exp_avg": torch.zeros_like(v)} for i, v in enumerate(theirs.values())}}
    torch.save({"encoder": online, "target_encoder": ema, "opt": opt, "epoch": 3}, path)
    return path, encoder


PEAK_SCRIPT = """
import sys, threading, time
from pathlib import Path
import torch
from vjepa2.checkpoints.loading import load

def anonymous():  # bytes of anonymous resident memory: a mapped file's pages are not counted
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024

load(sys.argv[3], dtype=sys.argv[2])  # a tiny model first: what the first load imports and sets up
before, peak, done = anonymous(), [0], threading.Event()
def watch():
    while not done.is_set():
        peak[0] = max(peak[0], anonymous())
        time.sleep(0.0005)
watcher = threading.Thread(target=watch)
watcher.start()
model = load(sys.argv[1], dtype=sys.argv[2])
done.set()
watcher.join()
print(max(peak[0], anonymous()) - before)
"""


def _peak_anonymous(path, dtype: str) -> int:
    """The most anonymous memory (bytes over the start) a fresh process held while loading
    ``path`` in ``dtype``, sampled every half millisecond, after a tiny model's load."""
    warm_up, _ = _reference_file(path.parent / "tiny.pt", depth=1, preset="tiny")
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path), dtype, str(warm_up)], capture_output=True, text=True, check=True)  # fmt: skip
    return int(out.stdout.split()[-1])


def _mapped_from(tensor: torch.Tensor, path) -> bool:
    """Whether ``tensor``'s data lies in a memory mapping of ``path`` (/proc/self/maps)."""
    address = tensor.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        span, *_, name = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in span.split("-"))
        if name == str(path) and start <= address < end:
            return True
    return False


def test_a_mapped_read_leaves_the_tensors_in_the_file(tmp_path):
    path, _ = _reference_file(tmp_path / "vitl.pt", depth=1)
    ckpt = read_torch(path, mapped=True)
    weight = ckpt["target_encoder"]["module.backbone.blocks.0.attn.qkv.weight"]
    assert _mapped_from(weight, path)
    assert read_torch(path)["epoch"] == 3


def test_a_file_in_the_old_format_is_read_whole(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"w": torch.arange(4.0)}, path, _use_new_zipfile_serialization=False)
    assert torch.equal(read_torch(path, mapped=True)["w"], torch.arange(4.0))


def test_loading_fp32_copies_nothing(tmp_path):
    path, encoder = _reference_file(tmp_path / "vitl.pt")
    peak = _peak_anonymous(path, "fp32")
    model = load(path)
    fp32_bytes = weight_bytes(encoder)
    assert peak < 0.25 * fp32_bytes, f"loading held {peak / 1e6:.0f} MB for a {fp32_bytes / 1e6:.0f} MB model"
    clip = torch.randn(1, 2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(model.encode(clip), encoder.eval()(clip))
    assert _mapped_from(model.encoder.blocks[1].mlp.fc1.weight, path)


@pytest.mark.parametrize("dtype", ["bf16", "int8"])
def test_loading_low_precision_never_holds_the_fp32_model(tmp_path, dtype):
    path, encoder = _reference_file(tmp_path / "vitl.pt")
    peak = _peak_anonymous(path, dtype)
    fp32_bytes = weight_bytes(encoder)
    # the held weights (bf16 half, int8 a quarter, fp32 norms and biases); the fp32 model or the
    # file read whole would be 1x and more
    assert peak < 0.7 * fp32_bytes, f"loading held {peak / 1e6:.0f} MB for a {fp32_bytes / 1e6:.0f} MB model"
    model = load(path, dtype=dtype)
    assert held_dtype(model) == dtype
