"""``vjepa2 vqa eval``: accuracy of a VQA model on a question set, per question type.

- multiple choice: the choice of highest likelihood (``inference.choice_logprobs``);
- open answers: greedy generation, right when equal to the answer after ``data.normalize``;
- paired accuracy: a minimal pair (questions sharing a ``pair_id``) counts only when every one of
  its questions is right, so a model that answers the same thing for two near-identical videos
  gets none of them.

On MVPBench and CausalVQA the headline is the benchmark's own (``vqa.official``: the group mean
its task config defines, then its per-subset / per-bucket table); this project's per-type table
(a pooled "overall") follows under it. Questions whose answers a split withholds (CausalVQA's
test split) are answered, never scored.

Writes ``results.json`` (``official`` first; ``results``: per type questions, accuracy, chance,
pairs, paired accuracy; overall), ``predictions.jsonl`` (every question with its prediction and
the scores of its choices) and, for a benchmark, ``leaderboard.jsonl`` (its leaderboard's rows).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from vjepa2.atomic import atomic_open, atomic_write_json
from vjepa2.config import opt
from vjepa2.errors import UserError
from vjepa2.models.precision import DEVICE_HELP, VQA_DTYPE_HELP
from vjepa2.runtime.process import Process
from vjepa2.vqa import official
from vjepa2.vqa.benchmarks import read_questions, resolve_layout
from vjepa2.vqa.data import QASample, normalize
from vjepa2.vqa.features import video_tokens
from vjepa2.vqa.inference import choice_logprobs, generate
from vjepa2.vqa.pipeline import VideoQA

RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.jsonl"
LEADERBOARD_FILE = "leaderboard.jsonl"


@dataclass
class VQAEvalConfig:
    model: str = opt("runs/vqa/model", help="VQA model folder (`vjepa2 vqa train` writes <run.out>/model)")
    data: str = opt(
        "",
        help="questions to score: JSONL (video, question, answer, choices?, pair_id?, type?), an MVPBench "
        "annotation file (parquet, JSONL, JSON, CSV) or hub folder, a CausalVQA <split>_metadata.csv, or an "
        "IntPhys 2 split folder",
    )
    layout: str = opt(
        "auto", help="layout of --data: auto, jsonl, mvpbench, causalvqa or intphys2 (a split folder)"
    )
    videos: str = opt(
        "", help="folder the video paths of --data are relative to (default: see vqa.benchmarks)"
    )
    out: str = opt(
        "runs/vqa-eval",
        help="folder for results.json and predictions.jsonl (its own: never the model's run folder)",
    )
    device: str = opt("auto", help=DEVICE_HELP)
    dtype: str = opt("auto", help=f"precision of the encoder and the LM: {VQA_DTYPE_HELP}")
    batch_size: int = opt(16, help="questions per forward pass (each choice is one sequence)", min=1)
    max_new_tokens: int = opt(16, help="longest generated answer to an open question", min=1)
    cache_dir: str = opt("", help="encoder-token cache folder (default: <out>/features)")
    workers: int = opt(1, help="video-decoding worker processes")


def predict(
    qa: VideoQA,
    samples: list[QASample],
    tokens: dict | None,
    dtype: str,
    batch_size: int,
    max_new_tokens: int,
) -> list[dict]:
    """One record per sample: its fields, the prediction, whether it is right (and choice scores)."""
    closed = [s for s in samples if s.choices]
    scores = dict(
        zip(map(id, closed), choice_logprobs(qa.model, qa.prompts, closed, tokens, dtype, batch_size))
    )
    records = []
    for s in samples:
        record = {"video": str(s.video), "question": s.question, "answer": s.answer}
        record.update(type=s.type, pair_id=s.pair_id, meta=s.meta)
        if s.choices:
            logp = scores[id(s)]
            best = max(range(len(logp)), key=logp.__getitem__)
            record.update(choices=s.choices, logprobs=logp, prediction=s.choices[best])
            record["correct"] = None if s.answer is None else s.choices[best] == s.answer  # None: withheld
        else:
            features = tokens[str(s.video)][None].to(qa.device) if tokens is not None else None
            text = generate(qa.model, qa.prompts, s.question, features, max_new_tokens, dtype=dtype)
            record.update(prediction=text, correct=normalize(text) == normalize(s.answer))
        records.append(record)
    return records


def summarize(records: list[dict]) -> dict:
    """Per type and overall (all questions pooled): questions, accuracy (%), chance (%, multiple
    choice), pairs, paired accuracy (%, the pairs whose every question is right); questions whose
    answer is withheld are left out ({} when every one is)."""
    records = [r for r in records if r.get("correct") is not None]
    if not records:
        return {}
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[r["type"]].append(r)
    summary = {kind: _group_metrics(rows) for kind, rows in sorted(groups.items())}
    summary["overall"] = _group_metrics(records)
    return summary


def _group_metrics(rows: list[dict]) -> dict:
    pairs: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        if r.get("pair_id") is not None:
            pairs[r["pair_id"]].append(r["correct"])
    pairs = {k: v for k, v in pairs.items() if len(v) >= 2}  # a lone half is no pair
    closed = [r for r in rows if r.get("choices")]
    out = {
        "questions": len(rows),
        "accuracy": 100.0 * sum(r["correct"] for r in rows) / len(rows),
        "chance": 100.0 * sum(1 / len(r["choices"]) for r in closed) / len(closed) if closed else None,
        "pairs": len(pairs),
        "paired_accuracy": 100.0 * sum(all(v) for v in pairs.values()) / len(pairs) if pairs else None,
    }
    return out


def table(summary: dict) -> str:
    """The summary as a text table (what the command prints)."""
    lines = [f"{'type':<12} {'questions':>9} {'accuracy':>9} {'chance':>7} {'pairs':>6} {'paired':>7}"]
    for kind, m in summary.items():
        chance = f"{m['chance']:.1f}" if m["chance"] is not None else "-"
        paired = f"{m['paired_accuracy']:.1f}" if m["paired_accuracy"] is not None else "-"
        lines.append(
            f"{kind:<12} {m['questions']:>9} {m['accuracy']:>9.1f} {chance:>7} {m['pairs']:>6} {paired:>7}"
        )
    return "\n".join(lines)


def write_results(
    out: Path, summary: dict, records: list[dict], info: dict, found: dict | None = None
) -> None:
    """results.json (the official scores first), predictions.jsonl and, for a benchmark, its
    leaderboard file."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RESULTS_FILE, {"official": found or {}, **info, "results": summary})
    with atomic_open(out / PREDICTIONS_FILE, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    if info.get("benchmark") in ("mvpbench", "causalvqa", "intphys2"):
        official.write_leaderboard(out / LEADERBOARD_FILE, records, info["benchmark"])


def score(
    qa: VideoQA,
    samples: list[QASample],
    dtype: str,
    batch_size: int = 16,
    max_new_tokens: int = 16,
    cache_dir: str | Path | None = None,
    workers: int = 1,
    tokens: dict | None = None,
) -> tuple[dict, list]:
    """(summary, records) of ``qa`` on ``samples``; videos are encoded unless ``tokens`` are given,
    and questions about unreadable videos are left out."""
    if qa.video and tokens is None:
        tokens = video_tokens(
            [s.video for s in samples], qa.encoder, qa.spec, dtype, cache_dir, batch_size, workers
        )
    if qa.video:
        samples = [s for s in samples if str(s.video) in tokens]
    records = predict(qa, samples, tokens if qa.video else None, dtype, batch_size, max_new_tokens)
    return summarize(records), records


def run_vqa_eval(cfg: VQAEvalConfig) -> int:
    if not cfg.data:
        raise UserError("give the questions to score with --data (a JSONL file)")
    layout = resolve_layout(cfg.data, cfg.layout)
    samples = read_questions(cfg.data, layout, cfg.videos)
    with Process(cfg.device, cfg.dtype, inference=True) as proc:
        return score_folder(cfg, samples, str(proc.device), proc.dtype, layout)


def score_folder(cfg: VQAEvalConfig, samples, device: str, dtype: str, layout: str = "jsonl") -> int:
    qa = VideoQA.load(cfg.model, device)
    out = Path(cfg.out)
    cache = cfg.cache_dir or out / "features"
    summary, records = score(qa, samples, dtype, cfg.batch_size, cfg.max_new_tokens, cache, cfg.workers)
    debug = Path(cfg.data).name.lower().startswith("debug")  # CausalVQA's debug split: its own group
    found = official.official_scores(records, layout, debug)
    info = {"model": str(cfg.model), "data": str(cfg.data), "video": qa.video, "benchmark": layout}
    write_results(out, summary, records, info, found)
    if found:
        print(official.official_table(found) + "\n\nthis project's per-type table (all questions pooled):")
    print(table(summary) if summary else "no question with an answer: nothing scored (see leaderboard.jsonl)")
    print(f"vqa eval: wrote {RESULTS_FILE} and {PREDICTIONS_FILE} in {out}")
    return 0
