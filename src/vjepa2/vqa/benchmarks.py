"""Readers for the public annotation layouts of two video-QA benchmarks, into ``QASample`` lists.

Users download the annotations and videos themselves (nothing is downloaded here) and score a
model with ``vjepa2 vqa eval --data FILE --layout mvpbench|causalvqa [--videos DIR]``.

- **MVPBench** (Minimal Video Pairs, ``facebook/minimal_video_pairs`` on Hugging Face; one
  subset per config: human_object_interactions, intuitive_physics, robot_object_interactions,
  temporal_reasoning): records with ``video_id``, ``video_path`` (relative to the ``videos/``
  folder the benchmark's download script fills), ``question``, ``candidates`` (two options, a list
  or its Python text form) and ``answer`` (the text of one candidate). The two videos of a minimal
  pair share their ``video_id`` up to its last ``_``: same question and options, different answers.
  Read from JSONL (a record a line), JSON (a list of records) or CSV (a header with those columns).
- **CausalVQA** (``CausalVQA/{debug,test}/<split>_metadata.csv``, videos in ``<split>/videos/``):
  one row per question, columns ``qid``, ``type`` (anticipation, counterfactual, descriptive,
  planning, hypothetical), ``question``, ``choices1`` / ``choices2`` (options joined by ``|``,
  each numbered ``"1. text"``; the second set perturbed and reordered), ``correct1`` /
  ``correct2`` (the number of the right option; blank in the test set, whose answers are
  withheld), ``difficulty`` and ``renamed_video``. Each row gives two questions, one per choice
  set, paired by ``qid``: the pair counts only when both are right (the benchmark's paired
  accuracy). Rows without answers are reported and skipped.

Video paths are relative to ``videos`` when given, else to ``<annotation folder>/videos`` when that
folder exists, else to the annotation folder.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from vjepa2.errors import MissingPathError, UserError
from vjepa2.vqa.data import QASample, collect, jsonl_records, read_qa

LAYOUTS = ("auto", "jsonl", "mvpbench", "causalvqa")
MVP_FIELDS = ("video_id", "video_path", "question", "candidates", "answer")
CAUSALVQA_FIELDS = (
    "qid",
    "type",
    "question",
    "choices1",
    "correct1",
    "choices2",
    "correct2",
    "renamed_video",
)
OPTION = re.compile(r"^\s*(\d+)\s*[.)]\s*(.*?)\s*$", re.DOTALL)


def video_folder(path: Path, videos: str | Path = "") -> Path:
    if videos:
        return Path(videos)
    return path.parent / "videos" if (path.parent / "videos").is_dir() else path.parent


def csv_records(path: Path) -> Iterator[tuple[str, dict]]:
    """(line number, row) of a CSV with a header; the number is the row's last line."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            yield str(reader.line_num), row


def json_records(path: Path) -> Iterator[tuple[str, object]]:
    """Numbered records of a JSON list ("#i", from 1) or a JSONL file (line numbers)."""
    text = path.read_text(encoding="utf-8").lstrip()
    if text.startswith("["):
        try:
            records = json.loads(text)
        except ValueError as err:
            raise UserError(f"{path}: not a JSON list of records ({err})") from None
        yield from ((f"#{i}", r) for i, r in enumerate(records, start=1))
    else:
        yield from jsonl_records(path)


def _as_dict(record) -> dict:
    if isinstance(record, Exception):
        raise ValueError(f"not JSON ({record})")
    if not isinstance(record, dict):
        raise ValueError(f"expected a record (an object), got {type(record).__name__}")
    return record


# -- MVPBench -------------------------------------------------------------------------------------
def mvp_pair_id(video_id: str) -> str:
    """The pair a video belongs to: its ``video_id`` without the last ``_`` part."""
    return video_id.rsplit("_", 1)[0] if "_" in video_id else video_id


def mvp_record(record, kind: str = "") -> dict:
    """An MVPBench record -> our record (see the module docstring)."""
    record = _as_dict(record)
    missing = [k for k in MVP_FIELDS if record.get(k) in (None, "")]
    if missing:
        raise ValueError(f"missing MVPBench fields {missing}")
    candidates = record["candidates"]
    if isinstance(candidates, str):
        try:
            candidates = ast.literal_eval(candidates)  # a Python list written as text
        except (ValueError, SyntaxError):
            raise ValueError(f"'candidates' is not a list: {candidates!r}") from None
    choices = [str(c) for c in candidates] if isinstance(candidates, (list, tuple)) else candidates
    video_id = str(record["video_id"])
    return {
        "video": str(record["video_path"]),
        "question": record["question"],
        "answer": str(record["answer"]),
        "choices": choices,
        "pair_id": mvp_pair_id(video_id),
        "type": kind or str(record.get("task") or record.get("subset") or "mvp"),
    }


