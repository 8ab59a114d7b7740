"""``vjepa2 physics-eval``: score a model's surprise on possible / impossible video pairs.

Sources, each through the same code: the ``--encoder`` (``model``), its random twin (``random``:
the same shapes, fresh weights) and the pixel baseline (``pixels``). Curves are cached per source
in ``<out>/cache`` (or ``cache_dir``), keyed by the weights and the window settings, and per video
by path, size and modification time: a rerun scores nothing twice. A video that cannot be read
is reported, its pair skipped, and the rest go on.

Writes ``results.json``: per source, ``official`` first (the jepa-intuitive-physics metrics per
type under their official names; on IntPhys 2 the per-video accuracy by split, difficulty, camera
and property, with the decision rule), then ``metrics`` (this project's, each with a 95% bootstrap
interval, for mean and for max surprise) and ``videos`` (mean, max, curve). On IntPhys 2 it also
writes ``predictions_<source>.jsonl``, the leaderboard's form (``filename``, ``model_answer``:
true when answered possible), for the held-out split too. Prints the official table, then ours,
and draws ``curves_<source>_<type>.png`` (a few pairs) and ``roc_<source>.png``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vjepa2.atomic import atomic_path
from vjepa2.checkpoints.loading import held
from vjepa2.config import opt
from vjepa2.errors import UserError
from vjepa2.evals.features import load_encoder, weights_fingerprint
from vjepa2.evals.physics.intphys2 import write_leaderboard
from vjepa2.evals.physics.plots import plot_pair_curves, plot_roc
from vjepa2.evals.physics.readers import LAYOUTS, PhysicsVideo, load_frames, read_pairs
from vjepa2.evals.physics.summary import pair_scores, summarize, table
from vjepa2.evals.physics.surprise import Windows, surprise_curves
from vjepa2.models.precision import DEVICE_HELP, INFERENCE_DTYPE_HELP
from vjepa2.runtime.process import Process

log = logging.getLogger(__name__)
SOURCES = ("model", "random", "pixels")


@dataclass
class PhysicsEvalConfig:
    data: str = opt(
        "", help="data set: a folder (synthetic pairs, IntPhys 2, IntPhys dev) or a CSV", positional=True
    )
    encoder: str = opt(
        "random:tiny",
        help="encoder with a predictor: reference .pt, ours, training checkpoint, a released name",
    )
    sources: str = opt(
        "model", help="comma-separated: model (the --encoder), random (its random twin), pixels"
    )
    layout: str = opt("auto", help=f"data layout: one of {', '.join(LAYOUTS)}")
    split: str = opt(
        "Main", help="IntPhys 2 split folder (Debug, Main, HeldOut: unlabelled, needs --threshold)"
    )
    out: str = opt("runs/physics", help="output folder: results.json, plots, cache/")
    cache_dir: str = opt("", help="surprise-curve cache (default: <out>/cache)")
    window: int = opt(8, help="frames per sliding window", min=2)
    context: int = opt(4, help="frames of each window the model sees; it predicts the rest", min=1)
    stride: int = opt(2, help="frames between window starts", min=1)
    frame_step: int = opt(1, help="keep every n-th frame of the video first", min=1)
    crop: int = opt(0, help="input size in pixels (0: the model's pretraining crop)", min=0)
    mask_index: int = opt(0, help="predictor mask token (this package's pretraining uses 0)", min=0)
    encoder_key: str = opt("target_encoder", help="encoder to read from a reference .pt")
    batch_size: int = opt(32, help="windows per model call", min=1)
    videos_per_step: int = opt(16, help="videos decoded and scored together (then cached)", min=1)
    max_pairs: int = opt(0, help="pairs per type to score (0: all)", min=0)
    plot_pairs: int = opt(4, help="pairs per type drawn in curves_<source>_<type>.png", min=0)
    resamples: int = opt(1000, help="bootstrap resamples for the 95 percent intervals", min=1)
    seed: int = opt(0, help="seed of the random twin and the bootstrap")
    threshold: float = opt(
        0.0,
        help="IntPhys 2 answers: a video is possible when its max surprise is below this (0: the "
        "official calibrated threshold of the labelled split; needed for HeldOut)",
        min=0.0,
    )
    dtype: str = opt("auto", help=INFERENCE_DTYPE_HELP)
    device: str = opt("auto", help=DEVICE_HELP)


def run_physics_eval(cfg: PhysicsEvalConfig) -> int:
    sources = [s.strip() for s in cfg.sources.split(",") if s.strip()]
    if not sources or any(s not in SOURCES for s in sources):
        raise UserError(f"--sources must be a comma-separated subset of {SOURCES}, got {cfg.sources!r}")
    if not cfg.data:
        raise UserError("give the data set (a folder or a CSV)")
    videos = limit_pairs(read_pairs(cfg.data, cfg.layout, cfg.split), cfg.max_pairs)
    if all(v.possible is None for v in videos) and not cfg.threshold:
        raise UserError(
            f"{cfg.data}: the {cfg.split} split has no labels: give --threshold (a max surprise; "
            "a labelled split's results.json holds its calibrated threshold) to answer its videos"
        )
    with Process(cfg.device, cfg.dtype, inference=True) as proc:
        cfg.device = str(proc.device)
        return score_all(cfg, sources, videos, proc.dtype)


def score_all(cfg: PhysicsEvalConfig, sources: list[str], videos, dtype: str) -> int:
    """Score every source on ``videos``; write results.json and the plots."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    windows = Windows(cfg.window, cfg.context, cfg.stride, cfg.frame_step)
    results = {"config": asdict(cfg) | {"dtype": dtype}, "sources": {}, "skipped": {}}
    for source in sources:
        curves, skipped = score_source(source, videos, windows, dtype, cfg)
        results["skipped"][source] = skipped
        results["sources"][source] = summarize(videos, curves, windows, cfg, cfg.threshold or None)
        found = results["sources"][source]["official"].get("intphys2")
        if found and found["answers"]:
            write_leaderboard(out / f"predictions_{source}.jsonl", videos, found["answers"])
        draw(source, videos, curves, windows, out, cfg)
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=1))
    print(table(results))
    print(f"physics-eval: wrote results.json, predictions and plots in {out}")
    return 0


