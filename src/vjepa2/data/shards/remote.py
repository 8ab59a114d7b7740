"""Opening a URL or path for reading with bounded waits and errors that say what happened.

- http(s) is read with ``http.client``: one GET, a forward stream, a connect timeout and a read
  timeout (the longest wait for the next bytes), redirects followed within http(s) only. A body
  shorter than its Content-Length is an error ("connection dropped after n of m bytes"), not an
  early end of file.
- s3:// and gs:// go through fsspec (the ``s3`` / ``gcs`` extras) with their clients' timeouts set.
- Plain paths and ``file://`` are opened as files.

``Network`` holds the waits and how many times a read is tried; ``retried`` runs a read again
after a pause that doubles each time while it fails for a reason that may pass (a refused, dropped
or timed-out connection, an HTTP 5xx). Failures are ``RemoteError`` (a ``UserError``: one line
naming the URL and the reason).
"""

from __future__ import annotations

import http.client
import io
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit

from vjepa2.config import opt
from vjepa2.errors import MissingPathError, UserError

log = logging.getLogger(__name__)

T = TypeVar("T")
HTTP = ("http", "https")
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
TRANSIENT_STATUS = (408, 425, 429)  # and every 5xx


@dataclass(frozen=True)
class Network:
    """How remote reads wait and retry (seconds)."""

    connect: float = 10.0  # to open a connection (TCP, and TLS for https)
    read: float = 60.0  # the longest wait for the next bytes of an answer
    tries: int = 4  # attempts per file before it is given up
    backoff: float = 0.5  # pause before the second attempt, doubled before each later one

    def pause(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...)."""
        return self.backoff * 2 ** (attempt - 1)


DEFAULT = Network()


@dataclass
class NetworkConfig:
    """The ``network`` options of a command that reads remote shards: ``Network`` as typed options."""

    connect_timeout: float = opt(10.0, help="seconds to wait for a connection to a remote shard", above=0)
    read_timeout: float = opt(60.0, help="seconds to wait for the next bytes of a remote answer", above=0)
    tries: int = opt(4, help="attempts per remote file (pauses of 0.5 s, 1 s, 2 s, ... between)", min=1)

    def network(self) -> Network:
        return Network(self.connect_timeout, self.read_timeout, self.tries)


class RemoteError(UserError):
    """A read that failed; ``transient``: another try may succeed."""

    def __init__(self, url: str, reason: str, transient: bool = True):
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.transient = url, reason, transient


def scheme_of(url: str) -> str:
    """The URL's scheme, lower case; '' for a plain path."""
    return urlsplit(url).scheme.lower() if "://" in url or url.startswith("file:") else ""


def family(url: str) -> str:
    """Where a URL reads from: 'local', 'http' (http and https), 's3', 'gs' or another scheme."""
    scheme = scheme_of(url)
    return {"": "local", "file": "local", "https": "http", "gcs": "gs", "s3a": "s3"}.get(scheme, scheme)


def describe(err: BaseException, network: Network) -> tuple[str, bool]:
    """(what went wrong in words, whether another try may succeed) for a failed read."""
    if isinstance(err, ConnectionRefusedError):
        return "connection refused", True
    if isinstance(err, TimeoutError):  # socket.timeout is TimeoutError
        return f"no answer for {network.read:g} s (read timeout)", True
    if isinstance(err, socket.gaierror):
        return f"unknown host ({err.strerror})", True
    if isinstance(err, (ConnectionError, http.client.IncompleteRead)):  # reset, aborted, broken pipe
        return "connection dropped", True
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted ({err.verify_message})", False
    if isinstance(err, http.client.HTTPException):
        return f"not a valid HTTP answer ({type(err).__name__}: {err})", True
    if isinstance(err, OSError):
        return err.strerror or f"{type(err).__name__}: {err}", True
    return f"{type(err).__name__}: {err}", True


def remote_error(url: str, err: BaseException, network: Network) -> RemoteError:
    if isinstance(err, RemoteError):
        return err
    reason, transient = describe(err, network)
    return RemoteError(url, reason, transient)


def retried(network: Network, action: Callable[[], T]) -> T:
    """``action()``, tried up to ``network.tries`` times while it fails with a transient
    ``RemoteError``; the last error says how many tries were made."""
    attempt = 1
    while True:
        try:
            return action()
        except RemoteError as err:
            if not err.transient or attempt >= network.tries:
                if attempt > 1:
                    raise RemoteError(err.url, f"{err.reason} ({attempt} tries)", False) from None
                raise
            pause = network.pause(attempt)
            log.warning("%s; trying again in %.1f s (try %d of %d)", err, pause, attempt + 1, network.tries)
            time.sleep(pause)
            attempt += 1


