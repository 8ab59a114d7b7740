"""IntPhys 2 as released, and its official score: per-video accuracy.

The release (facebookresearch/IntPhys2 README; the Hugging Face set facebook/IntPhys2): one folder
per split, ``Debug``, ``Main`` and ``HeldOut``, each with ``metadata.csv`` and ``Videos/``. The
video of a row is ``Videos/<filename>.mp4`` (``IntPhys2_transformers.py`` appends ``.mp4`` to the
``filename`` column; ``ComputeScoreIntPhys2.ipynb`` renames a ``name`` column to ``filename``, so
either spelling is read, and ``file_name`` too). Labelled rows have ``type`` (1_Possible,
1_Impossible, 2_Possible, 2_Impossible: a scene's two pairs), ``SceneIndex``, ``condition``
(the property), ``env`` (the difficulty) and ``game_name`` (the camera). HeldOut is released
without labels: its videos are read, unlabelled, for the leaderboard file.

The official score (``ComputeScoreIntPhys2.ipynb``: ``get_values_singlevideo``,
``calculate_accuracy``) answers every video alone, possible or not, and counts the right answers
over all the videos of the subset (a video without an answer is a wrong one). The subsets:
difficulty by ``env``, camera by ``game_name``, property by ``condition``, as the lists below
(copied as data from that notebook). The notebook reads the answer of a QA model from its text
(``label_pred_yes_no``, ``answer_from_response`` here); from surprise, ``physics-eval`` answers
"possible" when a video's max surprise is below a threshold (``decide``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from vjepa2.atomic import atomic_open
from vjepa2.errors import MissingPathError, UserError
from vjepa2.evals.physics.official import absolute_threshold
from vjepa2.evals.physics.videos import PhysicsVideo
from vjepa2.safe_names import UnsafeNameError, safe_relative

NAME_COLUMNS = ("filename", "name", "file_name")  # the official spellings first
TYPES = ("1_Possible", "1_Impossible", "2_Possible", "2_Impossible")
DIFFICULTY = {
    "Easy": ("BasicLevel_0",),
    "Medium": ("SaltFlats_0", "DesertMap_0", "RaceTrack_0", "TropicalIsland_0"),
    "Hard": ("PLVDaylight_0", "Egypt_0", "RuralAustralia03_0", "ParkingGarage_0", "None"),
}
CAMERA = {
    "FixedCamera": (
        "FixedMarryPoppins",
        "FixedJumpSolidity",
        "RotatingCup",
        "HotAirBallon",
        "SphereFallingDown",
        "SolidityFallingFlat",
    ),
    "MovingCamera": (
        "SphereFallingDownSoldity",
        "BoxSoldity",
        "Scaffoling",
        "CameraSolidity",
        "JumpSolidity",
        "Box",
        "MovingAroundOccluder",
        "JailStone",
        "PrisonCell",
        "Restaurant",
    ),
}  # fmt: skip (the official spellings, typos included: they are the values in metadata.csv)
PROPERTY = {
    "Permanence": ("permanence",),
    "Immutability": ("immutability", "immutability_texture"),
    "Continuity": ("continuity", "continuity_swap"),
    "Solidity": ("solidity",),
}
BREAKDOWNS = (
    ("difficulty", "env", DIFFICULTY),
    ("camera", "game_name", CAMERA),
    ("property", "condition", PROPERTY),
)


def split_folder(root: Path, split: str) -> Path:
    """The split's folder: ``root`` itself when it holds the split, else ``root/<split>``."""
    if (root / "metadata.csv").is_file() or (root / "Videos").is_dir():
        return root
    return root / split


