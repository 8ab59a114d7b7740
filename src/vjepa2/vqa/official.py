"""The official scores of MVPBench and CausalVQA, from ``vqa eval``'s scored records, and the
files their leaderboards take.

MVPBench (facebookresearch/minimal_video_pairs ``tasks/mvp/utils.py`` ``compute_metrics``,
``tasks/mvp/mvp.yaml``): per subset, ``single_accuracy`` = 100 x right questions / questions and
``pair_accuracy`` = 100 x pairs with both questions right / pairs, a pair being the records whose
``video_id`` agree up to the last ``_``; the ``mvp`` group is the unweighted mean over the four
subsets (``weight_by_size: false``). Leaderboard rows (``generate_leaderboard_submission_df``):
``data_name`` "mvp", ``row_id`` = video_id, ``model_answer`` = the chosen candidate's text, ``task``.

CausalVQA (facebookresearch/CausalVQA ``tasks/utils.py`` ``causalvqa_aggregate_results``,
``tasks/causalvqa.yaml``, ``tasks/debug_causalvqa.yaml``): per bucket (question type x
difficulty), over its qids: ``paired_accuracy`` = 100 x qids with both choice sets right / qids,
``single_accuracy`` = 100 x (qids with both right + half the qids with one right) / qids; the
``causalvqa`` group is the unweighted mean over the 15 buckets, ``debug_causalvqa`` the mean over
the 5 easy buckets weighted by their number of questions (``weight_by_size: true``). For the test
split, whose answers are withheld, the file written holds each question's ``qid``, choice set
``n`` (0, 1), ``task``, ``subset`` and ``pred_answer``: the chosen option's letter (A, B, ... in
the order of the choice set, as ``scripts/prep_mllm_eval.py`` letters them), which the official
``mcq_acc`` reads as it is; the repository states no other form.
"""

from __future__ import annotations

import json
import string
from collections import defaultdict
from pathlib import Path

from vjepa2.atomic import atomic_open
from vjepa2.vqa.intphys2_qa import intphys2_scores

CAUSAL_TYPES = ("anticipation", "counterfactual", "descriptive", "hypothetical", "planning")
CAUSAL_BUCKETS = tuple(f"{t}_{d}" for d in ("easy", "med", "hard") for t in CAUSAL_TYPES)
DEBUG_BUCKETS = CAUSAL_BUCKETS[:5]  # the easy ones


def mvp_pair_key(video_id: str) -> str:
    return "_".join(video_id.split("_")[:-1])  # the official key, "" for an id without "_"


def mvp_subset_scores(records: list[dict]) -> dict:
    """{"questions", "pairs", "single_accuracy", "pair_accuracy"} of one subset's scored records;
    a lone half counts as a pair that is not right (the official code stops on it)."""
    pairs: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        pairs[mvp_pair_key(r["meta"]["video_id"])].append(bool(r["correct"]))
    return {
        "questions": len(records),
        "pairs": len(pairs),
        "single_accuracy": 100.0 * sum(bool(r["correct"]) for r in records) / len(records),
        "pair_accuracy": 100.0 * sum(len(v) == 2 and all(v) for v in pairs.values()) / len(pairs),
    }


def causal_bucket_scores(records: list[dict]) -> dict:
    """{"questions", "qids", "single_accuracy", "paired_accuracy"} of one bucket's scored records."""
    right: dict[str, int] = defaultdict(int)
    for r in records:
        right[r["meta"]["qid"]] += int(bool(r["correct"]))
    both, one = sum(v == 2 for v in right.values()), sum(v == 1 for v in right.values())
    return {
        "questions": len(records),
        "qids": len(right),
        "single_accuracy": 100.0 * (both + 0.5 * one) / len(right),
        "paired_accuracy": 100.0 * both / len(right),
    }


def group_mean(
    table: dict, members: tuple[str, ...] | None, metrics: tuple[str, ...], weighted: bool
) -> dict:
    """The lmms-eval group aggregate of ``members`` (all of ``table`` when None): a mean of each
    metric, weighted by questions or not; the members the data lacks are named."""
    names = list(table) if members is None else [m for m in members if m in table]
    missing = [] if members is None else [m for m in members if m not in table]
    if not names:
        return {"members": [], "missing": missing}
    sizes = [table[n]["questions"] if weighted else 1 for n in names]
    out = {m: sum(table[n][m] * s for n, s in zip(names, sizes)) / sum(sizes) for m in metrics}
    return out | {"weight_by_size": weighted, "members": names, "missing": missing}


