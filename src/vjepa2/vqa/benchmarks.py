"""Readers for the public annotation layouts of two video-QA benchmarks, into ``QASample`` lists.

Users download the annotations and videos themselves (nothing is downloaded here) and score a
model with ``vjepa2 vqa eval --data FILE --layout mvpbench|causalvqa [--videos DIR]`` (an IntPhys 2
split folder: ``--layout intphys2``, ``vqa.intphys2_qa``).

- **MVPBench** (Minimal Video Pairs, ``facebook/minimal_video_pairs`` on Hugging Face; one
  subset per config: human_object_interactions, intuitive_physics, robot_object_interactions,
  temporal_reasoning; facebookresearch/minimal_video_pairs ``tasks/mvp/*.yaml``): records with
  ``video_id``, ``video_path`` (relative to the ``videos/`` folder the benchmark's download script
  fills, beside the annotations or one folder up), ``question``, ``candidates`` (two options, a
  list or its Python text form) and ``answer`` (the text of one candidate). The two videos of a
  minimal pair share their ``video_id`` up to its last ``_`` (``tasks/mvp/utils.py``
  ``compute_metrics``). Read from the hub's parquet files (through pyarrow), JSONL, JSON or CSV;
  ``--data`` may be the hub folder itself (``<subset>/<split>*.parquet``, every subset, split
  ``full``). A record's subset: its ``task`` / ``subset`` field, else the subset its folder or file
  is named after, else "mvp".
- **CausalVQA** (``CausalVQA/{debug,test}/<split>_metadata.csv``, videos in ``<split>/videos/``):
  one row per question, columns ``qid``, ``type`` (anticipation, counterfactual, descriptive,
  planning, hypothetical), ``question``, ``choices1`` / ``choices2`` (options joined by ``|``,
  each numbered ``"1. text"``; the second set perturbed and reordered), ``correct1`` /
  ``correct2`` (the number of the right option; blank in the test set, whose answers are
  withheld), ``difficulty`` (easy, med, hard) and ``renamed_video``. Each row gives two
  questions, one per choice set, paired by ``qid``: the pair counts only when both are right (the
  benchmark's paired accuracy). A question's type is its bucket, ``<type>_<difficulty>``
  lower-cased (facebookresearch/CausalVQA ``scripts/prep_mllm_eval.py``: strata; ``tasks/*.yaml``).
  Rows without answers (the test split) are read unlabelled: answered for the leaderboard file,
  never scored.

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

import pyarrow as pa
import pyarrow.parquet as pq

from vjepa2.errors import MissingPathError, UserError
from vjepa2.vqa.data import QASample, collect, jsonl_records, read_qa
from vjepa2.vqa.intphys2_qa import is_split_folder, read_intphys2_questions

LAYOUTS = ("auto", "jsonl", "mvpbench", "causalvqa", "intphys2")
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
MVP_SUBSETS = (
    "human_object_interactions",
    "intuitive_physics",
    "robot_object_interactions",
    "temporal_reasoning",
)
PARQUET_MAGIC = b"PAR1"
OPTION = re.compile(r"^\s*(\d+)\s*[.)]\s*(.*?)\s*$", re.DOTALL)


def video_folder(path: Path, videos: str | Path = "") -> Path:
    """``videos`` when given, else a ``videos/`` folder beside the file or one level up, else the
    file's folder."""
    if videos:
        return Path(videos)
    for folder in (path.parent, path.parent.parent):
        if (folder / "videos").is_dir():
            return folder / "videos"
    return path.parent


def is_parquet(path: Path) -> bool:
    """A parquet file (its magic bytes, whatever its name): never handed to a text decoder."""
    with open(path, "rb") as fh:
        return fh.read(4) == PARQUET_MAGIC


def parquet_records(path: Path) -> Iterator[tuple[str, object]]:
    """Numbered records ("#i", from 1) of a parquet table, through pyarrow."""
    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as err:
        raise UserError(f"{path}: not a readable parquet file ({err})") from None
    yield from ((f"#{i}", r) for i, r in enumerate(rows, start=1))


def not_text(path: Path) -> UserError:
    return UserError(
        f"{path}: not UTF-8 text (a binary file? MVPBench's parquet files are read by their content)"
    )


def csv_records(path: Path) -> Iterator[tuple[str, dict]]:
    """(line number, row) of a CSV with a header; the number is the row's last line."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                yield str(reader.line_num), row
    except UnicodeDecodeError:
        raise not_text(path) from None


def json_records(path: Path) -> Iterator[tuple[str, object]]:
    """Numbered records of a JSON list ("#i", from 1) or a JSONL file (line numbers)."""
    try:
        text = path.read_text(encoding="utf-8").lstrip()
    except UnicodeDecodeError:
        raise not_text(path) from None
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


def mvp_subset(path: Path) -> str:
    """The subset a file belongs to by its folder's or its own name ("" when neither says)."""
    for name in (path.parent.name, path.stem):
        found = [s for s in MVP_SUBSETS if s in name]
        if found:
            return found[0]
    return ""


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
        "type": str(record.get("task") or record.get("subset") or kind or "mvp"),
        "meta": {"benchmark": "mvpbench", "video_id": video_id},
    }