def limit_pairs(videos: list[PhysicsVideo], max_pairs: int) -> list[PhysicsVideo]:
    """The first ``max_pairs`` pairs of each type (all when 0)."""
    if not max_pairs:
        return videos
    kept: dict[str, list[str]] = {}
    for v in videos:
        pairs = kept.setdefault(v.kind, [])
        if v.pair not in pairs and len(pairs) < max_pairs:
            pairs.append(v.pair)
    return [v for v in videos if v.pair in kept[v.kind]]


def score_source(
    source: str, videos: list[PhysicsVideo], windows: Windows, dtype: str, cfg
) -> tuple[dict, list]:
    """Curves {video path: (W,)} of one source, from the cache where it has them; unreadable
    videos are listed (with the reason) and their pairs dropped."""
    model, crop = None, cfg.crop or 64
    if source != "pixels":
        name = cfg.encoder if source == "model" else "random:" + cfg.encoder.removeprefix("random:")
        model = load_encoder(name, cfg.device, seed=cfg.seed, encoder_key=cfg.encoder_key)
        windows.check(model.encoder.cfg.tubelet)
        crop = cfg.crop or model.encoder.cfg.crop
    cache = CurveCache(
        Path(cfg.cache_dir or Path(cfg.out) / "cache"), source_key(model, windows, crop, dtype, cfg)
    )
    if model is not None:  # after the fingerprint, which reads the fp32 weights
        model = held(model, dtype)  # encoder and predictor held in bf16 / int8: no fp32 copy
    curves, skipped = {}, []
    todo = [v for v in videos if cache.get(v.path) is None]
    bar = tqdm(total=len(videos), desc=f"physics-eval {source}", initial=len(videos) - len(todo))
    for start in range(0, len(todo), cfg.videos_per_step):
        chunk, frames = [], []
        for v in todo[start : start + cfg.videos_per_step]:
            try:
                frames.append(load_frames(v.path))
                chunk.append(v)
            except UserError as err:
                skipped.append({"video": str(v.path), "pair": v.pair, "error": str(err)})
                log.warning("skipping pair %s: %s", v.pair, err)
        for v, curve in zip(
            chunk, surprise_curves(frames, windows, crop, model, cfg.batch_size, dtype, cfg.mask_index)
        ):
            cache.put(v.path, curve)
        cache.save()
        bar.update(len(todo[start : start + cfg.videos_per_step]))
    bar.close()
    bad_pairs = {s["pair"] for s in skipped}
    for v in videos:
        if v.pair not in bad_pairs:
            curves[str(v.path)] = cache.get(v.path)
    return curves, skipped


def source_key(model, windows: Windows, crop: int, dtype: str, cfg) -> str:
    """What the curves of a source depend on (weights, windows, crop, precision, mask token)."""
    weights = weights_fingerprint(model) if model is not None else "pixels"
    return json.dumps([weights, asdict(windows), crop, dtype, cfg.mask_index])


class CurveCache:
    """Surprise curves of one source on disk: ``<folder>/<hash of the key>.json``, each video
    under its path, size and modification time (so an edited file is scored again)."""

    def __init__(self, folder: Path, key: str):
        self.file = folder / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".json")
        self.data = json.loads(self.file.read_text()) if self.file.is_file() else {"key": key, "curves": {}}

    @staticmethod
    def video_key(path: Path) -> str:
        stat = path.stat()
        return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"

    def get(self, path: Path) -> np.ndarray | None:
        if not path.exists():
            return None
        curve = self.data["curves"].get(self.video_key(path))
        return np.asarray(curve) if curve is not None else None

    def put(self, path: Path, curve: np.ndarray) -> None:
        self.data["curves"][self.video_key(path)] = [float(x) for x in curve]

    def save(self) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.file) as tmp:
            tmp.write_text(json.dumps(self.data))


def draw(source: str, videos: list[PhysicsVideo], curves: dict, windows: Windows, out: Path, cfg) -> None:
    by_kind: dict[str, list[dict]] = {}
    drawn = set()  # one possible video and its twin per group: the first of each in the data
    for v in videos:
        if str(v.path) not in curves or v.possible is not True or v.pair in drawn:
            continue
        drawn.add(v.pair)
        twin = next(w for w in videos if w.pair == v.pair and w.possible is False)
        if str(twin.path) not in curves or len(by_kind.get(v.kind, [])) >= cfg.plot_pairs:
            continue
        curve = curves[str(v.path)]
        entry = {
            "pair": v.pair,
            "times": windows.times(len(curve)),
            "possible": curve,
            "impossible": curves[str(twin.path)],
        }
        by_kind.setdefault(v.kind, []).append(entry | {"event_frame": v.event_frame})
    for kind, pairs in by_kind.items():
        plot_pair_curves(pairs, out / f"curves_{source}_{kind}.png", f"{source}: surprise, {kind}")
    roc = {
        k: (p.ravel(), i.ravel())
        for k, (p, i) in pair_scores(videos, curves, np.max).items()
        if k != "overall"
    }
    if roc:
        plot_roc(roc, out / f"roc_{source}.png", f"{source}: max surprise, impossible = positive")
