"""``vjepa2 extract``: videos -> frozen-encoder features on disk.

Inputs are video or image files, folders, or CSV index files ("path label" lines). Each video
gives ``num_clips`` clips of ``frames`` frames sampled at ``fps`` (or every ``frame_step``
frames), eval-preprocessed to ``crop`` px (default: the model's own crop, 256 for the 2.0
releases, 384 for 2.1), encoded in batches. A broken file is reported and skipped; the others go
on. The report (``errors.json``; beside a one file ``<file>.errors.json``, see ``extract_parts``)
names every file that failed and why, and every shard member that was lost (a shard cut short or
out of reach after its tries: ``network.connect_timeout``, ``network.read_timeout``, ``network.tries``) or refused (a name
that would not stay inside ``out``, see ``vjepa2.safe_names``). A rerun skips the videos done
before whose files are still there. ``layers`` must name blocks of the model (checked first).

Features: the plain output (N, D), chosen blocks concatenated along features (N, L * D), or with
``levels`` the 4-level output of a V-JEPA 2.1 model (N, 4 D, each level through its own norm);
pooled to one vector per clip, kept per token (``pooling=none``), or as the token grid
(``pooling=grid``: (t, h, w, D'), the dense features at the model's resolution). An image is one
frame: a 2.1 model encodes it with its image tokenizer (h * w tokens); a 2.0 model, which has no
image tokenizer, sees it repeated into a clip of ``frames`` frames.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save
from tqdm import tqdm

from vjepa2.atomic import atomic_open, atomic_write_json
from vjepa2.config import opt
from vjepa2.data.clips import transform_clips
from vjepa2.data.datasets import read_index
from vjepa2.data.shards.manifest import is_shard_source
from vjepa2.data.shards.reader import Lost, iter_samples
from vjepa2.data.shards.remote import NetworkConfig
from vjepa2.data.video import EncodedVideo, VideoReadError, is_image, read_clip
from vjepa2.errors import UserError
from vjepa2.evals.commands.extract_parts import Parts
from vjepa2.evals.features import check_layers, load_encoder
from vjepa2.models.model import VJEPA2
from vjepa2.models.precision import (
    DEVICE_HELP,
    INFERENCE_DTYPE_HELP,
    INFERENCE_DTYPES,
    autocast,
)
from vjepa2.runtime import distributed as dist
from vjepa2.runtime.process import COMPILE_HELP, Process
from vjepa2.safe_names import inside, safe_relative

log = logging.getLogger(__name__)


@dataclass
class ExtractConfig:
    inputs: list[str] = opt(
        [],
        help="video/image files, folders, CSV index files or shard manifests (paths or URLs)",
        positional=True,
    )
    encoder: str = opt(
        "",
        help="frozen encoder: reference .pt, transformers dir, our dir, a released name, or random:<preset>",
    )
    encoder_key: str = opt(
        "target_encoder", help="encoder in a reference checkpoint: target_encoder or encoder"
    )
    out: str = opt("runs/features", help="output folder (one file per video) or file (with one_file)")
    format: str = opt("npy", help="npy or safetensors")
    one_file: bool = opt(False, help="write all videos into one file (safetensors keyed by video, or .npz)")
    pooling: str = opt(
        "mean",
        help="mean: one vector per clip (clips, D); none: every token (clips, N, D); "
        "grid: the token grid (clips, t, h, w, D)",
    )
    layers: list[int] = opt(
        [], help="blocks to read (normed; concatenated along features); empty: last output"
    )
    levels: bool = opt(False, help="V-JEPA 2.1: the 4-level output (N, 4 D), each level through its own norm")
    num_frames: int = opt(16, help="frames per clip", min=1)
    fps: float = opt(4.0, help="sampling rate in frames per second (0: use frame_step)")
    frame_step: int = opt(0, help="take every n-th frame instead of sampling at fps (0: off)")
    num_clips: int = opt(1, help="clips per video, evenly spread over it", min=1)
    crop: int = opt(
        0,
        help="eval crop size in pixels, short side resized to crop * 256 / 224 "
        "(0: the model's crop, 256 for the 2.0 releases, 384 for 2.1)",
        min=0,
    )
    batch_size: int = opt(4, help="clips encoded per forward pass")
    decode_workers: int = opt(
        -1,
        help="threads decoding the next videos while the encoder runs; -1: 2 on a GPU (the CPU is "
        "free), 0 on the CPU (its cores run the encoder: measured no faster on 2 cores)",
        min=-1,
        max=64,
    )
    device: str = opt("auto", help=DEVICE_HELP)
    dtype: str = opt(
        "auto",
        help=f"encoder precision: {INFERENCE_DTYPE_HELP}",
    )
    compile: bool = opt(False, help=COMPILE_HELP)
    network: NetworkConfig = opt(NetworkConfig, help="remote shards: timeouts and tries")


def list_videos(inputs: list[str]) -> list[Path]:
    """Expand files, folders and CSV indexes to a list of media files (order kept, no repeats)."""
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() or (path.is_file() and path.suffix.lower() in (".csv", ".txt")):
            paths += [p for p, _ in read_index(path)]
        else:
            paths.append(path)  # missing files are reported when read
    seen: set[Path] = set()
    return [p for p in paths if not (p in seen or seen.add(p))]


def output_name(path: Path, root_names: set[str]) -> str:
    """A file-system-safe, unique-enough key for a video's features."""
    stem = path.stem if path.stem not in root_names else f"{path.parent.name}_{path.stem}"
    return stem.replace(" ", "_")


