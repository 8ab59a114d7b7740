"""Video data sets: index files and folders, clips for training or evaluation, weighted mixtures.

An index is a CSV of ``path label`` lines (space separated as in the reference data sets, or
``path,label``; no header; paths relative to the CSV's folder) or a folder of videos and images
(label = the index of the first-level sub-folder among the sorted class folders, else 0).

A file that cannot be read never stops a run: ``VideoDataset`` logs a warning naming it and
returns None, and ``collate_skip_bad`` drops Nones and counts them in ``batch["num_skipped"]``.

Randomness is keyed, not stateful: a sample's window, crop and flip come from a generator seeded
with (seed, index, draw), where ``draw`` is the sample's position in the global sampling stream
(given by ``WeightedDistributedSampler``) or, for a plain integer index, the data set's epoch.
So results do not depend on DataLoader workers, and a resumed run sees the same clips.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vjepa2.data.clips import load_clips
from vjepa2.data.memory import DecodedVideos
from vjepa2.data.video import MEDIA_SUFFIXES, VideoReadError, read_clip
from vjepa2.errors import MissingPathError, UserError

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Index reading


def _parse_line(line: str) -> tuple[str, str] | None:
    """Split one index line into (path, label text); a path alone gets label 0."""
    if "," in line:
        path, _, label = line.rpartition(",")
        if label.strip().lstrip("-").isdigit():
            return path.strip(), label.strip()
    parts = line.rsplit(None, 1)  # the last word is the label, so paths may hold spaces
    if len(parts) == 2 and parts[1].lstrip("-").isdigit():
        return parts[0], parts[1]
    return None


def read_csv_index(csv_path: str | Path) -> list[tuple[Path, int]]:
    """(path, label) pairs of a ``path label`` index; blank lines and ``#`` comments are skipped."""
    csv_path = Path(csv_path)
    samples = []
    for number, raw in enumerate(csv_path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parsed = _parse_line(line)
        if parsed is None:
            raise UserError(
                f"{csv_path}:{number}: expected 'path label' (label an integer, space or comma "
                f"separated), got {raw!r}"
            )
        path, label = Path(parsed[0]), int(parsed[1])
        samples.append((path if path.is_absolute() else csv_path.parent / path, label))
    return samples


def read_folder_index(folder: str | Path) -> list[tuple[Path, int]]:
    """Every video and image under ``folder``, labelled by class sub-folder (sorted names) or 0."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
    nested = [p for p in files if p.parent != folder]
    if nested and len(nested) < len(files):
        loose = next(p for p in files if p.parent == folder)
        raise UserError(f"{folder}: holds both class sub-folders and loose files such as {loose.name}")
    classes = sorted({p.relative_to(folder).parts[0] for p in nested})
    label_of = {name: i for i, name in enumerate(classes)}
    return [(p, label_of.get(p.relative_to(folder).parts[0], 0)) for p in files]


def read_index(source: str | Path) -> list[tuple[Path, int]]:
    """(path, label) pairs from a CSV/text index file, a folder, or a shard manifest (path, URL or
    folder: fetched once into a local copy, ``vjepa2.data.shards.local``)."""
    from vjepa2.data.shards.manifest import is_shard_source

    if is_shard_source(str(source)):
        from vjepa2.data.shards.local import local_copy

        source = local_copy(str(source))
    source = Path(source)
    if not source.exists():
        raise MissingPathError(f"data source not found: {source}")
    samples = read_folder_index(source) if source.is_dir() else read_csv_index(source)
    if not samples:
        raise UserError(f"{source}: no videos or images listed")
    return samples


def balanced_subset(samples: list[tuple[Path, int]], count: int, seed: int) -> list[tuple[Path, int]]:
    """``count`` of the (path, label) ``samples``, as many of each class as the classes allow (a
    class with too few gives all it has), drawn with ``seed``: the split of a low-shot evaluation.
    The same samples, count and seed give the same subset, so feature sources can be compared on it."""
    if not 0 < count <= len(samples):
        raise UserError(f"low-shot subset: asked for {count} clips of {len(samples)}")
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, (_, label) in enumerate(samples):
        by_class.setdefault(label, []).append(i)
    shuffled = [rng.permutation(by_class[label]) for label in sorted(by_class)]
    # Round robin over the classes: the first `count` of this order are balanced.
    order = [int(idx[r]) for r in range(max(map(len, shuffled))) for idx in shuffled if r < len(idx)]
    return [samples[i] for i in sorted(order[:count])]


# ---------------------------------------------------------------------------------------------
# Data sets


def _split_key(key) -> tuple[int, int | None]:
    """A sampler key is an index or (index, draw); see the module docstring."""
    if isinstance(key, (tuple, list)):
        return int(key[0]), int(key[1])
    return int(key), None


class IndexedVideos(torch.utils.data.Dataset):
    """What the clip data sets share: the (path, label) samples of an index, the epoch that seeds
    random windows and augmentation, and the rule for unreadable files (logged; the sample is
    None, which the collate functions drop)."""

    samples: list[tuple[Path, int]]
    epoch: int = 0

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]

    def set_epoch(self, epoch: int) -> None:
        """Seeds the randomness of plain integer keys (keys from our sampler carry their own)."""
        self.epoch = epoch

    def read_sample(self, index: int, load: Callable[[Path], torch.Tensor]) -> dict | None:
        """dict(clip=load(path), label, index, path) of sample ``index``, or None if unreadable."""
        path, label = self.samples[index]
        try:
            clip = load(path)
        except (VideoReadError, OSError) as err:
            log.warning("skipping unreadable sample %d (%s): %s", index, path, err)
            return None
        return {"clip": clip, "label": label, "index": index, "path": str(path)}


class VideoDataset(IndexedVideos):
    """Clips from the videos and images of one index (a CSV file or a folder).

    ``dataset[i]`` -> dict(clip, label int, index int, path str), or None if the file is unreadable.
    ``clip`` is float32 (T, C, crop, crop) for ``num_clips`` = 1, else (num_clips, T, C, crop, crop).
    Frames are sampled at ``fps`` (the reference's frame step) or every ``frame_step``-th frame
    when that is given. ``train``: random windows and ``train_transform``; else evenly spread
    windows (``num_clips`` for multi-clip testing) and ``eval_transform``. Images are repeated
    into still clips. ``memory``, a ``vjepa2.data.memory.DecodedVideos`` (data sets of a mixture
    may share one), keeps decoded videos in each loader worker: the same clips, decoded once.
    """

    def __init__(
        self,
        source: str | Path,
        num_frames: int = 16,
        fps: float | None = 4,
        frame_step: int | None = None,
        crop: int = 256,
        train: bool = True,
        num_clips: int = 1,
        seed: int = 0,
        sampling: str = "auto",
        memory: DecodedVideos | None = None,
    ):
        self.source = Path(source)
        self.samples = read_index(source)
        self.num_frames, self.crop, self.train = num_frames, crop, train
        self.fps = None if frame_step is not None else fps
        self.frame_step, self.num_clips, self.seed, self.sampling = frame_step, num_clips, seed, sampling
        # Each loader worker fills its own copy: the store is empty when the workers fork.
        self.read_clip = memory.read_clip if memory is not None else read_clip

    @property
    def num_classes(self) -> int:
        return max(self.labels) + 1

    @property
    def sample_weights(self) -> np.ndarray:
        return np.full(len(self), 1.0 / len(self))

    def rng(self, index: int, draw: int | None) -> np.random.Generator:
        return np.random.default_rng([self.seed, index, self.epoch if draw is None else draw])

    def __getitem__(self, key) -> dict | None:
        index, draw = _split_key(key)
        rng = self.rng(index, draw) if self.train else None
        return self.read_sample(index, lambda path: self._load(path, rng))

    def _load(self, path: Path, rng: np.random.Generator | None) -> torch.Tensor:
        """Read and transform: (T, C, crop, crop) float32, or (num_clips, T, C, crop, crop)."""
        return load_clips(self, self.read_clip, path, rng)


class MixtureDataset(torch.utils.data.Dataset):
    """Several data sets as one; ``weights`` say how often each is drawn (split over its samples).

    Items are those of the member data sets with a ``dataset`` entry (the member's position).
    """

    def __init__(self, datasets: list[torch.utils.data.Dataset], weights: list[float] | None = None):
        weights = [1.0] * len(datasets) if weights is None else list(weights)
        if len(weights) != len(datasets) or not datasets:
            raise UserError(
                f"need one weight per data set: {len(datasets)} data sets, {len(weights)} weights"
            )
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise UserError(f"mixture weights must be >= 0 with a positive sum, got {weights}")
        self.datasets, self.weights = list(datasets), weights
        self.offsets = np.cumsum([0] + [len(d) for d in datasets])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def sample_weights(self) -> np.ndarray:
        """(N,) each data set's weight divided evenly over its samples, normalised to sum to 1."""
        parts = [np.full(len(d), w / len(d)) for d, w in zip(self.datasets, self.weights)]
        weights = np.concatenate(parts)
        return weights / weights.sum()

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)

    def __getitem__(self, key) -> dict | None:
        index, draw = _split_key(key)
        which = int(np.searchsorted(self.offsets, index, side="right")) - 1
        local = index - int(self.offsets[which])
        item = self.datasets[which][local if draw is None else (local, draw)]
        if item is not None:
            item["dataset"] = which
        return item


# ---------------------------------------------------------------------------------------------
# Sampling and collation


class WeightedDistributedSampler(torch.utils.data.Sampler):
    """Weighted sampling with replacement, split over ranks, deterministic and resumable.

    Each epoch draws one global stream of ``num_samples`` indices with probabilities proportional
    to ``sample_weights`` from a generator seeded with (seed, epoch); rank r takes positions
    r, r + world_size, ... (disjoint slices; a remainder under world_size is dropped). Items are
    (index, draw) keys, ``draw`` being the global position over all epochs, which seeds each
    sample's augmentation. ``set_epoch(epoch, start_index)`` skips this rank's first
    ``start_index`` items (the ones already consumed) for an exact resume mid-epoch.
    """

    def __init__(
        self,
        sample_weights,
        num_samples: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        start_index: int = 0,
    ):
        weights = np.asarray(sample_weights, dtype=np.float64)
        if weights.ndim != 1 or len(weights) == 0 or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("sample_weights must be a non-empty 1-D array of >= 0 with a positive sum")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.probabilities = weights / weights.sum()
        self.num_samples, self.rank, self.world_size, self.seed = num_samples, rank, world_size, seed
        self.per_rank = num_samples // world_size
        self.epoch, self.start_index = 0, start_index

    def set_epoch(self, epoch: int, start_index: int = 0) -> None:
        self.epoch, self.start_index = epoch, start_index

    def global_stream(self, epoch: int) -> np.ndarray:
        """(num_samples,) indices all ranks share for ``epoch``."""
        rng = np.random.default_rng([self.seed, epoch])
        return rng.choice(len(self.probabilities), size=self.num_samples, replace=True, p=self.probabilities)

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start_index)

    def __iter__(self):
        stream = self.global_stream(self.epoch)
        positions = self.rank + self.world_size * np.arange(self.start_index, self.per_rank)
        first_draw = self.epoch * self.num_samples
        for position in positions:
            yield int(stream[position]), int(first_draw + position)


def collate_skip_bad(batch: list[dict | None]) -> dict:
    """Stack a list of items, dropping Nones (unreadable files) and counting them.

    -> dict(clip (B, ...) float, label (B,) long, index (B,) long, path list[str],
    num_skipped int, plus any other entries stacked alike). If every item was bad, ``clip`` is
    None and the tensors are empty: skip such a batch.
    """
    good = [item for item in batch if item is not None]
    out = {"num_skipped": len(batch) - len(good)}
    if not good:
        out.update(clip=None, label=torch.empty(0, dtype=torch.long), index=torch.empty(0, dtype=torch.long))
        out["path"] = []
        return out
    for key in good[0]:
        values = [item[key] for item in good]
        if torch.is_tensor(values[0]):
            out[key] = torch.stack(values)
        elif isinstance(values[0], (int, np.integer)):
            out[key] = torch.tensor(values, dtype=torch.long)
        else:
            out[key] = values
    return out
