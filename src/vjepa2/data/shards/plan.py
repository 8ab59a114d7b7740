"""Which samples each loader slot reads, in which order: pure arithmetic on the manifest's counts.

A slot is one loader worker of one rank (slot = rank * workers + worker, ``slots`` in all). In
epoch e of a source its shards are put in an order drawn from (seed, source, e), and slot j takes
every ``slots``-th shard from position j; with fewer shards than slots, slot j takes samples j,
j + slots, ... of the shards read in a row. So within an epoch every sample goes to exactly one
slot (and a source of fewer samples than slots gives the last slots none).

A slot reads its samples in order into a buffer of ``buffer`` samples, then emits the buffer in
an order drawn from (seed, source, e, slot, buffer number): a shuffle buffer whose every decision
is known ahead, so position p of the stream is found without reading anything, and a resumed
stream re-reads at most one buffer. Sources are mixed per slot: output position q draws its
source from (seed, slot, q // BLOCK) with the mixture weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK = 1024  # mixture choices drawn this many at a time
MIX_TAG = 7919  # keeps the mixture's seeds apart from the sources' (which start with a source index)


@dataclass(frozen=True)
class Piece:
    """Samples offset, offset + stride, ... (``count`` of them) of shard ``shard``."""

    shard: int
    offset: int
    stride: int
    count: int


class SourcePlan:
    """The reading plan of one source for one slot; ``shards`` are manifest shard numbers and
    ``counts`` their sample counts."""

    def __init__(self, source: int, shards: list[int], counts: list[int], slot: int, slots: int,
                 seed: int, buffer: int, shuffle: bool):  # fmt: skip
        if not shards:
            raise ValueError(f"source {source} has no shards")
        self.source, self.shards, self.counts = source, list(shards), list(counts)
        self.slot, self.slots, self.seed = slot, slots, seed
        self.buffer, self.shuffle = max(1, buffer), shuffle
        self._pieces: dict[int, list[Piece]] = {}

    def pieces(self, epoch: int) -> list[Piece]:
        """This slot's pieces of ``epoch``, in reading order."""
        if epoch not in self._pieces:
            n = len(self.shards)
            order = np.arange(n)
            if self.shuffle:
                order = np.random.default_rng([self.seed, self.source, epoch]).permutation(n)
            if n >= self.slots:
                chosen = [(int(order[i]), 0, 1) for i in range(self.slot, n, self.slots)]
            else:  # a small source: the slots take every slots-th sample of its shards in a row
                chosen, first = [], 0
                for i in map(int, order):
                    chosen.append((i, (self.slot - first) % self.slots, self.slots))
                    first += self.counts[i]
            pieces = [
                Piece(self.shards[i], off, stride, len(range(off, self.counts[i], stride)))
                for i, off, stride in chosen
            ]
            self._pieces[epoch] = [p for p in pieces if p.count]
        return self._pieces[epoch]

    def epoch_length(self, epoch: int) -> int:
        return sum(p.count for p in self.pieces(epoch))

    @property
    def empty(self) -> bool:
        """Whether this source gives this slot nothing (then it is left out of its mixture)."""
        return self.epoch_length(0) == 0  # every epoch gives a slot the same number or none

    def locate(self, position: int) -> tuple[int, int]:
        """Stream position (samples since the first epoch began) -> (epoch, position in it)."""
        epoch = 0
        if self.empty:
            raise ValueError(f"source {self.source} gives slot {self.slot} of {self.slots} no samples")
        while position >= (length := self.epoch_length(epoch)):
            position, epoch = position - length, epoch + 1
        return epoch, position

    def buffer_order(self, epoch: int, index: int, size: int) -> np.ndarray:
        """(size,) the order in which buffer ``index`` of ``epoch`` is emitted."""
        if not self.shuffle:
            return np.arange(size)
        return np.random.default_rng([self.seed, self.source, epoch, self.slot, index]).permutation(size)


def mixture_counts(weights: list[float], seed: int, slot: int, position: int) -> list[int]:
    """How many of a slot's first ``position`` outputs each source gave."""
    counts = np.zeros(len(weights), dtype=np.int64)
    for block in range(position // BLOCK + 1):
        take = min(BLOCK, position - block * BLOCK)
        if take <= 0:
            break
        counts += np.bincount(mixture_block(weights, seed, slot, block)[:take], minlength=len(weights))
    return counts.tolist()


def mixture_block(weights: list[float], seed: int, slot: int, block: int) -> np.ndarray:
    """(BLOCK,) the sources of a slot's outputs block * BLOCK, ..."""
    p = np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng([seed, MIX_TAG, slot, block])
    return rng.choice(len(p), size=BLOCK, p=p / p.sum())


def worker_start(batches: int, worker: int, workers: int, batch_size: int) -> int:
    """Samples a loader worker has given once its rank has taken ``batches`` batches: a DataLoader
    takes batch n from worker n % workers."""
    return len(range(worker, batches, max(1, workers))) * batch_size
