"""Sub-goals the planner proposes itself, so that a long task needs only the final goal image.

``SubgoalGraph`` is a map of the world made of the training episodes' frames (as in
semi-parametric topological memory / search on the replay buffer): every frame is a node, each
frame links to the next one of its episode (a transition that was really made) and to its
``neighbours`` nearest frames of any episode (the same situation seen in another episode, where
one episode's path may continue along another's). ``propose(observation, goal)`` finds the frames
nearest the observation and the goal, the shortest path between them (Dijkstra; an episode step
costs 1, a jump to a look-alike frame costs ``jump_cost`` plus its distance in units of the median
neighbour distance) and returns every ``spacing``-th frame of it as a sub-goal image, then the
goal image itself: the list ``Planner.set_goals`` takes.

Distances: latents (K, D) of the planner's world model, flattened and randomly projected to
``dims`` dimensions (Johnson-Lindenstrauss: L2 distances are kept within a few percent), so that
the neighbour search over tens of thousands of frames stays a few matrix products.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import torch

from vjepa2.config import opt
from vjepa2.errors import UserError


@dataclass
class SubgoalConfig:
    sources: list[str] = opt([], help="episode folders (index.csv) whose frames make the graph")
    neighbours: int = opt(5, help="look-alike links per frame (nearest frames of any episode)")
    spacing: int = opt(4, help="graph steps between consecutive proposed sub-goals")
    budget: int = opt(8, help="step budget of each proposed sub-goal")
    jump_cost: float = opt(1.0, help="cost of a look-alike link beyond its scaled distance")
    dims: int = opt(128, help="random projection of latents used for distances")
    stride: int = opt(1, help="use every stride-th frame of each episode")


class SubgoalGraph:
    """frames uint8 (N, H, W, 3), keys float32 (N, dims), episode id and step per frame."""

    def __init__(self, frames: np.ndarray, keys: torch.Tensor, episode: np.ndarray, cfg: SubgoalConfig):
        self.frames, self.keys, self.episode, self.cfg = frames, keys, episode, cfg
        self.edges = self._edges()

    @classmethod
    def from_episodes(cls, model, cfg: SubgoalConfig, project=None) -> SubgoalGraph:
        """Encode the frames of ``cfg.sources`` with ``model`` (a ``WorldModel``)."""
        from vjepa2.data.trajectories import read_episodes

        if not cfg.sources:
            raise UserError("sub-goal proposal needs subgoal_graph.sources: episode folders to build it from")
        frames, episode = [], []
        for source in cfg.sources:
            for trajectory in read_episodes(source):
                picked = trajectory.frames[:: cfg.stride]
                frames.append(picked)
                episode.append(np.full(len(picked), len(episode)))
        frames = np.concatenate(frames)
        project = project or Projection(model.tokens_per_frame * model.encoder.cfg.dim, cfg.dims)
        keys = torch.cat([project(model.encode(frames[i : i + 256])) for i in range(0, len(frames), 256)])
        graph = cls(frames, keys, np.concatenate(episode), cfg)
        graph.project = project
        return graph

    def _edges(self) -> list[list[tuple[int, float]]]:
        n, k = len(self.keys), min(self.cfg.neighbours, len(self.keys) - 1)
        edges: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        for i in range(n - 1):
            if self.episode[i] == self.episode[i + 1]:  # a transition that was made
                edges[i].append((i + 1, 1.0))
        if k < 1:
            return edges
        dist, index = [], []
        for start in range(0, n, 1024):  # (chunk, n) distances at a time
            d = torch.cdist(self.keys[start : start + 1024], self.keys)
            d[torch.arange(len(d)), torch.arange(start, start + len(d))] = float("inf")
            values, ids = d.topk(k, largest=False)
            dist.append(values)
            index.append(ids)
        dist, index = torch.cat(dist), torch.cat(index)
        self.scale = float(dist[:, 0].median().clamp(min=1e-8))
        for i, (values, ids) in enumerate(zip(dist.tolist(), index.tolist())):
            for j, d in zip(ids, values):  # look-alike links go both ways
                cost = self.cfg.jump_cost + d / self.scale
                edges[i].append((j, cost))
                edges[j].append((i, cost))
        return edges

    def nearest(self, key: torch.Tensor) -> int:
        return int(torch.cdist(key[None], self.keys)[0].argmin())

    def path(self, source: int, target: int) -> list[int]:
        """Nodes of the cheapest path source -> target (Dijkstra), both included; [source] if none."""
        best, previous, heap = {source: 0.0}, {}, [(0.0, source)]
        while heap:
            cost, node = heapq.heappop(heap)
            if node == target:
                break
            if cost > best[node]:
                continue
            for nxt, step in self.edges[node]:
                if cost + step < best.get(nxt, float("inf")):
                    best[nxt], previous[nxt] = cost + step, node
                    heapq.heappush(heap, (cost + step, nxt))
        if target not in best:
            return [source]
        nodes = [target]
        while nodes[-1] != source:
            nodes.append(previous[nodes[-1]])
        return nodes[::-1]

    def propose(self, model, observation: np.ndarray, goal: np.ndarray, final_budget: int) -> list:
        """[(sub-goal image, budget), ..., (goal, final_budget)] from the observation to the goal."""
        keys = self.project(model.encode(np.stack([observation, goal])))
        nodes = self.path(self.nearest(keys[0]), self.nearest(keys[1]))
        s = max(1, self.cfg.spacing)
        picks = nodes[s::s]
        if picks and picks[-1] == nodes[-1]:
            picks = picks[:-1]  # the frame nearest the goal: the goal image itself does better
        self.last_path = nodes
        return [(self.frames[i], self.cfg.budget) for i in picks] + [(goal, final_budget)]


class Projection:
    """A fixed random projection (seeded) of flattened latents (N, K, D) -> (N, dims)."""

    def __init__(self, inputs: int, dims: int, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.matrix = torch.randn(inputs, dims, generator=generator) / dims**0.5

    def __call__(self, latents: torch.Tensor) -> torch.Tensor:
        return latents.float().flatten(1) @ self.matrix