def read_mvpbench(
    path: str | Path,
    videos: str | Path = "",
    kind: str = "",
    report: Callable[[str], None] = print,
    split: str = "full",
) -> list[QASample]:
    """MVPBench questions: a parquet, JSONL, JSON or CSV file, or the hub folder (every subset's
    ``split`` files); ``kind``: the subset of records that name none (default: the file's)."""
    path = Path(path)
    if path.is_dir():
        return mvp_folder(path, videos, report, split)
    path = _existing(path)
    if is_parquet(path):
        records = parquet_records(path)
    else:
        records = csv_records(path) if path.suffix.lower() == ".csv" else json_records(path)
    kind = kind or mvp_subset(path)
    return collect(path, records, video_folder(path, videos), report, lambda r: mvp_record(r, kind))


def mvp_folder(root: Path, videos: str | Path, report: Callable[[str], None], split: str) -> list[QASample]:
    """Every subset of a hub folder: ``<subset>/<split>*.parquet`` (or a ``<split>/`` folder)."""
    files = [
        f
        for subset in MVP_SUBSETS
        for f in sorted((root / subset).rglob("*.parquet"))
        if f.name.startswith(split) or f.parent.name == split
    ]
    if not files:
        raise MissingPathError(
            f"{root}: no MVPBench annotations: expected <subset>/{split}*.parquet for subsets {', '.join(MVP_SUBSETS)}"
        )
    folder = Path(videos) if videos else video_folder(root / "x", "")
    return [s for f in files for s in read_mvpbench(f, folder, report=report)]


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


def withheld(value) -> bool:
    """No answer: a blank cell (the test split), or "nan" as a table library writes one."""
    return value is None or str(value).strip().lower() in ("", "nan")


def _option_number(value: str) -> str:
    """The right option's number: "2", or "2.0" as a table library writes a column with blanks."""
    value = str(value).strip()
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
    answer = None
    if not withheld(record[f"correct{n}"]):
        number = _option_number(record[f"correct{n}"])
        if number not in options:
            raise ValueError(f"correct{n} = {number} is not one of the options {sorted(options)}")
        answer = options[number]
    kind, difficulty = str(record["type"]).strip(), str(record.get("difficulty") or "").strip()
    meta = {"benchmark": "causalvqa", "qid": str(record["qid"]), "n": int(n) - 1, "task": kind}
    return {
        "video": record["renamed_video"],
        "question": record["question"],
        "answer": answer,
        "choices": list(options.values()),
        "pair_id": str(record["qid"]),
        "type": "_".join(x for x in (kind.lower(), difficulty.lower()) if x) or "causalvqa",
        "meta": meta | {"subset": difficulty, "withheld": answer is None},
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
    """jsonl, mvpbench or causalvqa, from the file's first record (a parquet file or a folder:
    MVPBench's hub annotations; an IntPhys 2 split folder)."""
    if is_split_folder(path):
        return "intphys2"
    if path.is_dir() or is_parquet(path):
        return "mvpbench"
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = fh.read(4096)
    if path.suffix.lower() == ".csv":
        header = head.splitlines()[0] if head else ""
        return "causalvqa" if "choices1" in header else "mvpbench"
    return "mvpbench" if '"candidates"' in head and '"video_path"' in head else "jsonl"


def read_questions(
    path: str | Path, layout: str = "auto", videos: str | Path = "", report: Callable[[str], None] = print
) -> list[QASample]:
    """Questions in any supported layout (``LAYOUTS``; auto: told apart by the first record)."""
    layout = resolve_layout(path, layout)
    if layout == "mvpbench":
        return read_mvpbench(path, videos, report=report)
    if layout == "causalvqa":
        return read_causalvqa(path, videos, report)
    if layout == "intphys2":
        return read_intphys2_questions(path)
    return read_qa(path, report, videos)


def resolve_layout(path: str | Path, layout: str = "auto") -> str:
    """The layout of ``path``: ``layout`` itself, or the one ``detect_layout`` finds; a folder
    is MVPBench's hub folder, and a parquet file only MVPBench's."""
    if layout not in LAYOUTS:
        raise UserError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    path = Path(path)
    if not path.is_dir():
        path = _existing(path)
    layout = detect_layout(path) if layout == "auto" else layout
    if layout not in ("mvpbench", "intphys2") and (path.is_dir() or is_parquet(path)):
        raise UserError(f"{path}: a parquet file or a folder is read as MVPBench only, not as {layout}")
    if layout == "intphys2" and not is_split_folder(path):
        raise UserError(f"{path}: not an IntPhys 2 split folder (metadata.csv or Videos/ inside)")
    return layout
