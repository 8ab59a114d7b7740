"""The scaffold every training command stands on: one run config and one ``Run`` object.

A command keeps its own config sections, build code and step function; the ``Run`` owns the rest:
the distributed set-up and device, the precision (``run.dtype``, chosen once, here), CPU threads,
the output folder and its ``config.yaml``, the JSONL log and the progress bar, and the
checkpoints (``checkpoints.training``: one schema, written atomically, exact resume). A new
command reads like this (see CONTRIBUTING.md)::

    with Run("my-command", cfg, cfg.run, parallel=("ddp",)) as run:
        nets = build(cfg, run.device)                        # seeded by cfg.run.seed
        step = run.restore(nets.model, nets.optimizer)       # latest.pt -> its step; else 0
        run.start(step, total)                               # folder, config.yaml, log, progress
        while step < run.stop:
            metrics = train_step(cfg, run, step, nets)
            step += 1
            if step % cfg.run.log_every == 0:
                run.log(step, **metrics)                     # log.jsonl, main process only
            if run.checkpoint_due(step):                     # every run.checkpoint_every, and the last
                run.save(step, nets.model, nets.optimizer)
            run.bar.update(1)
        run.finish(step)                                     # says where it wrote
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from vjepa2.checkpoints.files import CheckpointError
from vjepa2.checkpoints.training import (
    LATEST,
    find_latest,
    read_training_state,
    save_checkpoint,
    set_rng_state,
    training_state,
)
from vjepa2.config import opt, save_yaml, to_dict
from vjepa2.errors import UserError
from vjepa2.models.precision import DTYPE_HELP, choose_dtype
from vjepa2.train import distributed as dist
from vjepa2.train.log import MetricsLogger, progress

CONFIG_FILE = "config.yaml"
LOG_FILE = "log.jsonl"


@dataclasses.dataclass
class RunConfig:
    """The ``run`` section every training command shares (each picks its own defaults)."""

    out: str = opt("runs/run", help="output folder: config.yaml, log.jsonl, latest.pt and the results")
    steps: int = opt(0, help="optimizer steps (0: the schedule's warmup + constant + cooldown)")
    batch_size: int = opt(32, help="samples per process and micro-batch", min=1)
    accum: int = opt(1, help="gradient accumulation: micro-batches per optimizer step", min=1)
    dtype: str = opt("auto", help=f"autocast dtype: {DTYPE_HELP}")
    device: str = opt("auto", help="auto, cpu, cuda, cuda:N")
    threads: int = opt(0, help="CPU threads of torch (0: its default; 1 is fastest on a busy machine)")
    parallel: str = opt(
        "ddp", help="under torchrun: ddp, fsdp (FSDP2 fully_shard) or none, as the command allows"
    )
    checkpoint_every: int = opt(100, help="write latest.pt every this many steps (and at the end)", min=1)
    save_every: int = opt(0, help="also keep step_XXXXXX.pt every this many steps (0: never)")
    log_every: int = opt(10, help="write a log line every this many steps", min=1)
    seed: int = opt(0, help="seed of everything the run draws: model init, data order, augmentation, masks")
    resume: bool = opt(True, help="continue from out/latest.pt when it exists")
    stop_after: int = opt(0, help="stop after this many steps in this invocation (0: run to the end)")


class Run:
    """One invocation of a training command (see the module docstring).

    command: its name, for messages and checkpoints; cfg: its whole config (``config.yaml``, and
    ``run_config`` in checkpoints); settings: the ``RunConfig`` it runs by (``cfg.run``, or one
    made from a flat config); parallel: the ``run.parallel`` modes it supports; section: where the
    settings sit in ``cfg`` (for messages); log_file: the log's name in the run folder.
    """

    def __init__(
        self,
        command: str,
        cfg,
        settings: RunConfig,
        parallel: tuple[str, ...] = ("ddp",),
        section: str = "run",
        log_file: str = LOG_FILE,
    ):
        self.command, self.cfg, self.settings, self.log_file = command, cfg, settings, log_file
        self.key = f"{section}." if section else ""
        if settings.parallel not in parallel:
            raise UserError(
                f"{self.key}parallel must be one of {parallel} for {command}, got {settings.parallel!r}"
            )
        self.out = Path(settings.out)
        self.info = dist.DistInfo()
        self.resumed = False
        self.data_state: dict = {}  # the checkpoint's "data" entry when resuming (see ``save``)
        self.step = self.total = self.stop = 0
        self.logger: MetricsLogger | None = None
        self.bar = None

    # -- the process ------------------------------------------------------------------------------
    def __enter__(self) -> Run:
        self.info = dist.setup(self.settings.device)
        try:
            self.settings.dtype = choose_dtype(self.settings.dtype, self.device, announce=self.is_main)
        except ValueError as err:
            dist.cleanup()
            raise UserError(f"{self.key}dtype: {err}") from None
        if self.settings.threads > 0:
            torch.set_num_threads(self.settings.threads)
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.logger is not None:
            self.logger.close()
        if kind is None:
            dist.cleanup(wait=True)  # every rank finishes before any tears the process group down
        dist.cleanup()

    @property
    def device(self) -> torch.device:
        return self.info.device

    @property
    def is_main(self) -> bool:
        return self.info.is_main

    @property
    def dtype(self) -> str:
        """The precision that runs: 'bf16' or 'fp32' ('auto' resolved)."""
        return self.settings.dtype

    # -- folder, log, progress --------------------------------------------------------------------
    def start(self, step: int, total: int, desc: str | None = None) -> None:
        """Begin at optimizer step ``step`` of ``total``: sets ``stop`` (``run.stop_after``), writes
        the folder and ``config.yaml``, opens the log (cut back to ``step`` when resuming) and the
        progress bar. Only the main process writes."""
        stop_after = self.settings.stop_after
        self.step, self.total = step, total
        self.stop = min(total, step + stop_after) if stop_after else total
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_yaml(self.cfg, self.out / CONFIG_FILE)
            self.logger = MetricsLogger(self.out / self.log_file, resume_step=step if self.resumed else None)
            batch = self.settings.batch_size * self.settings.accum * self.info.world_size
            print(
                f"{self.command}: steps {step}..{self.stop} of {total}, global batch {batch}, on {self.device}"
            )
        self.bar = progress(total, step, self.is_main, desc=desc or self.command)

    def log(self, step: int, **metrics) -> dict | None:
        """Write a log line (main process; None elsewhere)."""
        return self.logger.log(step, **metrics) if self.logger is not None else None

    def checkpoint_due(self, step: int) -> bool:
        return step % self.settings.checkpoint_every == 0 or step == self.stop

    def finish(self, step: int, *results: str) -> None:
        """Say where the run wrote, at ``step``: ``results`` (names in the folder) and its own files."""
        self.bar.close()
        if self.is_main:
            own = [name for name in (LATEST, self.log_file, CONFIG_FILE) if (self.out / name).is_file()]
            state = "done" if step >= self.total else "stopped"
            print(f"{self.command}: {state} at step {step} of {self.total}; wrote {', '.join([*results, *own])} "
                  f"in {self.out}")  # fmt: skip

    # -- checkpoints ------------------------------------------------------------------------------
    def save(
        self,
        step: int,
        model: nn.Module,
        optimizer,
        modules: dict | None = None,
        metrics: dict | None = None,
        data=None,
    ) -> None:
        """Write ``latest.pt`` (and ``step_XXXXXX.pt`` every ``run.save_every``). Every process
        calls it (FSDP gathers its shards). model: the trained module as wrapped for training,
        each child saved under its name; modules: other modules by name (an EMA target); data:
        this rank's data position (picklable), kept as ``{"world_size", "ranks": [one per rank]}``
        in the checkpoint's "data" and handed back by ``restore`` as ``data_state``."""
        ranks = dist.all_gather_object(data) if data is not None else None
        model_state, optim_state = dist.full_state(model, optimizer)
        others = {name: dist.full_state(module)[0] for name, module in (modules or {}).items()}
        if self.is_main:
            parts = {name: {} for name, _ in dist.unwrap(model).named_children()}
            for key, value in model_state.items():
                name, _, rest = key.partition(".")  # "encoder.blocks.0..." -> the child's own keys
                parts[name][rest] = value
            named = {**dict(dist.unwrap(model).named_children()), **(modules or {})}
            configs = {name: dataclasses.asdict(m.cfg) for name, m in named.items() if hasattr(m, "cfg")}
            state = training_state(
                self.command,
                step,
                {**parts, **others},
                optim_state,
                configs,
                to_dict(self.cfg),
                metrics or {},
                None if ranks is None else {"world_size": self.info.world_size, "ranks": ranks},
            )
            save_checkpoint(state, self.out, step, self.settings.save_every)
        dist.barrier()

    def restore(
        self, model: nn.Module, optimizer=None, modules: dict | None = None, init_from: str = ""
    ) -> int:
        """Resume from ``out/latest.pt`` (weights, optimizer, random state; -> its step), else start
        from the weights (and optimizer, if it has one) of ``init_from`` (-> 0), else do nothing.
        Reads every schema (``checkpoints.training``); arguments as for ``save``."""
        latest = find_latest(self.out) if self.settings.resume else None
        path = latest or (Path(init_from) if init_from else None)
        if path is None:
            return 0
        state = read_training_state(path)
        try:
            load_weights(state, model, optimizer, modules or {})
        except (RuntimeError, KeyError, ValueError) as err:
            raise CheckpointError(f"{path}: does not fit the model of this config ({err})") from err
        if latest is None:
            self._say(f"initialised from {path}")
            return 0
        set_rng_state(state["rng"])
        self.data_state = state.get("data") or {}
        self.resumed = True
        self._say(f"resumed from {path} at step {state['step']}")
        return int(state["step"])

    def data_position(self):
        """This rank's data position saved by ``save(data=...)`` in the checkpoint resumed from;
        None when there is none, or when it was written with another number of processes."""
        ranks, world = self.data_state.get("ranks"), self.data_state.get("world_size")
        if not ranks:
            return None
        if world != self.info.world_size:
            self._say(f"the data position was saved by {world} processes, not {self.info.world_size}: "
                      "the data streams start again")  # fmt: skip
            return None
        return ranks[self.info.rank]

    def _say(self, text: str) -> None:
        if self.is_main:
            print(f"{self.command}: {text}")


def load_weights(state: dict, model: nn.Module, optimizer, modules: dict) -> None:
    """Load a (read, upgraded) training state into the modules and the optimizer, on every rank."""
    trained = {
        f"{name}.{key}": value
        for name, _ in dist.unwrap(model).named_children()
        for key, value in state[name].items()
    }
    optim_state = state.get("optimizer") if optimizer is not None else None
    # Before schema 2, train-ac saved Optimizer.state_dict(): parameters by index, not by name.
    plain = optim_state is not None and all(
        isinstance(p, int) for group in optim_state["param_groups"] for p in group["params"]
    )
    dist.load_full_state(model, trained, None if plain else optimizer, None if plain else optim_state)
    if plain:
        optimizer.load_state_dict(optim_state)
    for name, module in modules.items():
        dist.load_full_state(module, state[name])
