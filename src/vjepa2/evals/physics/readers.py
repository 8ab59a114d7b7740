"""The intuitive-physics data sets as groups of videos: a pair (one possible, its impossible
twin) or an IntPhys quadruplet (two of each, content balanced); a group is scored as a whole.

Layouts read (``read_pairs`` tells them apart):

- ``synthetic``: ``vjepa2 worlds make-physics-pairs`` (``<violation>/scene_NNNN/{1,2,3,4}.mp4``
  and a ``status.json`` saying which are possible and where the violation is; the quadruplet is
  the group);
- ``intphys2``: the IntPhys 2 release, ``<split>/metadata.csv`` and ``<split>/Videos/`` (see
  ``intphys2``: columns ``filename``, ``type`` = 1_Possible / 1_Impossible / 2_Possible /
  2_Impossible, ``SceneIndex``, ...); a scene's two pairs are its type numbers 1 and 2; the
  HeldOut split reads unlabelled;
- ``intphys``: the IntPhys dev set, ``O1/01/1/scene/*.png`` (block, scene, movie) with each
  movie's ``status.json`` (``header.is_possible``); a scene's four movies are the group (IntPhys
  scores the quadruplet), and each impossible movie's violation frame is where it parts from the
  possible one that stays identical to it longest;
- ``csv``: any other set, a CSV with ``video,pair_id,possible`` (optional ``type``,
  ``event_frame``), paths relative to the CSV.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vjepa2.data.annotations import read_csv_rows
from vjepa2.data.video import decode_frames, read_image
from vjepa2.errors import MissingPathError, UserError
from vjepa2.evals.physics.intphys2 import read_intphys2
from vjepa2.evals.physics.videos import PhysicsVideo

LAYOUTS = ("auto", "synthetic", "intphys2", "intphys", "csv")


def read_pairs(root: str | Path, layout: str = "auto", split: str = "Main") -> list[PhysicsVideo]:
    """Every video of the data set at ``root``, two per pair (possible first)."""
    root = Path(root)
    if not root.exists():
        raise MissingPathError(f"{root}: no such file or folder")
    layout = detect_layout(root, split) if layout == "auto" else layout
    readers = {
        "synthetic": read_synthetic,
        "intphys2": read_intphys2,
        "intphys": read_intphys,
        "csv": read_csv,
    }
    if layout not in readers:
        raise UserError(f"unknown layout {layout!r}; known: {LAYOUTS}")
    videos = readers[layout](root, split) if layout == "intphys2" else readers[layout](root)
    check_pairs(videos, root)
    return videos


def detect_layout(root: Path, split: str) -> str:
    if root.suffix == ".csv":
        return "csv"
    if any(
        (folder / name).exists() for folder in (root, root / split) for name in ("metadata.csv", "Videos")
    ):
        return "intphys2"
    if any(root.glob("*/scene_*/status.json")):
        return "synthetic"
    if any(root.glob("*/*/1/scene")) or any(root.glob("*/1/scene")):
        return "intphys"
    raise UserError(
        f"{root}: not a known physics data set: expected <type>/scene_*/status.json (synthetic pairs), "
        f"{split}/metadata.csv or {split}/Videos/ (IntPhys 2), O1/01/1/scene/ (IntPhys dev) or a .csv of video,pair_id,possible"
    )


def read_synthetic(root: Path) -> list[PhysicsVideo]:
    videos = []
    for status_file in sorted(root.glob("*/scene_*/status.json")):
        status = read_status(status_file)
        folder, group = status_file.parent, str(status_file.parent.relative_to(root))
        try:
            kind, event = status["violation"], int(status["violation_frame"])
            labels = {name: bool(v["possible"]) for name, v in status["videos"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise UserError(f"{status_file}: missing or bad field {err}") from None
        for name, possible in labels.items():
            videos.append(PhysicsVideo(folder / name, group, possible, kind, event))
    return videos


def read_intphys(root: Path) -> list[PhysicsVideo]:
    videos = []
    scenes = sorted({p.parent.parent for p in root.glob("**/1/scene")})
    for scene in scenes:
        movies = sorted(p for p in scene.iterdir() if (p / "scene").is_dir())
        labels = [movie_is_possible(m) for m in movies]
        kind = scene.parent.name if scene.parent != root else root.name
        frames = [load_frames(m / "scene") for m in movies]
        group = str(scene.relative_to(root))
        for i, j in twin_pairs(frames, labels):
            event = first_difference(frames[i], frames[j])
            videos.append(PhysicsVideo(movies[i] / "scene", group, True, kind, event))
            videos.append(PhysicsVideo(movies[j] / "scene", group, False, kind, event))
    return videos


def movie_is_possible(movie: Path) -> bool:
    status = read_status(movie / "status.json")
    header = status.get("header", status)
    if "is_possible" not in header:
        raise UserError(f"{movie / 'status.json'}: no header.is_possible field")
    return bool(header["is_possible"])


def twin_pairs(frames: list[np.ndarray], labels: list[bool]) -> list[tuple[int, int]]:
    """(possible, impossible) index pairs: each possible movie with the impossible one that
    stays identical to it longest, each impossible movie used once."""
    left = [j for j, label in enumerate(labels) if not label]
    pairs = []
    for i in (i for i, label in enumerate(labels) if label):
        if not left:
            break
        j = max(left, key=lambda j: first_difference(frames[i], frames[j]))
        pairs.append((i, j))
        left.remove(j)
    return pairs


def first_difference(a: np.ndarray, b: np.ndarray) -> int:
    """First frame where two clips (T, H, W, 3) differ (their common length if never)."""
    n = min(len(a), len(b))
    differs = np.flatnonzero((a[:n] != b[:n]).reshape(n, -1).any(axis=1))
    return int(differs[0]) if len(differs) else n


def read_csv(path: Path) -> list[PhysicsVideo]:
    rows = read_csv_rows(path, ("video", "pair_id", "possible"))
    videos = []
    for row in rows:
        possible = row["possible"].strip().lower()
        if possible not in ("1", "0", "true", "false"):
            raise UserError(f"{path}: possible must be 1/0 or true/false, got {row['possible']!r}")
        event = row.get("event_frame") or None
        videos.append(
            PhysicsVideo(
                path.parent / row["video"],
                row["pair_id"],
                possible in ("1", "true"),
                row.get("type") or "all",
                int(event) if event is not None else None,
            )
        )
    return sorted(videos, key=lambda v: (v.pair, not v.possible))


def read_status(path: Path) -> dict:
    if not path.is_file():
        raise MissingPathError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None


def check_pairs(videos: list[PhysicsVideo], root: Path) -> None:
    """Each group (pair or quadruplet) must hold as many possible as impossible videos, at least
    one; an unlabelled video (a held-out split) is its own group."""
    by_group: dict[str, list[bool]] = {}
    for v in (v for v in videos if v.possible is not None):
        by_group.setdefault(v.pair, []).append(v.possible)
    wrong = [g for g, labels in by_group.items() if 2 * sum(labels) != len(labels)]
    if wrong:
        raise UserError(f"{root}: groups without as many possible as impossible videos: {wrong[:5]}")
    if not videos:
        raise UserError(f"{root}: no videos found")


def load_frames(path: Path) -> np.ndarray:
    """uint8 (T, H, W, 3) of a video file or of a folder of frame images (sorted by name)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if not files:
            raise MissingPathError(f"{path}: a frame folder without .png / .jpg frames")
        return np.stack([read_image(f) for f in files])
    return decode_frames(path)[0]