def official_scores(records: list[dict], benchmark: str, debug: bool = False) -> dict:
    """{"benchmark", "headline": group name, "groups": {...}, "table": per subset or bucket}
    of the scored (labelled) records of one benchmark; {} for any other data."""
    if benchmark == "intphys2":
        accuracy = intphys2_scores(records)
        rule = 'possible when the picked answer reads "yes" (IntPhys2 notebook label_pred_yes_no)'
        return (
            {"benchmark": benchmark, "headline": "all", "decision_rule": rule, "accuracy": accuracy}
            if accuracy
            else {}
        )
    scored = [r for r in records if r.get("correct") is not None and r.get("meta")]
    by_type: dict[str, list[dict]] = defaultdict(list)
    for r in scored:
        by_type[r["type"]].append(r)
    if benchmark == "mvpbench" and scored:
        table = {k: mvp_subset_scores(v) for k, v in sorted(by_type.items())}
        metrics = ("pair_accuracy", "single_accuracy")
        groups = {"mvp": group_mean(table, None, metrics, weighted=False)}
        return {"benchmark": benchmark, "headline": "mvp", "groups": groups, "table": table}
    if benchmark == "causalvqa" and scored:
        table = {k: causal_bucket_scores(v) for k, v in sorted(by_type.items())}
        metrics = ("paired_accuracy", "single_accuracy")
        groups = {
            "causalvqa": group_mean(table, CAUSAL_BUCKETS, metrics, weighted=False),
            "debug_causalvqa": group_mean(table, DEBUG_BUCKETS, metrics, weighted=True),
        }
        headline = "debug_causalvqa" if debug else "causalvqa"
        return {"benchmark": benchmark, "headline": headline, "groups": groups, "table": table}
    return {}


def leaderboard_rows(records: list[dict], benchmark: str) -> list[dict]:
    """The leaderboard's rows of every answered multiple-choice record (see the module docstring)."""
    rows = []
    for r in (r for r in records if r.get("choices") and r.get("meta")):
        if benchmark == "mvpbench":
            rows.append({"data_name": "mvp", "row_id": r["meta"]["video_id"], "model_answer": r["prediction"],
                         "task": r["type"]})  # fmt: skip
        elif benchmark == "intphys2":
            rows.append({"filename": r["meta"]["filename"], "model_answer": r["prediction"] == "Yes"})
        elif benchmark == "causalvqa":
            letter = string.ascii_uppercase[r["choices"].index(r["prediction"])]
            meta = r["meta"]
            rows.append({"qid": meta["qid"], "n": meta["n"], "task": meta["task"], "subset": meta["subset"],
                         "pred_answer": letter})  # fmt: skip
    return rows


def write_leaderboard(path: Path, records: list[dict], benchmark: str) -> int:
    """Write the leaderboard JSONL; returns its number of lines (0: nothing written)."""
    rows = leaderboard_rows(records, benchmark)
    if rows:
        with atomic_open(path, "w") as fh:
            fh.writelines(json.dumps(row) + "\n" for row in rows)
    return len(rows)


def official_table(found: dict) -> str:
    """The headline group, the other groups, then one row per subset / bucket."""
    if not found:
        return ""
    if found["benchmark"] == "intphys2":
        lines = [
            f"IntPhys 2 per-video accuracy ({found['decision_rule']})",
            f"{'breakdown':<12} {'subset':<14} {'videos':>7} {'accuracy':>9}",
        ]
        for breakdown, cells in found["accuracy"].items():
            lines += [
                f"{breakdown:<12} {name:<14} {c['videos']:>7} {c['accuracy']:>9.2f}"
                for name, c in cells.items()
            ]
        return "\n".join(lines)
    pair = "pair_accuracy" if found["benchmark"] == "mvpbench" else "paired_accuracy"
    lines = [f"{'official':<28} {'questions':>9} {'paired':>7} {'single':>7}"]
    for name in [found["headline"], *(g for g in found["groups"] if g != found["headline"])]:
        g = found["groups"][name]
        if pair in g:
            note = f"  (missing: {', '.join(g['missing'])})" if g["missing"] else ""
            lines.append(f"{name:<28} {'':>9} {g[pair]:>7.2f} {g['single_accuracy']:>7.2f}{note}")
    for name, row in found["table"].items():
        lines.append(f"  {name:<26} {row['questions']:>9} {row[pair]:>7.2f} {row['single_accuracy']:>7.2f}")
    return "\n".join(lines)
