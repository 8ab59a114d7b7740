"""The scaffold every training command stands on: one run config, one ``Run`` object, one loop.

A command keeps its own config sections, build code and step function; the ``Run`` owns the rest:
the distributed set-up and device, the precision (``run.dtype``, chosen once, here), CPU threads,
the output folder's lock (one writer per folder, ``vjepa2.locks``) and its ``config.yaml``, the
JSONL log and the progress bar, the loop over optimizer steps (``Run.loop``: logging, a stop on a
loss that is not finite, checkpoints) and the checkpoints themselves (``checkpoints.training``: one
schema, written atomically, exact resume). A new command reads like this (see CONTRIBUTING.md)::

    with Run("my-command", cfg, cfg.run, parallel=("ddp",)) as run:
        nets = build(cfg, run.device)                        # seeded by cfg.run.seed
        step = run.restore(nets.model, nets.optimizer)       # latest.pt -> its step; else 0
        run.start(step, total)                               # folder, config.yaml, log, progress
        step = run.loop(step, lambda step: train_step(cfg, run, step, nets),
                        Trained(nets.model, nets.optimizer))
        run.finish(step)                                     # says where it wrote
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
from vjepa2.locks import folder_lock
from vjepa2.models.precision import DTYPE_HELP
from vjepa2.runtime import distributed as dist
from vjepa2.runtime.process import OnDevice, Process
from vjepa2.train.log import MetricsLogger, progress
from vjepa2.weights.fetch import resolve

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


class LossNotFiniteError(UserError):
    """The training loss became NaN or infinite: the run stopped before writing that state."""


@dataclasses.dataclass
class Trained:
    """What ``Run.loop`` checkpoints (arguments of ``Run.save``): the trained module as wrapped for
    training, its optimizer, other modules by name (an EMA target, a frozen encoder), and a
    function giving this rank's data position (picklable) for an exact resume."""

    model: nn.Module
    optimizer: Any
    modules: dict = dataclasses.field(default_factory=dict)
    position: Callable[[], Any] | None = None


class Run(OnDevice):
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
        self._lock = None
        self.process: Process | None = None
        self.saved_step: int | None = None  # the step of the last checkpoint written or resumed from

    # -- the process ------------------------------------------------------------------------------
    def __enter__(self) -> Run:
        if dist.launch_rank() == 0:  # before anything is read or written there: a second run stops at once
            self._lock = folder_lock(self.out, self.command)
            self._lock.__enter__()
        s = self.settings
        try:
            self.process = Process(s.device, s.dtype, s.threads, key=self.key).__enter__()
        except BaseException:
            self._unlock()
            raise
        self.info, s.dtype = self.process.info, self.process.dtype
        return self

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None

    def __exit__(self, kind, error, traceback) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.logger is not None:
            self.logger.close()
        self.process.__exit__(kind, error, traceback)
        self._unlock()

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

    def loop(
        self,
        step: int,
        train_step: Callable[[int], dict],
        trained: Trained,
        row: Callable[[dict, float], dict] | None = None,
        after_step: Callable[[int], None] | None = None,
    ) -> int:
        """The training loop: optimizer steps ``step``..``stop``; returns the step it ended at.

        train_step(step) runs optimizer step ``step`` (counted from 0) and returns its metrics,
        "loss" among them (a tensor or a float; a list of floats for a grid of heads, where the run
        goes on while any head's loss is finite). Every ``run.log_every`` steps and at the end,
        ``row(metrics, seconds_per_step)`` (every rank: it may reduce across them) makes the log
        line (``self.step`` is the step just done); by default the metrics and ``sec_per_step``. ``after_step(step)`` runs after the log
        (validation, a phase change), then a checkpoint is written when due. A loss that is not
        finite stops the run (``LossNotFiniteError``) before its state is saved, naming the step
        and the last good checkpoint."""
        tick, since = time.perf_counter(), step
        while step < self.stop:
            metrics = train_step(step)
            step = self.step = step + 1
            self._check_finite(step, metrics["loss"])
            if step % self.settings.log_every == 0 or step == self.stop:
                seconds = (time.perf_counter() - tick) / (step - since)
                line = row(metrics, seconds) if row else {**metrics, "sec_per_step": seconds}
                written = self.log(step, **line)
                if written:
                    shown = {k: written[k] for k in ("loss", "lr") if isinstance(written.get(k), float)}
                    self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()})
                tick, since = time.perf_counter(), step
            if after_step is not None:
                after_step(step)
            if self.checkpoint_due(step):
                data = trained.position() if trained.position is not None else None
                loss = best_loss(metrics["loss"])
                self.save(step, trained.model, trained.optimizer, trained.modules, {"loss": loss}, data)
            self.bar.update(1)
        return step

    def _check_finite(self, step: int, loss) -> None:
        value = best_loss(loss)
        bad = not math.isfinite(value)
        if dist.is_distributed():  # every rank stops together, or the others wait for it forever
            bad = float(dist.all_reduce_mean(torch.tensor(float(bad), device=self.device))) > 0
        if not bad:
            return
        if self.is_main:
            self.logger.log(step, stopped=f"loss {value}")
        if self.saved_step is None:
            last = "no checkpoint was written"
        else:
            last = f"the last good checkpoint is {self.out / LATEST} (step {self.saved_step})"
        raise LossNotFiniteError(
            f"{self.command}: the loss is {'not finite on some process' if math.isfinite(value) else value} "
            f"at step {step}; stopped without saving it ({last}). A smaller learning rate or "
            f"{self.key}dtype=fp32 may help"
        )

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
        self.saved_step = step
        dist.barrier()

    def restore(
        self,
        model: nn.Module,
        optimizer=None,
        modules: dict | None = None,
        init_from: str = "",
        stage: Callable[[int], None] | None = None,
    ) -> int:
        """Resume from ``out/latest.pt`` (weights, optimizer, random state; -> its step), else start
        from the weights (and optimizer, if it has one) of ``init_from`` (-> 0), else do nothing.
        Reads every schema (``checkpoints.training``); arguments as for ``save``. ``stage(step)``
        sets what trains at a step (parameters frozen in a phase): the optimizer state loads only
        for parameters that train, so it is staged as at the last step the checkpoint ran before
        the state loads, then as at the step the run goes on from."""
        latest = find_latest(self.out) if self.settings.resume else None
        path = latest or (resolve(init_from) if init_from else None)  # a path or a released name
        if path is None:
            if stage is not None:
                stage(0)
            return 0
        state = read_training_state(path)
        saved = int(state["step"]) if latest is not None else 0
        if stage is not None:
            stage(max(saved - 1, 0))
        try:
            load_weights(state, model, optimizer, modules or {})
        except (RuntimeError, KeyError, ValueError) as err:
            raise CheckpointError(f"{path}: does not fit the model of this config ({err})") from err
        if stage is not None:
            stage(saved)
        if latest is None:
            self._say(f"initialised from {path}")
            return 0
        set_rng_state(state["rng"])
        self.data_state = state.get("data") or {}
        self.resumed = True
        self.saved_step = int(state["step"])
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


def best_loss(loss) -> float:
    """The loss as one float; for a grid of heads (a list), the smallest finite one (NaN if none)."""
    if isinstance(loss, (list, tuple)):
        finite = [float(v) for v in loss if math.isfinite(float(v))]
        return min(finite) if finite else math.nan
    return float(loss)


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
