"""Run under ``torchrun --nproc_per_node=2`` by tests/test_shards.py: each rank reads a shard
source (a URL) and writes what it saw to ``OUT/rank<r>.json``:

  epoch:   (shard, member) of every item of one epoch read with 2 loader workers, None for the
           unreadable ones
  batches: 6 batches of the endless training stream, then 3 more from a fresh loader started
           after the first 3 (what a resumed run reads)
"""

import json
import sys
from pathlib import Path

import torch

from vjepa2.data.datasets import collate_skip_bad
from vjepa2.data.shards.reader import ShardClips, shard_sources
from vjepa2.train import distributed as dist


def batches(dataset, count: int, workers: int = 2) -> list:
    loader = torch.utils.data.DataLoader(dataset, 2, num_workers=workers, collate_fn=collate_skip_bad)
    out = []
    for batch in loader:
        out.append([list(pair) for pair in zip(batch["shard"].tolist(), batch["member"].tolist())])
        out[-1].append(batch["num_skipped"])
        if len(out) == count:
            break
    return out


def main(url: str, out: str) -> None:
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
    dist.cleanup(wait=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
