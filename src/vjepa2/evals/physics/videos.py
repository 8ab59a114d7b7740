"""One video of an intuitive-physics data set, as every reader gives it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PhysicsVideo:
    """path: a video file or a folder of frames; pair: its group (a pair or a quadruplet; the
    video's own name when unlabelled); possible: its label, None where the split withholds it;
    kind: the violation type (or property); event_frame: first frame of the violation when the
    data says it; meta: the data set's own fields (IntPhys 2: filename, env, game_name, ...)."""

    path: Path
    pair: str
    possible: bool | None
    kind: str
    event_frame: int | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)
