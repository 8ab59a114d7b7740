"""Question-answer sets: JSONL files, one question about one video per line.

    {"video": "videos/a.mp4", "question": "Which way ...?", "answer": "left",
     "choices": ["left", "right"], "pair_id": "p7", "type": "direction"}

``video``, ``question`` and ``answer`` are required. ``choices`` (optional) makes the question
multiple choice: it is scored by the likelihood of each choice, and the answer must be one of them;
without choices the answer is open and scored by exact match after ``normalize``. Questions with the
same ``pair_id`` form a minimal pair (near-identical videos, different answers: the pair counts
only when every question of it is right). ``type`` (optional, default "all") groups the scores.
Video paths are relative to the JSONL file's folder. A line that is not such a record (bad JSON, a
missing or wrong field, a video that does not exist) is reported with its line number and skipped.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vjepa2.errors import MissingPathError, UserError

DEFAULT_TYPE = "all"


@dataclass
class QASample:
    """One question about one video (see the module docstring for the fields); ``answer`` is
    None where a benchmark's split withholds it (answered for its leaderboard, never scored);
    ``meta``: the benchmark's own fields (ids, subset) for its official scorer."""

    video: Path
    question: str
    answer: str | None
    choices: list[str] | None = None
    pair_id: str | None = None
    type: str = DEFAULT_TYPE
    where: str = ""  # "file:line", for messages
    meta: dict = field(default_factory=dict)


def _text(record: dict, key: str, required: bool = True) -> str | None:
    value = record.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def parse_record(record, folder: Path, where: str = "") -> QASample:
    """A JSONL record -> QASample; ValueError says what is wrong with it."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    video = Path(_text(record, "video"))
    # absolute: the feature cache is keyed by the path, which must not depend on the working folder
    video = video if video.is_absolute() else folder.absolute() / video
    if not video.exists():
        raise ValueError(f"video not found: {video}")
    meta = record.get("meta") or {}  # set by a benchmark reader, never by a JSONL line's author
    withheld = meta.get("withheld", False) and record.get("answer") is None
    answer = None if withheld else _text(record, "answer")
    choices = record.get("choices")
    if withheld and choices is None:
        raise ValueError("no answer and no choices: nothing to score or to answer")
    if choices is not None:
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise ValueError(f"'choices' must be a list of two or more strings, got {choices!r}")
        choices = [c.strip() for c in choices]
        if answer is not None and answer not in choices:
            raise ValueError(f"the answer {answer!r} is not one of the choices {choices}")
    pair_id = record.get("pair_id")
    if pair_id is not None and not isinstance(pair_id, (str, int)):
        raise ValueError(f"'pair_id' must be a string, got {pair_id!r}")
    kind = _text(record, "type", required=False) or DEFAULT_TYPE
    question = _text(record, "question")
    pair_id = None if pair_id is None else str(pair_id)
    return QASample(video, question, answer, choices, pair_id, kind, where, dict(meta))


def collect(
    path: Path,
    records: Iterable[tuple[str, object]],
    folder: Path,
    report: Callable[[str], None] = print,
    convert: Callable[[object], dict] | None = None,
) -> list[QASample]:
    """QASamples of numbered records ((where in the file, record) pairs: "12" for line 12); a
    record that ``convert`` (a benchmark layout -> our record) or ``parse_record`` refuses is
    reported as ``path:where: skipped: why`` and skipped. No valid record at all is an error."""
    samples, skipped = [], 0
    for where, record in records:
        try:
            record = convert(record) if convert is not None else record
            samples.append(parse_record(record, folder, f"{path}:{where}"))
        except ValueError as err:  # json.JSONDecodeError is a ValueError too
            skipped += 1
            report(f"{path}:{where}: skipped: {err}")
    if not samples:
        raise UserError(f"{path}: no valid question lines ({skipped} skipped)")
    if skipped:
        report(f"{path}: {len(samples)} questions read, {skipped} lines skipped")
    return samples


def jsonl_records(path: Path) -> Iterator[tuple[str, object]]:
    """(line number, parsed JSON or the JSONDecodeError) of every non-empty line."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield str(number), json.loads(line)
                except ValueError as err:
                    yield str(number), err


def _raise_errors(record):
    if isinstance(record, Exception):
        raise ValueError(f"not JSON ({record})")
    if isinstance(record, dict):  # "meta" is the benchmark readers' field, not a JSONL one
        return {k: v for k, v in record.items() if k != "meta"}
    return record


def read_qa(
    path: str | Path, report: Callable[[str], None] = print, videos: str | Path = ""
) -> list[QASample]:
    """The questions of a JSONL file (video paths relative to its folder, or to ``videos``); each
    bad line is reported (``report``) and skipped. No valid line at all is an error."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"question file not found: {path}")
    folder = Path(videos) if videos else path.parent
    return collect(path, jsonl_records(path), folder, report, _raise_errors)


ARTICLES = re.compile(r"\b(a|an|the)\b")
PUNCTUATION = str.maketrans("", "", string.punctuation.replace("-", ""))


def normalize(text: str) -> str:
    """Open answers are compared after this: lower case, no punctuation but hyphens, no articles,
    single spaces ("The Red one." == "red one")."""
    text = ARTICLES.sub(" ", text.lower().translate(PUNCTUATION))
    return " ".join(text.split())