def read_mvpbench(
    path: str | Path, videos: str | Path = "", kind: str = "", report: Callable[[str], None] = print
) -> list[QASample]:
    """MVPBench questions (JSONL, JSON or CSV); ``kind``: the type to score them under (default:
    the record's ``task`` / ``subset``, else "mvp")."""
    path = _existing(path)
    records = csv_records(path) if path.suffix.lower() == ".csv" else json_records(path)
    return collect(path, records, video_folder(path, videos), report, lambda r: mvp_record(r, kind))


# -- CausalVQA ------------------------------------------------------------------------------------
def causalvqa_options(text: str) -> dict[str, str]:
    """``"1. a|2. b"`` -> {"1": "a", "2": "b"} (option number -> text)."""
    options = {}
    for part in text.split("|"):
        match = OPTION.match(part)
        if not match or not match.group(2):
            raise ValueError(f"option {part.strip()!r} is not numbered like '1. text'")
        options[match.group(1)] = match.group(2)
    if len(options) < 2:
        raise ValueError(f"fewer than two options in {text!r}")
    return options


def _option_number(value: str) -> str:
    """The right option's number: "2", or "2.0" as a table library writes a column with blanks."""
    value = str(value).strip()
    if not value or value.lower() == "nan":
        raise ValueError("no answer (the CausalVQA test set withholds them: score the debug set)")
    try:
        return str(int(float(value)))
    except ValueError:
        raise ValueError(f"the answer must be an option number, got {value!r}") from None


def causalvqa_records(path: Path) -> Iterator[tuple[str, object]]:
    """Two numbered records per CSV row, one per choice set ("12/1", "12/2"); a row the header
    does not fit yields its error."""
    for line, row in csv_records(path):
        missing = [k for k in CAUSALVQA_FIELDS if k not in row or row[k] is None]
        for n in ("1", "2"):
            if missing:
                yield f"{line}/{n}", ValueError(f"missing CausalVQA columns {missing}")
                continue
            yield f"{line}/{n}", {**row, "_set": n}


def causalvqa_record(record) -> dict:
    """One choice set of a CausalVQA row -> our record."""
    if isinstance(record, Exception):
        raise record
    n = record["_set"]
    options = causalvqa_options(record[f"choices{n}"])
    number = _option_number(record[f"correct{n}"])
    if number not in options:
        raise ValueError(f"correct{n} = {number} is not one of the options {sorted(options)}")
    return {
        "video": record["renamed_video"],
        "question": record["question"],
        "answer": options[number],
        "choices": list(options.values()),
        "pair_id": str(record["qid"]),
        "type": str(record["type"]).strip().lower() or "causalvqa",
    }


def read_causalvqa(
    path: str | Path, videos: str | Path = "", report: Callable[[str], None] = print
) -> list[QASample]:
    """CausalVQA questions of a ``<split>_metadata.csv`` (two per row, paired by ``qid``)."""
    path = _existing(path)
    return collect(path, causalvqa_records(path), video_folder(path, videos), report, causalvqa_record)


# -- any layout -----------------------------------------------------------------------------------
def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"question file not found: {path}")
    return path


def detect_layout(path: Path) -> str:
    """jsonl, mvpbench or causalvqa, from the file's first record."""
    with open(path, encoding="utf-8") as fh:
        head = fh.read(4096)
    if path.suffix.lower() == ".csv":
        header = head.splitlines()[0] if head else ""
        return "causalvqa" if "choices1" in header else "mvpbench"
    return "mvpbench" if '"candidates"' in head and '"video_path"' in head else "jsonl"


def read_questions(
    path: str | Path, layout: str = "auto", videos: str | Path = "", report: Callable[[str], None] = print
) -> list[QASample]:
    """Questions in any supported layout (``LAYOUTS``; auto: told apart by the first record)."""
    if layout not in LAYOUTS:
        raise UserError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    path = _existing(path)
    layout = detect_layout(path) if layout == "auto" else layout
    if layout == "mvpbench":
        return read_mvpbench(path, videos, report=report)
    if layout == "causalvqa":
        return read_causalvqa(path, videos, report)
    return read_qa(path, report, videos)
