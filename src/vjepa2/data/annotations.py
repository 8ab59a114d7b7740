"""Action annotations (the EK100 layout): one CSV row per action, ``video,start_sec,end_sec,verb,noun``.

Video paths are relative to the CSV's folder. Described for users in docs/anticipation-format.md;
read by ``vjepa2 anticipate``, written by the synthetic world's event videos.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vjepa2.errors import MissingPathError, UserError

COLUMNS = ("video", "start_sec", "end_sec", "verb", "noun")


@dataclass
class Annotation:
    video: Path
    start_sec: float
    end_sec: float
    verb: str
    noun: str


def read_csv_rows(path: Path, required: Sequence[str], what: str = "CSV file") -> list[dict]:
    """The rows of a CSV with a header holding at least the ``required`` columns."""
    if not path.is_file():
        raise MissingPathError(f"{what} not found: {path}")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: missing columns {missing}; expected a header with {','.join(required)}")
        return list(reader)


def read_annotations(path: str | Path) -> list[Annotation]:
    """Rows of an annotation CSV (header ``video,start_sec,end_sec,verb,noun``; video paths
    relative to the CSV's folder)."""
    path = Path(path)
    rows = []
    for line, row in enumerate(read_csv_rows(path, COLUMNS, "annotation file"), start=2):
        try:
            start, end = float(row["start_sec"]), float(row["end_sec"])
        except ValueError:
            raise UserError(f"{path}:{line}: start_sec/end_sec must be numbers, got {row}") from None
        if end < start:
            raise UserError(f"{path}:{line}: end_sec {end} is before start_sec {start}")
        video = Path(row["video"])
        video = video if video.is_absolute() else path.parent / video
        rows.append(Annotation(video, start, end, row["verb"].strip(), row["noun"].strip()))
    if not rows:
        raise UserError(f"{path}: no annotations")
    return rows
