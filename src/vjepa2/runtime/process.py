"""``Process``: what every command sets up once before it works, in one place.

The device (``auto``: CUDA when present; under torchrun each rank's own GPU, and the process group
joined), the precision (``dtype``: ``auto`` resolved for that device and said on stderr by the
main process, so config files and caches record what ran) and torch's CPU threads. The training
scaffold (``train.run.Run``) stands on it, and every inference command uses it directly::

    with Process(cfg.device, cfg.dtype, inference=True) as proc:
        cfg.device, cfg.dtype = str(proc.device), proc.dtype
        ...
"""

from __future__ import annotations

import torch

from vjepa2.errors import UserError
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

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            dist.cleanup(wait=True)  # every rank finishes before any tears the process group down
        dist.cleanup()  # after an error: no waiting for ranks that may have died
