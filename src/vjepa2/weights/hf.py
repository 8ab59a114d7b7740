"""``transformers`` repositories on the Hugging Face hub, through ``huggingface_hub`` and its cache.

The hub library keeps its own cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``~/.cache/huggingface/hub``: ``models--<org>--<name>/snapshots/<revision>/...``, the files
links into ``blobs/``), resumes its own downloads and has its own mirror switch
(``HF_ENDPOINT``). Only the weights and configurations are fetched (JSON and safetensors), not
notebooks or pictures. ``HF_HUB_OFFLINE`` and ``VJEPA2_OFFLINE`` are read at each call (the
library reads its switch once, when imported), so a test or a notebook may set them late.

A blob is named by its content's hash (SHA-256 for LFS files, the git blob SHA-1 for the small
ones), so ``verify_snapshot`` can check a snapshot without asking the hub.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from vjepa2.errors import UserError
from vjepa2.weights.cache import offline_switch, sha256_of

PATTERNS = ["*.json", "*.safetensors"]


def hf_cache_dir() -> Path:
    """The hub library's cache folder, as its environment variables say now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = (
        os.environ.get("HF_HOME")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    )
    return Path(home).expanduser() / "hub"


def repo_folder(repo: str) -> Path:
    """The cache folder of ``repo`` (``models--org--name``)."""
    return hf_cache_dir() / ("models--" + repo.replace("/", "--"))


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise UserError(
            "Hugging Face repositories are read with the huggingface_hub package: "
            "pip install huggingface_hub (transformers brings it)"
        ) from None
    return huggingface_hub


def snapshot(repo: str, force: bool = False) -> Path:
    """The local folder of ``repo``'s latest snapshot (config.json, model.safetensors),
    downloaded unless it is cached or downloads are off."""
    hub = _hub()
    switch = offline_switch()
    try:
        folder = hub.snapshot_download(
            repo,
            cache_dir=hf_cache_dir(),
            local_files_only=switch is not None,
            allow_patterns=PATTERNS,
            force_download=force,
        )
    except hub.utils.LocalEntryNotFoundError:
        raise UserError(
            f"{repo}: not in the Hugging Face cache ({repo_folder(repo)}) and downloads are off "
            f"({switch}=1); run `vjepa2 weights download {repo}` where the hub can be reached and "
            f"copy that folder to the same place here (or set HF_HUB_CACHE to a cache holding it)"
        ) from None
    except (hub.utils.HfHubHTTPError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{repo}: cannot fetch it from the Hugging Face hub ({first})") from None
    return Path(folder)


def cached_snapshot(repo: str) -> Path | None:
    """The snapshot folder ``refs/main`` points at, if the cache holds it (no network)."""
    folder = repo_folder(repo)
    ref = folder / "refs" / "main"
    if not ref.is_file():
        return None
    snap = folder / "snapshots" / ref.read_text().strip()
    return snap if snap.is_dir() else None


def verify_snapshot(snap: Path) -> list[str]:
    """Files of ``snap`` whose content does not match the hash their blob is named by."""
    bad = []
    for file in sorted(p for p in snap.rglob("*") if p.is_file()):
        name = file.resolve().name
        if len(name) == 64 and sha256_of(file) != name:
            bad.append(str(file.relative_to(snap)))
        elif len(name) == 40 and _git_blob_sha1(file) != name:
            bad.append(str(file.relative_to(snap)))
    return bad


def _git_blob_sha1(file: Path) -> str:
    data = file.read_bytes()  # small files only: large ones are LFS, named by SHA-256
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