class _Checked(io.RawIOBase):
    """A body read through: errors become ``RemoteError``, an end before ``expected`` bytes is a
    dropped connection, more than ``limit`` bytes is an error."""

    def __init__(self, raw, url: str, network: Network, expected: int | None, limit: int | None):
        self.raw, self.url, self.network = raw, url, network
        self.expected, self.limit, self.count = expected, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            n = self.raw.readinto(buffer) or 0
        except Exception as err:  # noqa: BLE001 - every failure of a read is named, none kept raw
            raise remote_error(self.url, err, self.network) from None
        if n == 0 and len(buffer) and self.expected is not None and self.count < self.expected:
            raise RemoteError(self.url, f"connection dropped after {self.count} of {self.expected} bytes")
        self.count += n
        if self.limit is not None and self.count > self.limit:
            raise RemoteError(self.url, f"longer than the {self.limit} bytes expected", transient=False)
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                self.raw.close()
            finally:
                super().close()


def open_url(url: str, network: Network | None = None, limit: int | None = None) -> io.BufferedReader:
    """A binary stream of ``url`` (one attempt; see ``retried``); reading more than ``limit``
    bytes raises ``RemoteError``."""
    network = network or DEFAULT
    scheme = scheme_of(url)
    expected = None
    if scheme in HTTP:
        raw, expected = _open_http(url, network)
    elif scheme in ("", "file"):
        raw = _open_local(url)
    else:
        raw = _open_fsspec(url, scheme, network)
    return io.BufferedReader(_Checked(raw, url, network, expected, limit), buffer_size=1 << 16)


def _open_local(url: str):
    path = unquote(urlsplit(url).path) if url.startswith("file:") else url
    try:
        return open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise MissingPathError(f"file not found: {url}") from None
    except OSError as err:
        raise UserError(f"{url}: cannot open ({err.strerror or err})") from None


def _open_http(url: str, network: Network, hops: int = MAX_REDIRECTS):
    """(response, Content-Length or None) of a GET of ``url``, redirects followed."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise UserError(f"{url}: no host in the URL")
    kind = http.client.HTTPSConnection if parts.scheme.lower() == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname, parts.port, timeout=network.connect)
    try:
        try:
            conn.connect()
        except TimeoutError:
            raise RemoteError(
                url, f"could not connect within {network.connect:g} s (connect timeout)"
            ) from None
        conn.sock.settimeout(network.read)  # from here on each wait for bytes is a read
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~") + (
            f"?{parts.query}" if parts.query else ""
        )
        conn.request("GET", target, headers={"Accept-Encoding": "identity", "Connection": "close"})
        response = conn.getresponse()
    except RemoteError:
        conn.close()
        raise
    except (OSError, http.client.HTTPException) as err:
        conn.close()
        raise remote_error(url, err, network) from None
    status = response.status
    if status in REDIRECTS and hops > 0:
        location = urljoin(url, response.getheader("Location") or "")
        response.close()
        conn.close()
        if scheme_of(location) not in HTTP:
            raise RemoteError(url, f"redirected to {location!r}, not an http(s) URL", transient=False)
        return _open_http(location, network, hops - 1)
    if status != 200:
        response.close()
        conn.close()
        transient = status >= 500 or status in TRANSIENT_STATUS
        raise RemoteError(url, f"HTTP {status} {response.reason}".rstrip(), transient)
    length = response.getheader("Content-Length")
    return response, int(length) if length and length.isdigit() else None


def _open_fsspec(url: str, scheme: str, network: Network):
    import fsspec

    options: dict = {}
    if scheme in ("s3", "s3a"):  # botocore's own retries off: ours count the tries
        options = {"config_kwargs": {"connect_timeout": network.connect, "read_timeout": network.read,
                                     "retries": {"max_attempts": 1}}}  # fmt: skip
    elif scheme in ("gs", "gcs"):
        import aiohttp

        options = {"session_kwargs": {"timeout": aiohttp.ClientTimeout(sock_connect=network.connect,
                                                                       sock_read=network.read)}}  # fmt: skip
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as err:  # e.g. s3:// without s3fs
        raise UserError(
            f"{url}: cannot open ({err}); s3/gcs need the extras: pip install vjepa2[s3]"
        ) from None
    try:
        return fs.open(path, "rb")
    except FileNotFoundError:
        raise RemoteError(url, "not found", transient=False) from None
    except Exception as err:  # noqa: BLE001 - the clients raise their own kinds; all are named
        raise remote_error(url, err, network) from None
