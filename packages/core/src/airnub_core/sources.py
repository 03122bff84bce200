"""Reading sources by URL: ``http(s)://`` through httpx, ``file://`` and local paths.

One reader serves shipped sample data and live sources, so the same task runs
offline by default and against a real API in another environment.

Credentials stay with their origin: a reader sends its auth headers only to the
origins its configuration named (scheme, host and port), never to a URL that remote
content supplied for somewhere else, and a page from an ``http(s)`` source may only
link to another ``http(s)`` page, so remote content never decides what is read locally.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urljoin, urlparse

import httpx

from airnub_core.secrets_scan import redact

USER_AGENT = "airnub-prefect-starter"
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class SourceError(RuntimeError):
    """A source that could not be read; the message names the URL, with any credentials
    in it redacted here, so no log line, state message or traceback can show them."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))


class TransientSourceError(SourceError):
    """A failure worth retrying later: a timeout, a dropped connection, a 5xx."""


@dataclass(frozen=True)
class Fetched:
    url: str
    content: bytes | None  # None when the source says it has not changed
    etag: str | None = None
    last_modified: str | None = None


# A request's overall deadline: httpx's timeout bounds each wait (connect, one read), so
# a server dripping a byte at a time would otherwise hold a read open for ever.
DEFAULT_DEADLINE = 60.0
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """How long and how much one request may take: ``timeout`` per wait, ``deadline`` for
    the whole request (redirects and body included), ``max_bytes`` for the body."""

    timeout: float = 10.0
    deadline: float = DEFAULT_DEADLINE
    max_bytes: int = DEFAULT_MAX_BYTES


def is_http(url: str) -> bool:
    return urlparse(url).scheme in ("http", "https")