def _pool(tokens: torch.Tensor, pooling: str, grid_hw: tuple[int, int]) -> np.ndarray:
    """tokens (clips, N, D) -> (clips, D) (mean), (clips, N, D) (none) or (clips, t, h, w, D)
    (grid, with t = N / (h * w)) as float32 numpy."""
    if pooling == "mean":
        tokens = tokens.mean(dim=1)
    elif pooling == "grid":
        tokens = tokens.unflatten(1, (-1, *grid_hw))
    return tokens.float().cpu().numpy()


class Writer:
    """Features out: one file per video, or (``one_file``) this process's part of the one file;
    every video done or failed goes in this process's ledger (``extract_parts``)."""

    def __init__(self, cfg: ExtractConfig, parts: Parts):
        self.cfg, self.parts = cfg, parts
        self.out = Path(cfg.out)
        self.collected: dict[str, np.ndarray] = {}
        self.rows: list[dict] = []  # ledger lines waiting for the one file's part
        self.failed = 0
        if not cfg.one_file:
            self.out.mkdir(parents=True, exist_ok=True)

    def target(self, key: str) -> Path | None:
        """Where the features of ``key`` go (None: into the one file); ``UnsafeNameError`` for a
        key that would not stay inside the output folder."""
        safe_relative(key, what="output name")  # also a key of the one file (an archive's member)
        if self.cfg.one_file:
            return None
        return inside(self.out, f"{key}.{self.cfg.format}", what="output name")

    def add(self, key: str, source: str, features: np.ndarray) -> None:
        row = {"key": key, "source": source, "shape": list(features.shape)}
        path = self.target(key)
        if path is None:
            self.collected[key] = features
            self.rows.append(row)
            return
        with atomic_open(path) as fh:  # a killed run leaves no half-written features file
            if self.cfg.format == "npy":
                np.save(fh, features)
            else:
                fh.write(save({"features": features}))
        name = path.relative_to(self.out).as_posix()
        self.parts.record([{**row, "file": name, "bytes": path.stat().st_size}])

    def fail(self, path: str, error: str) -> None:
        self.failed += 1
        self.parts.record([{"path": path, "error": error}])

    def close(self) -> None:
        """Write this process's part of the one file (the per-video files are written already)."""
        if not self.cfg.one_file or not self.collected:
            return
        part = self.parts.part_file(".npz" if self.cfg.format == "npy" else ".safetensors")
        with atomic_open(part) as fh:
            if self.cfg.format == "npy":
                np.savez(fh, **self.collected)
            else:
                fh.write(save(self.collected))
        self.parts.record([{**row, "file": part.name} for row in self.rows])


