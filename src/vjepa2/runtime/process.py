"""``Process``: what every command sets up once before it works, in one place.

The device (``auto``: CUDA when present; under torchrun each rank's own GPU, and the process group
joined), the precision (``dtype``: ``auto`` resolved for that device and said on stderr by the
main process, so config files and caches record what ran) and torch's CPU threads. The training
scaffold (``train.run.Run``) stands on it, and every inference command uses it directly::

    with Process(cfg.device, cfg.dtype, inference=True) as proc:
        model = proc.hold(load_encoder(cfg.encoder, device=proc.device))  # weights held in dtype
        cfg.device, cfg.dtype = str(proc.device), proc.dtype
        ...

``Process.hold`` is the one path from a command's ``dtype`` to its model's weights: bf16 and int8
weights are held in that precision (``models/held.py``), and ``auto`` is settled for the model
(``models/auto_precision.py``: int8 where it is faster on this machine and within its error bound).
"""

from __future__ import annotations

import sys

import torch

from vjepa2.checkpoints.loading import held
from vjepa2.errors import UserError
from vjepa2.models.auto_precision import choose
from vjepa2.models.model import VJEPA2
from vjepa2.models.precision import choose_dtype
from vjepa2.runtime import distributed as dist


class OnDevice:
    """Where a command's process runs, read off its ``DistInfo`` (``Process``, and ``Run`` on it)."""

    info: dist.DistInfo

    @property
    def device(self) -> torch.device:
        return self.info.device

    @property
    def is_main(self) -> bool:
        return self.info.is_main


class Process(OnDevice):
    """device: auto, cpu, cuda, cuda:N; dtype: auto, fp32, bf16 (and int8 with ``inference``);
    threads: torch's CPU threads (0: its default); key: where the options sit in the config, for
    messages (``run.``)."""

    def __init__(self, device: str = "auto", dtype: str = "auto", threads: int = 0,
                 inference: bool = False, key: str = ""):  # fmt: skip
        self.asked = (device, dtype, threads, inference)
        self.key = key
        self.info = dist.DistInfo()
        self.dtype = dtype

    def __enter__(self) -> Process:
        device, dtype, threads, inference = self.asked
        self.info = dist.setup(device)
        try:
            self.dtype = choose_dtype(dtype, self.device, announce=self.is_main, inference=inference)
        except ValueError as err:
            dist.cleanup()
            raise UserError(f"{self.key}dtype: {err}") from None
        if threads > 0:
            torch.set_num_threads(threads)
        return self

    def hold(self, model: VJEPA2, allow_int8: bool = False, compile: bool = False) -> VJEPA2:
        """``model`` (fp32, on this process's device) with its weights held in this process's
        precision. Asked for ``auto``: chosen for this model (``allow_int8``: int8 may win where it
        is faster and within its error bound), said on stderr where it changes; ``self.dtype``
        then records what runs. ``compile``: its encoder compiled (``compile_encoder``)."""
        if self.asked[1] == "auto" and self.asked[3]:
            choice = choose(model.encoder, self.device, allow_int8) if self.is_main else None
            if dist.is_distributed():  # rank 0's choice everywhere: one precision in every output
                choice = dist.all_gather_object(choice)[0]
            if choice.dtype != self.dtype and self.is_main:
                print(f"precision: {choice.dtype} (auto for this model: {choice.reason})", file=sys.stderr)
            self.dtype = choice.dtype
        return compile_encoder(held(model, self.dtype), compile)

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            dist.cleanup(wait=True)  # every rank finishes before any tears the process group down
        dist.cleanup()  # after an error: no waiting for ranks that may have died


COMPILE_HELP = (
    "torch.compile the encoder: the first batch compiles it (about 100 s for ViT-L on a 2-core CPU), "
    "later ones may run faster, so it pays only for long runs"
)


def compile_encoder(model: VJEPA2, compile: bool) -> VJEPA2:
    """``model`` with its encoder compiled in place (``nn.Module.compile``: the module, its weights
    and attributes stay as they are; its calls go through ``torch.compile``) when ``compile``.
    Compile after holding the weights: the graph is traced on the precision that runs. The one
    place a command's ``--compile`` reaches torch.compile (extract, probe eval, classify)."""
    if compile:
        model.encoder.compile()
    return model
