"""Resumable HTTP downloads into a ``.part`` file.

Released checkpoints weigh up to 30 GB, so a dropped connection must not cost the bytes already
fetched: the body goes into ``<dest>.part``, kept between tries and between runs, and each try
asks for the rest with a ``Range`` request (a server that ignores it answers 200 and the file
starts over). The server's validator of the file (its ``ETag``, else ``Last-Modified``) is kept
beside the part (``<dest>.part.validator``) and sent as ``If-Range``: a file that changed on the
server since the first bytes were fetched comes whole again instead of being spliced onto the old
bytes, and a 206 answer whose validator differs from the kept one (a server that ignores
``If-Range``) throws the part away. A try that fails on the network (a timeout, a reset, a 5xx answer, a body cut
short) is retried after a pause that doubles, and the count of failures starts again whenever a
try brought new bytes; a 4xx answer is the user's address being wrong and is not retried. The
size announced by the server is checked against the one the table knows, and the final size
against the announced one. The caller checks the digest and renames the part into place.

Standard library only (``urllib``), so proxies set by ``https_proxy`` are honoured.
"""

from __future__ import annotations

import http.client
import os
import re
import time
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm import tqdm

from vjepa2.atomic import atomic_write_text
from vjepa2.errors import UserError

TIMEOUT = 30.0  # seconds to connect, and at most between two reads of the body
RETRIES = 4  # failed tries in a row (without a new byte) before giving up
BACKOFF = 1.0  # seconds before the first retry, doubled after each further failure
CHUNK = 1 << 20
USER_AGENT = "vjepa2 (weights download)"


class DownloadError(UserError):
    """A download that cannot succeed as asked: a wrong address, or not the expected file."""


class _Retry(Exception):
    """A failure of the network that another try may not meet."""


def part_file(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def validator_file(part: Path) -> Path:
    return part.with_name(part.name + ".validator")


def _validator(headers) -> str | None:
    """The strong validator of an answer: its ETag (not a weak ``W/`` one), else Last-Modified."""
    etag = (headers.get("ETag") or "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    return (headers.get("Last-Modified") or "").strip() or None


def _kept_validator(part: Path) -> str | None:
    try:
        return validator_file(part).read_text().strip() or None
    except OSError:
        return None


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def download(url: str, part: Path, size: int | None = None, label: str = "") -> Path:
    """Fetch ``url`` into ``part`` (resuming what it holds) until it holds the whole body.

    size: the file's length in bytes when known (the server's must agree). label: the progress
    bar's title. Returns ``part``; raises ``DownloadError`` after ``RETRIES`` tries in a row
    that brought nothing (the part is kept for the next run).
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    while True:
        before = _size(part)
        try:
            _fetch(url, part, size, label or part.name.removesuffix(".part"))
            return part
        except _Retry as err:
            failures = 0 if _size(part) > before else failures + 1
            if failures >= RETRIES:
                kept = f"; the {_size(part):,} bytes fetched are kept in {part}" if _size(part) else ""
                raise DownloadError(
                    f"{url}: {err} ({RETRIES} tries without progress){kept}; run it again to resume"
                ) from None
            time.sleep(BACKOFF * 2 ** max(0, failures - 1))


def _fetch(url: str, part: Path, size: int | None, label: str) -> None:
    """One try: ask for the bytes ``part`` lacks and append them."""
    have = _size(part)
    headers = {"User-Agent": USER_AGENT}
    kept = _kept_validator(part) if have else None
    if have:
        headers["Range"] = f"bytes={have}-"
        if kept:
            headers["If-Range"] = kept
    try:
        response = urlopen(Request(url, headers=headers), timeout=TIMEOUT)
    except HTTPError as err:
        if err.code == 416 and have:  # nothing after byte ``have``: complete, or not this file
            if _total(err.headers.get("Content-Range")) == have:
                return
            part.unlink()
            raise _Retry("the partial download does not fit the remote file; starting over") from None
        if err.code >= 500 or err.code in (408, 429):
            raise _Retry(f"HTTP {err.code} {err.reason}") from None
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (URLError, OSError, http.client.HTTPException) as err:
        raise _Retry(_reason(err)) from None
    with response:
        start, total = _span(response, have)
        validator = _validator(response.headers)
        if start and kept and validator and validator != kept:
            part.unlink()  # the server ignored If-Range and the file has changed since
            raise _Retry("the remote file changed since the partial download began; starting over")
        if not start:
            _keep_validator(part, validator)
        if size is not None and total is not None and total != size:
            raise DownloadError(f"{url}: the server offers {total:,} bytes, but this file has {size:,}")
        total = total if total is not None else size
        bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=label)
        with open(part, "ab" if start else "wb") as fh, bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as err:  # a reset, a timeout, a cut body
                    raise _Retry(_reason(err)) from None
                if not chunk:
                    break
                fh.write(chunk)
                bar.update(len(chunk))
            fh.flush()
            os.fsync(fh.fileno())
    got = _size(part)
    if total is not None and got < total:
        raise _Retry(f"the connection closed after {got:,} of {total:,} bytes")
    if total is not None and got > total:
        part.unlink()
        raise _Retry(f"received {got:,} bytes for a file of {total:,}; starting over")


def _keep_validator(part: Path, validator: str | None) -> None:
    if validator:
        atomic_write_text(validator_file(part), validator + "\n")
    else:
        validator_file(part).unlink(missing_ok=True)


def _span(response, have: int) -> tuple[int, int | None]:
    """(offset the body starts at, total length of the file or None) of a 200 or 206 answer."""
    length = response.headers.get("Content-Length")
    if response.status == 206:
        found = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", "").strip())
        if not found or int(found.group(1)) != have:
            raise _Retry(f"the server sent an unexpected range ({response.headers.get('Content-Range')})")
        return have, int(found.group(2)) if found.group(2) != "*" else None
    return 0, int(length) if length and length.isdigit() else None


def _total(content_range: str | None) -> int | None:
    """The total length in a ``Content-Range: bytes */TOTAL`` header."""
    found = re.search(r"/(\d+)\s*$", content_range or "")
    return int(found.group(1)) if found else None


def _reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None) or err
    text = str(reason).strip() or type(reason).__name__
    return text.splitlines()[0]