def _check(cfg: ExtractConfig) -> None:
    if not cfg.inputs:
        raise UserError("give at least one video, folder or CSV")
    if not cfg.encoder:
        raise UserError("--encoder is required (a weights file, directory or random:<preset>)")
    for name, value, allowed in (
        ("pooling", cfg.pooling, ("none", "mean", "grid")),
        ("format", cfg.format, ("npy", "safetensors")),
        ("dtype", cfg.dtype, INFERENCE_DTYPES),
    ):
        if value not in allowed:
            raise UserError(f"{name} must be one of {allowed}, got {value!r}")
    if cfg.levels and cfg.layers:
        raise UserError(f"give --layers or --levels, not both (got layers {cfg.layers} and levels)")


def _check_model(cfg: ExtractConfig, model: VJEPA2) -> None:
    check_layers(model, cfg.layers, cfg.encoder)
    if cfg.levels and not model.encoder.cfg.level_layers:
        raise UserError(
            f"--levels needs a V-JEPA 2.1 model (4 levels, each with its norm); {cfg.encoder} is "
            f"V-JEPA {model.version}"
        )


class Batches:
    """Clips waiting to be encoded, ``batch_size`` at a time; clips of one shape go together (an
    image encoded by a 2.1 image tokenizer is one frame, a video clip ``frames``)."""

    def __init__(self, model: VJEPA2, cfg: ExtractConfig, writer: Writer):
        self.model, self.cfg, self.writer = model, cfg, writer
        self.pending: list[tuple[str, torch.Tensor]] = []  # (key, clips (num_clips, T, C, H, W))
        self.sources: dict[str, str] = {}  # key -> the input it came from

    def add(self, key: str, source: str, clips: torch.Tensor) -> None:
        self.pending.append((key, clips))
        self.sources[key] = source
        if sum(len(c) for _, c in self.pending) >= self.cfg.batch_size:
            self.flush()

    def flush(self) -> None:
        groups: dict[tuple, list] = {}
        for key, clips in self.pending:
            groups.setdefault(tuple(clips.shape[1:]), []).append((key, clips))
        for group in groups.values():
            clips = torch.cat([c for _, c in group])  # (sum of clips, T, C, H, W)
            tokens = self.encode(clips)
            grid_hw = self.model.encoder.grid(clips.shape)[1:]
            for (key, _), t in zip(group, tokens.split([len(c) for _, c in group])):
                self.writer.add(key, self.sources.pop(key), _pool(t, self.cfg.pooling, grid_hw))
        self.pending.clear()

    def encode(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, T, C, H, W) -> tokens (B, N, D'): the plain output, the chosen blocks along
        features (D' = L * D) or the 4 levels (D' = 4 D)."""
        layers = self.cfg.layers or None
        with torch.no_grad(), autocast(torch.device(self.cfg.device).type, self.cfg.dtype):
            out = self.model.encode(clips, out_layers=layers, levels=self.cfg.levels)
        return torch.cat(out, dim=-1) if isinstance(out, list) else out


def read_clips(
    path: Path | EncodedVideo, cfg: ExtractConfig, crop: int, image_tokenizer: bool
) -> torch.Tensor:
    """The eval-preprocessed clips of one file (or shard member): (num_clips, T, C, crop, crop); an
    image is one frame for a model with an image tokenizer (2.1), else repeated into ``frames``."""
    if isinstance(path, Path) and not path.exists():
        raise VideoReadError(path, "no such file")
    frames = read_clip(
        path,
        num_frames=1 if image_tokenizer and is_image(path) else cfg.num_frames,
        fps=None if cfg.frame_step else (cfg.fps or None),
        frame_step=cfg.frame_step or None,
        num_clips=cfg.num_clips,
    )
    return transform_clips(frames, crop)


def read_ahead(jobs, read, workers: int):
    """``(job, read(job))`` for each of ``jobs`` in order; ``workers`` threads read up to twice
    their number ahead while the caller encodes (decoding and resizing release the GIL), 0: each
    job read when its turn comes."""
    if workers == 0:
        yield from ((job, read(job)) for job in jobs)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="extract-read") as pool:
        ahead: deque = deque()
        for job in jobs:
            ahead.append((job, pool.submit(read, job)))
            if len(ahead) > 2 * workers:
                job, future = ahead.popleft()
                yield job, future.result()
        while ahead:
            job, future = ahead.popleft()
            yield job, future.result()


def run_extract(cfg: ExtractConfig) -> int:
    """Encode every input; returns 1 if any file failed (all others are still written). Under
    torchrun each process takes its share of the inputs (``extract_parts``)."""
    _check(cfg)
    with Process(cfg.device, cfg.dtype, inference=True) as proc:
        cfg.device = str(proc.device)  # under torchrun on GPUs: this rank's own
        model = load_encoder(cfg.encoder, device=cfg.device, encoder_key=cfg.encoder_key)
        _check_model(cfg, model)
        model = proc.hold(model, allow_int8=True, compile=cfg.compile)  # held in the precision that runs
        cfg.dtype = proc.dtype  # what ran, in the manifest and logs ('auto' settled for this model)
        return extract(cfg, model, proc.info)


def extract(cfg: ExtractConfig, model: VJEPA2, info: dist.DistInfo) -> int:
    crop, image_tokenizer = cfg.crop or model.encoder.cfg.crop, model.encoder.cfg.image_tokenizer
    if crop < model.encoder.cfg.patch:
        raise UserError(
            f"crop: {crop} px is smaller than one {model.encoder.cfg.patch} px patch of this encoder"
        )
    parts = Parts(cfg, info)
    done = parts.prepare()
    writer = Writer(cfg, parts)
    batches = Batches(model, cfg, writer)
    skipped = []

    def todo():
        for key, source, item in my_inputs(cfg, info):
            if key in done:
                skipped.append(key)
            else:
                yield key, source, item

    def read(job) -> torch.Tensor | Exception:
        key, source, item = job
        try:
            if isinstance(item, Lost):  # a shard member that never arrived or is unusable
                raise VideoReadError(source, item.reason)
            writer.target(key)  # a name that would leave the output folder is refused before work
            return read_clips(item, cfg, crop, image_tokenizer)
        except (VideoReadError, OSError, ValueError) as err:
            return err

    workers = cfg.decode_workers if cfg.decode_workers >= 0 else (2 if model.device.type == "cuda" else 0)
    reads = read_ahead(todo(), read, workers)
    for (key, source, _), clips in tqdm(reads, desc="extract", unit="video", disable=not info.is_main):
        if isinstance(clips, Exception):
            writer.fail(source, str(clips))
            log.warning("skipping %s", clips)
            continue
        batches.add(key, source, clips)
    batches.flush()
    writer.close()
    if skipped:
        print(f"extract: rank {info.rank}: {len(skipped)} video(s) done by an earlier run, skipped")
    dist.barrier()
    if not info.is_main:
        return 1 if writer.failed else 0
    target, errors, count = parts.merge()
    report_errors(parts.errors, errors, count + len(errors), target)
    return 1 if errors else 0


def my_inputs(cfg: ExtractConfig, info: dist.DistInfo):
    """(key, source, file or EncodedVideo or Lost) of this process's share of the inputs: files
    r, r + W, ... of the list; of shard sources, every W-th shard (see ``shards.plan``); a Lost
    member's key is None."""
    shards = [i for i in cfg.inputs if is_shard_source(i)]
    videos = list_videos([i for i in cfg.inputs if not is_shard_source(i)])
    stems = [p.stem for p in videos]
    clashing = {s for s in stems if stems.count(s) > 1}
    for path in videos[info.rank :: info.world_size]:
        yield output_name(path, clashing), str(path), path
    if shards:
        for sample in iter_samples(shards, info.rank, info.world_size, cfg.network.network()):
            if isinstance(sample, Lost):
                yield None, sample.name, sample
            else:
                yield sample.key, sample.video.name, sample.video


def report_errors(file: Path, errors: list[dict], total: int, target: Path) -> None:
    """Write the errors (``errors.json`` beside the features, see ``extract_parts``) and print the
    summary."""
    atomic_write_json(file, errors, indent=2)
    print(f"features of {total - len(errors)} / {total} videos written to {target}")
    if errors:
        print(f"{len(errors)} file(s) failed, listed in {file}:")
        for e in errors:
            print(f"  {e['error']}")
