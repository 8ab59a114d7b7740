"""Multi-process training under ``torchrun``; a single process needs (and gets) nothing.

``torchrun --nproc_per_node=N -m vjepa2 pretrain ...`` sets RANK, WORLD_SIZE and LOCAL_RANK;
``setup`` reads them, starts the process group (NCCL on CUDA, Gloo on CPU) and picks this
process's device. Without those variables every helper here degrades to the single-process case,
so the same training code runs on a laptop, one GPU (no "default process group has not been
initialized" errors) and many.
"""

from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint import state_dict as dcp


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the environment of torchrun (or any launcher setting RANK/WORLD_SIZE) is present."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def launch_rank() -> int:
    """This process's rank as its launcher set it (0 when not launched by torchrun); known
    before the process group is joined."""
    return int(os.environ.get("RANK", "0"))


def resolve_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """ "auto" -> this rank's CUDA device if there is one, else CPU; "cuda" -> cuda:<local_rank>."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    return dev


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun; otherwise only resolve the device."""
    if not launched_by_torchrun():
        return DistInfo(device=resolve_device(device))
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size, device_id=_device_id(dev))
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def _device_id(dev: torch.device) -> torch.device | None:
    return dev if dev.type == "cuda" else None


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0 and in a single process: the one that logs and saves checkpoints."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over all ranks (a new tensor; the input itself in a single process)."""
    if not is_distributed():
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def all_gather_object(obj) -> list:
    """``obj`` of every rank, in rank order (picklable objects; ``[obj]`` in a single process)."""
    if not is_distributed():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def cleanup(wait: bool = False) -> None:
    """Leave the process group (safe to call when there is none). ``wait=True`` first waits for
    every rank: gloo can abort a process whose peer tears its sockets down mid-exchange, so a
    normal end of training waits; an error path must not (a dead peer would hang it)."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        gc.collect()  # drop wrapped models (DDP reducers) that still hold the group's threads
        dist.destroy_process_group()


def wrap_model(model: nn.Module, info: DistInfo, mode: str = "ddp", find_unused: bool = False) -> nn.Module:
    """Wrap ``model`` for data-parallel training: "ddp", "fsdp" (FSDP2 ``fully_shard`` per child
    block, then the root) or "none". Single process: the model is returned as it is.
    find_unused: DDP looks for parameters a step leaves without gradient (e.g. a 2.1 encoder's
    image tokenizer in a video-only run); it costs a graph walk per step, so only when needed."""
    if mode not in ("ddp", "fsdp", "none"):
        raise ValueError(f"unknown parallel mode {mode!r}; expected 'ddp', 'fsdp' or 'none'")
    if mode == "none" or not is_distributed():
        return model
    if mode == "ddp":
        ids = [info.device.index] if info.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)
    from torch.distributed.fsdp import fully_shard

    # Shard each transformer block on its own so that only one block is gathered at a time.
    for module in model.modules():
        if isinstance(module, nn.ModuleList):
            for block in module:
                fully_shard(block)
    fully_shard(model)
    return model


def reshard(model: nn.Module) -> None:
    """Put FSDP2 modules back in their sharded state (the root stays unsharded after a forward
    without backward, e.g. the EMA target encoder's); a no-op for other modules."""
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (FSDP2 modules are not wrapped)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@contextlib.contextmanager
def grad_sync(model: nn.Module, enabled: bool):
    """Skip the gradient all-reduce inside the block when not ``enabled`` (the first micro-batches
    of a gradient accumulation); a no-op for a plain module."""
    if enabled:
        yield
    elif isinstance(model, nn.parallel.DistributedDataParallel):
        with model.no_sync():
            yield
    elif hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)
    else:
        yield


_FULL = dcp.StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> tuple[dict, dict | None]:
    """Unsharded CPU state dicts (model, optimizer keyed by parameter name) of a plain, DDP or FSDP2
    model. Under FSDP every rank must call it (the shards are gathered)."""
    model = unwrap(model)
    model_state = dcp.get_model_state_dict(model, options=_FULL)
    optim_state = dcp.get_optimizer_state_dict(model, optimizer, options=_FULL) if optimizer else None
    return model_state, optim_state


def load_full_state(
    model: nn.Module, model_state: dict, optimizer: torch.optim.Optimizer | None = None, optim_state=None
) -> None:
    """Load what ``full_state`` returned (on every rank; FSDP2 keeps only its shard)."""
    model = unwrap(model)
    dcp.set_model_state_dict(model, model_state, options=dcp.StateDictOptions(full_state_dict=True))
    if optimizer is not None and optim_state is not None:
        dcp.set_optimizer_state_dict(
            model, optimizer, optim_state, options=dcp.StateDictOptions(full_state_dict=True)
        )
