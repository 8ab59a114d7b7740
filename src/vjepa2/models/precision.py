"""Precision chosen by the hardware: the one switch every command's ``dtype`` option goes through.

``auto`` (the default everywhere) means bf16 autocast only where bf16 matrix work is native and
fast: a CUDA device with bf16, or a CPU with AMX or AVX512-BF16. Elsewhere bf16 is emulated and
10-200x slower than fp32 (measured on an AVX2-only AMD EPYC: a 1024 x 1024 matmul 66-117 GFLOP/s in
fp32 against 0.55-0.88 in bf16), so ``auto`` is fp32 there. When the CPU flags cannot be read (not
Linux), a short timed matmul decides, cached per machine. ``bf16`` / ``fp32`` still force a
choice. Training keeps fp32 parameters under autocast. Inference holds the weights in the chosen
precision (``models/held.py``: bf16, or int8 Linear layers from ``models/quantize.py``), and
``auto`` for a loaded model is settled per model and machine (``models/auto_precision.py``: int8
where it measured faster and its tokens stay within the error bound).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import torch

from vjepa2.atomic import atomic_path

DTYPES = ("auto", "bf16", "fp32")
# Inference may also take int8 (dynamic int8 Linear layers, CPU; ``models/quantize.py``).
INFERENCE_DTYPES = (*DTYPES, "int8")
# --help text of every command's dtype option
_AUTO_HELP = "auto (bf16 only where native: CUDA, AMX / AVX512-BF16 CPUs; else fp32)"
DTYPE_HELP = f"{_AUTO_HELP}, bf16 or fp32"
INFERENCE_DTYPE_HELP = (
    f"{_AUTO_HELP}, bf16, fp32, or int8 (CPU: dynamic int8 Linear layers; extract's auto picks it "
    "where it measured faster and its token cosine to fp32 is >= 0.999); the weights are held in it"
)
VQA_DTYPE_HELP = (
    f"{_AUTO_HELP}, bf16, fp32, or int8 (CPU: the encoder's Linear layers in dynamic int8, the LM "
    "in fp32); the encoder's weights are held in it"
)
# CPU flags (as /proc/cpuinfo names them) that make bf16 matmuls native.
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
CACHE_FILE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vjepa2" / "precision.json"


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` of /proc/cpuinfo (Linux), or None where it cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo, or None where they cannot be read."""
    flags = _cpuinfo("flags")
    return set(flags.split()) if flags is not None else None


def cpu_name() -> str:
    """The CPU model as the OS names it (printed beside every figure)."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def machine_summary() -> str:
    """CPU model, threads, the flags that decide precision, torch version: printed beside figures."""
    flags = cpu_flags() or set()
    shown = sorted(f for f in flags if f in ("avx2", "fma") or f.startswith(("avx512", "amx")))
    native = "native bf16" if fast_bf16("cpu") else "no native bf16"
    return (
        f"CPU: {cpu_name()}, {torch.get_num_threads()} torch threads, flags {' '.join(shown) or '?'} "
        f"({native}); torch {torch.__version__}"
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, float]:
    """Minimum seconds of each zero-argument callable over ``repeats`` rounds, run in turn after
    one warm-up call each (a load that comes and goes on a shared machine hits all alike); on
    CUDA the device is synchronised around each call. Every timing of this package goes here."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def timed_bf16_ratio(size: int = 512, repeats: int = 3) -> float:
    """Seconds of a bf16 matmul over seconds of the fp32 one (best of ``repeats``); < 1: bf16 faster."""
    a = torch.randn(size, size)
    x = {"fp32": a, "bf16": a.to(torch.bfloat16)}
    seconds = interleaved({d: (lambda t=t: torch.matmul(t, t)) for d, t in x.items()}, repeats, a.device)
    return seconds["bf16"] / seconds["fp32"]


def machine_key() -> str:
    """What a cached measurement belongs to: this CPU model and this torch."""
    return f"{cpu_name()} | torch {torch.__version__}"