def read_intphys2(root: Path, split: str = "Main") -> list[PhysicsVideo]:
    """Every video of one split; labelled rows in pairs (possible first), HeldOut unlabelled."""
    folder = split_folder(root, split)
    table = folder / "metadata.csv"
    if not table.is_file():
        if not (folder / "Videos").is_dir():
            raise MissingPathError(f"{folder}: neither metadata.csv nor Videos/ (an IntPhys 2 split folder)")
        return [unlabelled(folder, p.stem, {}) for p in sorted((folder / "Videos").glob("*.mp4"))]
    with open(table, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns, rows = reader.fieldnames or [], list(reader)
    name_column = next((c for c in NAME_COLUMNS if c in columns), None)
    if name_column is None:
        raise UserError(
            f"{table}: no video name column (one of {', '.join(NAME_COLUMNS)}); columns: {columns}"
        )
    if "type" not in columns:  # the held-out split: names only
        return [unlabelled(folder, row[name_column], row) for row in rows]
    missing = [c for c in ("SceneIndex",) if c not in columns]
    if missing:
        raise UserError(f"{table}: labelled (a type column) but missing columns {missing}")
    videos = [labelled(folder, table, row, row[name_column]) for row in rows]
    return sorted(videos, key=lambda v: (v.pair, not v.possible))


def video_path(folder: Path, name: str, table: Path) -> Path:
    """``Videos/<name>.mp4`` as released; a name that is already a file beside the table (an
    older copy of the set) is taken as it is. The name from the file never leaves the folder."""
    try:
        relative = safe_relative(name, f"{table}: video name")
    except UnsafeNameError as err:
        raise UserError(str(err)) from None
    released = folder / "Videos" / (name if relative.suffix == ".mp4" else f"{name}.mp4")
    beside = folder.joinpath(*relative.parts)
    return beside if not released.exists() and beside.is_file() else released


def stem(name: str) -> str:
    return name.removesuffix(".mp4")  # the notebook strips ".mp4" before matching names


def labelled(folder: Path, table: Path, row: dict, name: str) -> PhysicsVideo:
    kind, number, label = row.get("condition") or "all", row["type"][:1], row["type"][2:]
    if row["type"] not in TYPES:
        raise UserError(f"{table}: unknown type {row['type']!r} (expected one of {', '.join(TYPES)})")
    meta = {k: row.get(k) or "" for k in ("env", "game_name", "condition", "SceneIndex")}
    return PhysicsVideo(
        video_path(folder, name, table), f"{kind}/{row['SceneIndex']}/{number}", label == "Possible",
        kind, meta=meta | {"filename": stem(name)},
    )  # fmt: skip


def unlabelled(folder: Path, name: str, row: dict) -> PhysicsVideo:
    path = video_path(folder, name, folder / "metadata.csv")
    return PhysicsVideo(path, stem(name), None, "heldout", meta={"filename": stem(name)})


# -- the official score ---------------------------------------------------------------------------
def answer_from_response(text: str) -> int:
    """A QA model's answer as the notebook reads it (``label_pred_yes_no``): 1 (possible) when the
    text holds "yes" or "Yes", else 0 when it holds "no" or "No", else 2 (unreadable: wrong)."""
    text = str(text)
    if "yes" in text or "Yes" in text:
        return 1
    if "no" in text or "No" in text:
        return 0
    return 2


def decide(
    videos: list[PhysicsVideo], peaks: dict[str, float], threshold: float | None
) -> tuple[dict, float | None]:
    """({video path: True if answered possible}, the threshold used): possible when the video's
    max surprise is below the threshold; without one, the official calibrated threshold of the
    labelled possible videos (jepa-intuitive-physics ``compute_metrics``; None below 10)."""
    if threshold is None:
        possible = [peaks[str(v.path)] for v in videos if v.possible and str(v.path) in peaks]
        threshold = absolute_threshold(np.asarray(possible)) if possible else None
    if threshold is None:
        return {}, None
    return {path: bool(peak < threshold) for path, peak in peaks.items()}, float(threshold)


def subsets(video: PhysicsVideo) -> list[tuple[str, str]]:
    """(breakdown, subset) pairs the video counts in: ("split", "all") and each list it is on."""
    out = [("split", "all")]
    for breakdown, column, table in BREAKDOWNS:
        out += [(breakdown, name) for name, values in table.items() if video.meta.get(column) in values]
    return out


def per_video_accuracy(videos: list[PhysicsVideo], answers: dict[str, bool]) -> dict:
    """{breakdown: {subset: {"accuracy" (%), "correct", "videos"}}} over the labelled videos:
    right when the answer equals the label; a video without an answer counts, as a wrong one."""
    counts: dict[str, dict[str, list[int]]] = {}
    for v in videos:
        if v.possible is None:
            continue
        right = answers.get(str(v.path)) is v.possible
        for breakdown, name in subsets(v):
            cell = counts.setdefault(breakdown, {}).setdefault(name, [0, 0])
            cell[0] += int(right)
            cell[1] += 1
    return {
        breakdown: {
            name: {"accuracy": 100.0 * c / n, "correct": c, "videos": n} for name, (c, n) in cells.items()
        }
        for breakdown, cells in counts.items()
    }


def write_leaderboard(path: Path, videos: list[PhysicsVideo], answers: dict[str, bool]) -> int:
    """The held-out leaderboard's JSONL (IntPhys2 README: a ``model_answer`` column, true when the
    model deems the video possible), one line per answered video with its ``filename``; returns
    the lines written."""
    lines = [
        json.dumps({"filename": v.meta.get("filename", v.path.stem), "model_answer": answers[str(v.path)]})
        for v in videos
        if str(v.path) in answers
    ]
    with atomic_open(path, "w") as fh:
        fh.writelines(line + "\n" for line in lines)
    return len(lines)
