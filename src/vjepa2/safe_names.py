"""Names that arrive with data, turned into paths that stay inside their folder.

A name from elsewhere (a tar member of a shard set, a line of an index, a ledger or manifest
entry) is never used as a path as it is. ``safe_relative`` refuses every name that could lead out
of the folder it is written into or that a file system could read as another name: ``..``,
absolute paths, backslashes, empty, ``.`` or hidden components, control and bidirectional
characters, names not in Unicode NFC, components longer than a file name may be. ``inside`` joins
an accepted name to its folder and refuses it when a symbolic link already there leads out of it.
Both raise ``UnsafeNameError`` (a ``UserError``) whose ``reason`` callers that skip the name report.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path, PurePosixPath

from vjepa2.errors import UserError

NAME_MAX = 255  # bytes in one path component on Linux and macOS file systems
# Characters that reorder how a name is displayed: a name that reads as another one.
BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F]))


class UnsafeNameError(UserError):
    """A name refused as a path: ``name`` as given, ``reason`` why."""

    def __init__(self, name: object, reason: str, what: str = "name"):
        super().__init__(f"{what} {name!r} refused: {reason}")
        self.name, self.reason = name, reason


def refusal(name: object) -> str | None:
    """Why ``name`` may not be used as a relative path inside a folder, or None when it may."""
    if not isinstance(name, str):
        return f"not a text name but {type(name).__name__}"
    if not name:
        return "empty name"
    odd = next((c for c in name if unicodedata.category(c) in ("Cc", "Cs") or c in BIDI_CONTROLS), None)
    if odd is not None:  # Cs: bytes that are not UTF-8 (decoded as lone surrogates)
        return f"holds the control character U+{ord(odd):04X}"
    if "\\" in name:
        return "holds a backslash (a folder separator on Windows)"
    if name.startswith("/"):
        return "an absolute path"
    if name.endswith("/"):
        return "ends with a slash"
    if unicodedata.normalize("NFC", name) != name:  # macOS would store it as another name
        return "not in Unicode normal form NFC"
    for part in name.split("/"):
        if not part:
            return "an empty component ('//')"
        if part == "..":
            return "a '..' component (leads out of the folder)"
        if part.startswith("."):
            return f"a component starting with a dot ({part!r})"
        if part != part.strip():
            return f"a component starting or ending with a space ({part!r})"
        if len(part.encode()) > NAME_MAX:
            return f"a component longer than {NAME_MAX} bytes"
    return None


def safe_relative(name: object, what: str = "name") -> PurePosixPath:
    """``name`` as a relative path (components separated by '/'), or ``UnsafeNameError``."""
    reason = refusal(name)
    if reason is not None:
        raise UnsafeNameError(name, reason, what)
    return PurePosixPath(str(name))


def inside(folder: str | Path, name: object, what: str = "name") -> Path:
    """The path of ``name`` in ``folder``, guaranteed to stay there: the name is checked by
    ``safe_relative``, and a symbolic link on its way (the last component included) must not
    lead out of the folder (resolved), or ``UnsafeNameError`` is raised."""
    relative = safe_relative(name, what)
    folder = Path(folder)
    path = folder.joinpath(*relative.parts)
    root = folder.resolve()
    # resolve() follows every link that exists on the way and keeps the missing tail as it is.
    real = path.resolve()
    if real != root and not real.is_relative_to(root):
        raise UnsafeNameError(name, f"a symbolic link in {folder} leads out of it, to {real}", what)
    return path