def cached(section: str, key: str, compute):
    """``compute()``'s JSON value, measured once per machine and remembered in CACHE_FILE under
    ``section`` / ``key`` (written atomically; a read-only home only costs a new measurement)."""
    try:
        stored = json.loads(CACHE_FILE.read_text())
    except (OSError, ValueError):
        stored = {}
    entry = stored.setdefault(section, {})
    if not isinstance(entry, dict) or key not in entry:
        value = compute()
        stored[section] = {**(entry if isinstance(entry, dict) else {}), key: value}
        try:
            with atomic_path(CACHE_FILE) as tmp:
                tmp.write_text(json.dumps(stored, indent=2))
        except OSError:
            pass
        return value
    return entry[key]


def _cached_timing() -> bool:
    timing = cached(machine_key(), "bf16_over_fp32_seconds", timed_bf16_ratio)
    return timing < 0.8


@cache
def fast_bf16(device_type: str) -> bool:
    """Whether bf16 matrix work is native and faster than fp32 on this kind of device."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        return False
    flags = cpu_flags()
    if flags is not None:
        return any(f in flags for f in NATIVE_BF16_FLAGS)
    return _cached_timing()


def resolve_dtype(dtype: str, device: str | torch.device = "cpu", inference: bool = False) -> str:
    """'auto' -> 'bf16' or 'fp32' for ``device``; other names are returned as given. With
    ``inference`` 'int8' is allowed too (CPU only)."""
    allowed = INFERENCE_DTYPES if inference else DTYPES
    if dtype not in allowed:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {allowed}")
    if dtype == "int8" and torch.device(device).type != "cpu":
        raise ValueError(f"dtype int8 runs on the CPU only, not on {device}")
    if dtype != "auto":
        return dtype
    return "bf16" if fast_bf16(torch.device(device).type) else "fp32"


def describe(dtype: str, device: str | torch.device = "cpu") -> str:
    """One line saying which precision runs and why, for the console and the logs."""
    chosen = resolve_dtype(dtype, device, inference=True)
    kind = torch.device(device).type
    where = cpu_name() if kind == "cpu" else (torch.cuda.get_device_name() if kind == "cuda" else kind)
    if dtype == "int8":
        return f"precision: int8 Linear layers, fp32 elsewhere (asked for) on {where}"
    if dtype != "auto":
        return f"precision: {chosen} (asked for) on {where}"
    why = "native bf16" if chosen == "bf16" else "no native bf16 matrix units"
    return f"precision: {chosen} (auto: {why}) on {where}"


def autocast(device: str | torch.device, dtype: str) -> torch.autocast:
    """bfloat16 autocast on ``device`` (cpu or cuda) when ``dtype`` resolves to bf16, else disabled."""
    chosen = resolve_dtype(dtype, device, inference=True)
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=chosen == "bf16")


def choose_dtype(
    dtype: str, device: str | torch.device = "cpu", announce: bool = True, inference: bool = False
) -> str:
    """Resolve a command's ``dtype`` option once at its start, saying the choice on stderr.

    Commands store the result in their config, so their config.yaml, feature-cache keys and
    logs record what ran ('fp32'), not what was asked ('auto'). ``inference`` admits int8."""
    chosen = resolve_dtype(dtype, device, inference)
    if announce:
        print(describe(dtype, device), file=sys.stderr)
    return chosen


DEVICE_HELP = "auto (CUDA when present, else CPU), cpu, cuda or cuda:N"


def check_device(device: str) -> torch.device:
    """A device option, checked before any work: ``auto`` resolved, a kind torch knows that runs
    here (``cuda`` with a GPU present, ``cuda:N`` with N below the GPU count). ValueError else."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; expected {DEVICE_HELP}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported; expected {DEVICE_HELP}")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r}: no CUDA GPU here; use cpu or auto")
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"device {device!r}: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}"
            )
    return dev
