"""Run under ``torchrun --nproc_per_node=2`` by tests/test_shards.py: each rank reads a shard
source (a URL) and writes what it saw to ``OUT/rank<r>.json``:

  epoch:   (shard, member) of every item of one epoch read with 2 loader workers, None for the
           unreadable ones
  batches: 6 batches of the endless training stream, then 3 more from a fresh loader started
           after the first 3 (what a resumed run reads)

then, with ``PRETRAIN`` arguments after ``--``, trains a tiny model from the shards (4 steps,
checkpoints kept at step 2) into OUT/whole, and resumes a copy of its step-2 checkpoint in
OUT/cut: two runs of ``run_pretrain`` in these same two processes and process group.
"""

import json
import shutil
import sys
from pathlib import Path

import torch

from vjepa2.cli import parse
from vjepa2.data.datasets import collate_skip_bad
from vjepa2.data.shards.reader import ShardClips, shard_sources
from vjepa2.runtime import distributed as dist
from vjepa2.train.pretrain import run_pretrain


def batches(dataset, count: int, workers: int = 2) -> list:
    loader = torch.utils.data.DataLoader(dataset, 2, num_workers=workers, collate_fn=collate_skip_bad)
    out = []
    for batch in loader:
        out.append([list(pair) for pair in zip(batch["shard"].tolist(), batch["member"].tolist())])
        out[-1].append(batch["num_skipped"])
        if len(out) == count:
            break
    return out


def main(url: str, out: str, *pretrain: str) -> None:
    info = dist.setup("cpu")
    sources = shard_sources([url])
    clips = dict(num_frames=4, fps=None, crop=32, rank=info.rank, world_size=info.world_size, buffer=3)
    epoch = batches(ShardClips(sources, epochs=1, **clips), 10**6)
    stream = ShardClips(sources, batch_size=2, **clips)
    first = batches(stream, 6)
    stream.set_start(3)
    resumed = batches(stream, 3)
    ranks = dist.all_gather_object(info.rank)
    Path(out, f"rank{info.rank}.json").write_text(
        json.dumps({"epoch": epoch, "first": first, "resumed": resumed, "ranks": ranks})
    )
    if pretrain:
        # Both runs share this process group: each run would otherwise leave it at its end, and
        # joining a new one at once on the same ports is not reliable.
        leave = dist.cleanup
        dist.cleanup = lambda wait=False: dist.barrier() if wait else None
        whole, cut = Path(out, "whole"), Path(out, "cut")
        run_pretrain(parse(["pretrain", url, *pretrain[1:], f"run.out={whole}", "run.save_every=2"])[1])
        if info.is_main:  # the run as it was at its step-2 checkpoint, as if killed then
            cut.mkdir()
            shutil.copy(whole / "step_000002.pt", cut / "latest.pt")
            shutil.copy(whole / "log.jsonl", cut / "log.jsonl")
        dist.barrier()  # every rank resumes from the copy
        run_pretrain(parse(["pretrain", url, *pretrain[1:], f"run.out={cut}"])[1])
        dist.cleanup = leave
    dist.cleanup(wait=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