def origin(url: str) -> str:
    """``scheme://host:port`` with the default port made explicit, for comparing origins."""
    parsed = urlparse(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    return f"{parsed.scheme}://{(parsed.hostname or '').lower()}:{port}"


CrossOrigin = Literal["refuse", "anonymous"]


def local_path(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme in ("", None) or len(parsed.scheme) == 1:  # a bare or Windows path
        return Path(url)
    raise SourceError(f"{url}: unsupported scheme {parsed.scheme!r} (use http, https or file)")


def _fetch_local(url: str, known_mtime: str | None) -> Fetched:
    path = local_path(url)
    try:
        stat = path.stat()
        mtime = formatdate(stat.st_mtime, usegmt=True) + f" size={stat.st_size}"
        if known_mtime is not None and known_mtime == mtime:
            return Fetched(url, None, last_modified=mtime)
        return Fetched(url, path.read_bytes(), last_modified=mtime)
    except FileNotFoundError:
        raise SourceError(f"{url}: file not found") from None
    except OSError as error:
        raise SourceError(f"{url}: {error.strerror or error}") from error


class _Watchdog:
    """Cuts a request's connections when its deadline passes, wherever the request waits:
    connecting, headers dripping in, the body, or a later hop of a redirect chain.

    httpx bounds each wait, not the whole; httpcore's ``trace`` extension hands over each
    new connection's socket, and shutting it down wakes whatever read is blocked on it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        sock = info["return_value"].get_extra_info("socket")
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _cut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _cut(sock)


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the client: nothing to cut
        sock.shutdown(socket.SHUT_RDWR)


def _fetch_http(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    limits: Limits,
) -> Fetched:
    timeout = httpx.Timeout(min(limits.timeout, limits.deadline))
    with _Watchdog(limits.deadline) as watchdog:
        try:
            with client.stream(
                "GET", url, headers=headers, timeout=timeout, extensions={"trace": watchdog.trace}
            ) as response:
                if response.status_code == 304:
                    etag, since = headers.get("If-None-Match"), headers.get("If-Modified-Since")
                    if not (etag or since):
                        raise SourceError(
                            f"{url}: answered 'not modified' to a request without a condition"
                        )
                    return Fetched(url, None, etag, since)
                if response.status_code in TRANSIENT_STATUS:
                    raise TransientSourceError(f"{url}: HTTP {response.status_code}")
                if response.is_error:
                    raise SourceError(f"{url}: HTTP {response.status_code}")
                content = _read_body(response, url, limits)
        except httpx.InvalidURL as error:
            raise SourceError(f"{url}: not a URL httpx can request ({error})") from None
        except httpx.HTTPError as error:
            if watchdog.expired:
                raise _past_deadline(url, limits) from error
            if isinstance(error, httpx.TimeoutException):
                raise TransientSourceError(f"{url}: timed out ({type(error).__name__})") from error
            if isinstance(error, httpx.TransportError):
                raise TransientSourceError(f"{url}: {type(error).__name__}: {error}") from error
            raise SourceError(f"{url}: {type(error).__name__}: {error}") from error
        if watchdog.expired:  # a cut can also look like the end of a body sent until close
            raise _past_deadline(url, limits)
    return Fetched(
        url, content, response.headers.get("ETag"), response.headers.get("Last-Modified")
    )


def _past_deadline(url: str, limits: Limits) -> TransientSourceError:
    return TransientSourceError(
        f"{url}: no complete response within its deadline of {limits.deadline:g} s"
    )


def _read_body(response: httpx.Response, url: str, limits: Limits) -> bytes:
    """The body, refused once it outgrows ``max_bytes`` (counted after decompression, so a
    small gzip bomb is caught too)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise SourceError(f"{url}: {declared} bytes is more than the limit of {limits.max_bytes}")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limits.max_bytes:
            raise SourceError(f"{url}: more than the limit of {limits.max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class Reader:
    """Reads URLs with a timeout and bounded retries with exponential backoff.

    Only transient failures are retried here; anything else (a 404, a missing
    file, malformed JSON) fails at once with a message naming the URL.
    """

    def __init__(
        self,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        headers: dict[str, str] | None = None,
        credential_origins: Iterable[str] = (),
        *,
        deadline: float = DEFAULT_DEADLINE,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        """``headers`` are credentials: sent only to the origins of ``credential_origins``
        (the URLs the configuration names), and nowhere else. Each request ends by its
        ``deadline`` (one connect ``timeout`` later if it passes while connecting)."""
        self.retries = retries
        self.backoff = backoff
        self.limits = Limits(timeout, deadline, max_bytes)
        self._credentials = dict(headers or {})
        self._origins = frozenset(origin(url) for url in credential_origins if is_http(url))
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            max_redirects=10,
            headers={"User-Agent": USER_AGENT},
            # A fresh connection per request, so the watchdog sees each socket it must cut.
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        if not is_http(url):
            return _fetch_local(url, last_modified)
        # Per request, not client-wide: httpx then also drops Authorization on a redirect
        # to another origin.
        headers = dict(self._credentials) if origin(url) in self._origins else {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for attempt in range(self.retries + 1):
            try:
                return _fetch_http(self._client, url, headers, self.limits)
            except TransientSourceError:
                if attempt == self.retries:
                    raise
                time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def read(self, url: str) -> bytes:
        fetched = self.fetch(url)
        assert fetched.content is not None
        return fetched.content

    def json(self, url: str) -> Any:
        content = self.read(url)
        try:
            return json.loads(content)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SourceError(f"{url}: malformed JSON ({error})") from None

    def pages(
        self,
        url: str,
        next_key: str = "next",
        max_pages: int = 1000,
        cross_origin: CrossOrigin = "refuse",
    ) -> Iterator[Any]:
        """Yield JSON pages, following ``next_key`` (absolute or relative to the page).

        A link from an ``http(s)`` page must be ``http(s)``. A link to another origin is
        refused, or with ``cross_origin="anonymous"`` followed without credentials."""
        seen: set[str] = set()
        current: str | None = url
        while current:
            if current in seen:
                raise SourceError(f"{current}: pagination loops back to a page already read")
            if len(seen) >= max_pages:
                raise SourceError(f"{url}: more than {max_pages} pages")
            seen.add(current)
            page = self.json(current)
            yield page
            link = page.get(next_key) if isinstance(page, dict) else None
            current = self._next_page(url, current, link, cross_origin) if link else None

    def _next_page(self, start: str, page: str, link: object, cross_origin: CrossOrigin) -> str:
        if not isinstance(link, str):
            raise SourceError(f"{page}: {link!r} is not a link")
        try:
            target = urljoin(page, link)
            origin(target)  # a malformed host or port raises here
        except ValueError:
            raise SourceError(f"{page}: {link!r:.80} is not a link") from None
        if is_http(page) and not is_http(target):
            raise SourceError(f"{page}: refused a link to {urlparse(target).scheme or 'a local'}"
                              " source; a remote page may only link to http(s)")  # fmt: skip
        if is_http(target) and origin(target) != origin(start) and cross_origin == "refuse":
            raise SourceError(
                f"{page}: refused a link to another origin, {origin(target)}"
                " (cross_origin_pages: anonymous follows it without credentials)"
            )
        return target


def flatten_pages(pages: list[Any], records_key: str) -> list[dict[str, Any]]:
    """The records of every page, in order; a page without a list of objects is an error."""
    records: list[dict[str, Any]] = []
    for number, page in enumerate(pages, start=1):
        items = page.get(records_key) if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise SourceError(f"page {number}: expected a list under {records_key!r}")
        bad = [i for i, item in enumerate(items) if not isinstance(item, dict)]
        if bad:
            raise SourceError(f"page {number}: items {bad} under {records_key!r} are not objects")
        records.extend(items)
    return records


def fetch_json_pages(
    url: str,
    *,
    next_key: str = "next",
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.5,
    max_pages: int = 1000,
    headers: dict[str, str] | None = None,
    cross_origin: CrossOrigin = "refuse",
    deadline: float = DEFAULT_DEADLINE,
) -> list[Any]:
    with Reader(
        timeout, retries, backoff, headers, credential_origins=[url], deadline=deadline
    ) as reader:
        return list(reader.pages(url, next_key, max_pages, cross_origin))
