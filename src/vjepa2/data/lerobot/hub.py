"""A LeRobot dataset by folder or by Hugging Face hub id: ``path/to/folder`` or ``owner/name[@revision]``.

A hub id is fetched with ``huggingface_hub.snapshot_download`` (repo_type "dataset") into its
cache and read from there; ``HF_HUB_OFFLINE=1`` (huggingface_hub's own switch) reads the cache
only, and a dataset missing from it is a one-line error saying so.
"""

from __future__ import annotations

import re
from pathlib import Path

from vjepa2.errors import MissingPathError, UserError

PREFIX = "lerobot:"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*(@[A-Za-z0-9_./-]+)?$")


def is_lerobot(source: str) -> bool:
    """Whether a training source names a LeRobot dataset (``lerobot:<folder or hub id>``)."""
    return str(source).startswith(PREFIX)


def strip_prefix(source: str) -> str:
    return str(source)[len(PREFIX) :] if is_lerobot(source) else str(source)


def resolve(source: str) -> Path:
    """The local folder of a dataset: the folder itself, or the hub snapshot of ``owner/name@rev``."""
    name = strip_prefix(source)
    if not name:
        raise UserError("lerobot: give a dataset folder or a hub id after 'lerobot:'")
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if not _HUB_ID.match(name) or path.exists():
        raise MissingPathError(f"{name}: no such LeRobot dataset folder (and not a hub id owner/name)")
    repo_id, _, revision = name.partition("@")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision or None))
    except LocalEntryNotFoundError as err:
        raise MissingPathError(
            f"{name}: no such folder, and as a hub id not in the Hugging Face cache while the hub "
            f"cannot be reached (HF_HUB_OFFLINE?): {err}"
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise UserError(
            f"{repo_id}: cannot fetch the dataset from the hub ({type(err).__name__}: {err})"
        ) from None
