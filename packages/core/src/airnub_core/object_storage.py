"""Data roots in object storage (``s3://``, ``gs://``, ``az://``), through fsspec.

A remote root is a :class:`upath.UPath` carrying its filesystem's options, so every path
joined below it reaches the same bucket with the same settings. Its rules:

- Only object-storage protocols are roots: ``s3`` (``s3fs``), ``gs``/``gcs`` (``gcsfs``),
  ``az``/``abfs``/``abfss`` (``adlfs``), each installed by an extra of airnub-core
  (``airnub-core[s3]``). Any other URL (``http://``, ``memory://``...) is refused.
- The URL names a bucket and nothing secret: a user, password, query or fragment in it is
  refused without echoing it; settings whose names look like credentials are refused too.
  It names one place only: a bucket name (no port), then plain key segments (no empty,
  ``.`` or ``..`` segment, no percent-encoding, no space or control character, which
  ``urlparse`` would silently drop), since fsspec takes keys literally.
- S3 credentials come from the standard chain (``AWS_ACCESS_KEY_ID`` ..., the endpoint
  from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``), or from the Prefect
  ``aws-credentials`` block named ``airnub-data-root``; that block's keys go only to the
  endpoint the block names, and the chain's keys only to the environment's endpoint: a
  block's settings (or a credentials block without its own keys) naming another endpoint
  is refused. Endpoints are compared as servers (``HTTP://Host:80/`` is
  ``http://host``); http and https differ, and an endpoint with a user, password or query
  is refused.
- Every wait has a deadline. An S3 request connects within 10 s and each read waits at
  most 30 s; botocore tries a request 3 times and s3fs an operation twice (not its
  default 5), so a silent endpoint fails an operation within about four minutes, never
  hangs; the writes, lookups and removals of :mod:`airnub_core.storage` are also cut off
  after :data:`OPERATION_DEADLINE` seconds as a whole.
- A write is one object PUT (a multipart upload for large ones, completed last): readers
  see the whole object or none, so no partial output is ever visible.
"""

from __future__ import annotations

import errno
import io
import os
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, cast
from urllib.parse import ParseResult, urlparse

from typing_extensions import TypeIs
from upath import UPath

# Protocol -> (the extra that installs it, the fsspec package)
PROTOCOLS = {
    "s3": ("s3", "s3fs"),
    "s3a": ("s3", "s3fs"),
    "gs": ("gcs", "gcsfs"),
    "gcs": ("gcs", "gcsfs"),
    "az": ("azure", "adlfs"),
    "abfs": ("azure", "adlfs"),
    "abfss": ("azure", "adlfs"),
}
CREDENTIALS_BLOCK_TYPE = "aws-credentials"
# Deadlines for every S3 request (botocore's own defaults wait 60 s to connect and to
# read), and how often s3fs repeats a failed operation.
S3_DEADLINES = {
    "connect_timeout": 10,
    "read_timeout": 30,
    "retries": {"max_attempts": 3, "mode": "standard"},
}
S3FS_RETRIES = 2
OPERATION_DEADLINE = 300.0  # seconds for one whole write, lookup or removal
_SECRET_NAME = re.compile(r"key|secret|token|password|credential|sas|connection_string", re.I)
ENDPOINT_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")  # botocore's order for S3
# A bucket (or container) name as botocore accepts it: no port, user, slash or escape.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


class UnsupportedDataRoot(ValueError):
    """A data root that cannot be used, refused in one line naming where it came from."""


def is_remote_url(value: str) -> bool:
    """Whether ``value`` is a URL with a scheme other than ``file`` (a drive letter is not)."""
    scheme = urlparse(value).scheme
    return len(scheme) > 1 and scheme.lower() != "file"


def uses_aws(url: str) -> bool:
    """Whether ``url`` is an S3 root, whose keys come from AWS's chain or its block."""
    return PROTOCOLS.get(urlparse(url).scheme.lower(), ("",))[0] == "s3"


def environment_endpoint() -> str | None:
    """The name of the variable that sets botocore's S3 endpoint here, if one does."""
    return next((name for name in ENDPOINT_ENV if os.environ.get(name)), None)


def is_remote(path: object) -> TypeIs[UPath]:
    """Whether ``path`` lives in object storage rather than on a local filesystem (a
    local UPath is a :class:`~pathlib.Path`, and counts as local)."""
    return isinstance(path, UPath) and not isinstance(path, os.PathLike)


def remote_root(
    url: str,
    origin: str,
    settings: Mapping[str, Any] | None = None,
    credentials: Mapping[str, Any] | None = None,
) -> UPath:
    """The root at ``url``, with ``settings`` (a block's non-secret options) and
    ``credentials`` (from :func:`credentials_options`) as its filesystem's options."""
    scheme, bucket, path = _plain_url(url, origin)
    extra, package = PROTOCOLS[scheme]
    if secret := _secret_setting(settings or {}):
        raise UnsupportedDataRoot(
            f"{origin}: refused, setting {secret!r} looks like a credential; keep credentials"
            f" in the environment or the {CREDENTIALS_BLOCK_TYPE} block"
        )
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError:
        raise UnsupportedDataRoot(
            f"{origin}: {scheme}:// needs {package}: install airnub-core[{extra}]"
        ) from None
    options: dict[str, Any] = {"use_listings_cache": False}  # another host may have written
    options |= dict(settings or {})
    if extra == "s3":
        options["config_kwargs"] = _s3_config(options.get("config_kwargs") or {})
        options = _with_credentials(options, credentials or {}, origin)
    root = UPath(f"{scheme}://{bucket}{path}", **options)
    if extra == "s3":
        cast(Any, root.fs).retries = S3FS_RETRIES  # a class default of s3fs; the instance is ours
    return root


def _s3_config(settings: Mapping[str, Any]) -> dict[str, Any]:
    """botocore's config: the deadlines (a block may shorten them), and an HTTP session
    that never follows a redirect, which a block cannot turn back on."""
    return {**S3_DEADLINES, **settings, "http_session_cls": _unredirected_session_class()}


@cache
def _unredirected_session_class() -> type:
    """aiobotocore's HTTP session, with aiohttp's redirects off. aiohttp follows a 3xx by
    default and drops only ``Authorization`` on the way: the body being written and an
    ``X-Amz-Security-Token`` would go to whatever host the endpoint names. S3 itself
    never redirects across hosts (a region move is a 301 botocore handles itself)."""
    from aiobotocore.httpsession import AIOHTTPSession

    class Unredirected:
        def __init__(self, session: Any) -> None:
            self._session = session

        def request(self, *args: Any, **kwargs: Any) -> Any:
            return self._session.request(*args, allow_redirects=False, **kwargs)

    class UnredirectedSession(AIOHTTPSession):
        async def _get_session(self, proxy_url: Any) -> Any:  # pyright: ignore[reportIncompatibleMethodOverride]
            return Unredirected(await super()._get_session(proxy_url))

    return UnredirectedSession


def _plain_url(url: str, origin: str) -> tuple[str, str, str]:
    """The scheme, bucket and path (``""`` or ``/a/b``) of an object-storage root URL,
    refused unless each names exactly one thing: nothing secret in it, a bucket name as
    the services spell them, and plain key segments (fsspec takes keys literally, so
    ``%2e``, an empty or ``.`` segment would name keys no reader of the URL expects)."""
    if url != url.strip() or not url.isprintable():  # urlparse drops tabs and newlines
        raise UnsupportedDataRoot(f"{origin}: refused, the URL holds spaces or control characters")
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme not in PROTOCOLS:
        known = ", ".join(f"{name}://" for name in ("s3", "gs", "az"))
        raise UnsupportedDataRoot(
            f"{origin}: {scheme}:// is not a data root; give a local path, a file:// URL or"
            f" object storage ({known})"
        )
    if (
        parsed.username
        or parsed.password
        or parsed.query
        or parsed.fragment
        or "@" in parsed.netloc
    ):
        raise UnsupportedDataRoot(
            f"{origin}: refused, the URL carries a user, password, query or fragment;"
            " credentials belong in the environment or a credentials block"
        )
    if not parsed.netloc:
        raise UnsupportedDataRoot(f"{origin}: {scheme}:// URL names no bucket")
    if not _BUCKET.fullmatch(parsed.netloc):
        raise UnsupportedDataRoot(f"{origin}: refused, {parsed.netloc[:80]!r} is not a bucket"
                                  " name (letters, digits, '.', '-', '_'; no port)")  # fmt: skip
    path = parsed.path.rstrip("/")
    segments = path.split("/")[1:]
    if "%" in path or any(segment in ("", ".", "..") for segment in segments):
        raise UnsupportedDataRoot(
            f"{origin}: refused, the root's path {path[:80]!r} is not plain key segments"
            " (no '..', '.', '//' or percent-encoding)"
        )
    return scheme, parsed.netloc, path


def _with_credentials(
    options: dict[str, Any], credentials: Mapping[str, Any], origin: str
) -> dict[str, Any]:
    """``options`` with the block's ``credentials``, once every endpoint named is checked:
    keys are signed only for the endpoint configured with them. Without a block's own
    key pair the standard chain signs (variables, profile, instance role), so then every
    endpoint named must be the environment's."""
    for source, named in (("the settings'", options), ("the credentials'", credentials)):
        if endpoint := _endpoint(named):
            check_endpoint(endpoint, f"{origin}: {source} endpoint")
    if options.get("anon"):  # unsigned requests: no key goes anywhere
        return options
    ours, theirs = _endpoint(options), _endpoint(credentials)
    env = environment_endpoint()
    if "key" in credentials and "secret" in credentials:
        if ours and not same_endpoint(ours, theirs):
            raise UnsupportedDataRoot(
                f"{origin}: refused, the root's endpoint differs from the one its credentials"
                f" block names; credentials go only to their own endpoint"
            )
        if theirs is None and env:
            raise UnsupportedDataRoot(
                f"{origin}: refused, the {CREDENTIALS_BLOCK_TYPE} block names no endpoint but"
                f" ${env} would send its keys there; set aws_client_parameters.endpoint_url"
                " in the block"
            )
    else:
        env_endpoint = os.environ.get(env) if env else None
        for endpoint in (ours, theirs):
            if endpoint and not same_endpoint(endpoint, env_endpoint):
                where = f"${env}" if env else "AWS's own endpoint (no $AWS_ENDPOINT_URL)"
                raise UnsupportedDataRoot(
                    f"{origin}: refused, a block names an endpoint other than {where}, where"
                    " the keys from the environment belong; give the keys in the"
                    f" {CREDENTIALS_BLOCK_TYPE} block with that endpoint"
                )
    if not credentials:
        return options
    merged = options | dict(credentials)
    merged.pop("endpoint_url", None)  # s3fs would prefer it to the block's, checked above
    client = {**options.get("client_kwargs", {}), **credentials.get("client_kwargs", {})}
    if ours and not theirs:
        client["endpoint_url"] = ours
    if client:
        merged["client_kwargs"] = client
    return merged


def _secret_setting(settings: Mapping[str, Any], prefix: str = "") -> str | None:
    """The first setting (dotted, nested) whose name looks like a credential."""
    for name, value in settings.items():
        dotted = f"{prefix}{name}"
        if _SECRET_NAME.search(str(name)):
            return dotted
        if isinstance(value, Mapping) and (found := _secret_setting(value, f"{dotted}.")):
            return found
    return None


def _endpoint(options: Mapping[str, Any]) -> str | None:
    client = options.get("client_kwargs") or {}
    return options.get("endpoint_url") or client.get("endpoint_url")


def check_endpoint(url: object, origin: str) -> str:
    """``url`` if it is a plain ``http(s)://host[:port][/path]`` endpoint; refused in one
    line naming ``origin`` (never echoing it: a user or query in it may be a secret)."""
    if not (isinstance(url, str) and url.isprintable() and _plain_endpoint(urlparse(url))):
        raise UnsupportedDataRoot(
            f"{origin}: refused, not a plain http(s)://host[:port] URL (no user, password or query)"
        )
    return url


def _plain_endpoint(parsed: ParseResult) -> bool:
    try:
        parsed.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError:
        return False
    return (
        parsed.scheme.lower() in ("http", "https")
        and bool(parsed.hostname)
        and "@" not in parsed.netloc
        and not (parsed.query or parsed.fragment)
    )


def same_endpoint(one: str | None, other: str | None) -> bool:
    """Whether two endpoint URLs reach the same server: scheme and host compared without
    case, a default port as its number, a trailing slash ignored. http and https differ
    (a session token must not travel in clear)."""
    if one is None or other is None:
        return one is other
    return _endpoint_identity(one) == _endpoint_identity(other)


def _endpoint_identity(url: str) -> tuple[str, str, int | None, str]:
    parsed = urlparse(url.strip())
    scheme = parsed.scheme.lower()
    try:
        port = parsed.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return scheme, parsed.hostname or "", port, parsed.path.rstrip("/")


def credentials_options(document: Mapping[str, Any]) -> dict[str, Any]:
    """s3fs options from an ``aws-credentials`` block document's data."""
    client = document.get("aws_client_parameters") or {}
    options: dict[str, Any] = {}
    for field, option in (
        ("aws_access_key_id", "key"),
        ("aws_secret_access_key", "secret"),
        ("aws_session_token", "token"),
        ("profile_name", "profile"),
    ):
        if document.get(field):
            options[option] = str(document[field])
    client_kwargs = {
        name: value
        for name, value in (
            ("region_name", document.get("region_name")),
            ("endpoint_url", client.get("endpoint_url")),
        )
        if value
    }
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    return options


def credentials_from_api(block_name: str) -> dict[str, Any] | None:
    """s3fs options from the ``aws-credentials`` block ``block_name`` on the configured
    Prefect API, or None if there is none (the standard chain applies). Read as a
    document, so workers need no prefect-aws."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(
                block_name, CREDENTIALS_BLOCK_TYPE, include_secrets=True
            )
        except ObjectNotFound:
            return None
    return credentials_options(document.data)


def ask(path: UPath, operation: str, *args: Any, **kwargs: Any) -> Any:
    """``path.fs.<operation>(<path>, ...)`` cut off after :data:`OPERATION_DEADLINE`, with
    fsspec's bare timeout error told as one line naming the object (a silent endpoint can
    hang a PUT's ``Expect: 100-continue`` wait in aiohttp: only this deadline ends it)."""
    from fsspec.exceptions import FSTimeoutError

    try:
        return getattr(path.fs, operation)(path.path, *args, timeout=OPERATION_DEADLINE, **kwargs)
    except FSTimeoutError:
        raise TimeoutError(
            f"{path}: object storage did not answer within {OPERATION_DEADLINE:g} s"
        ) from None


def object_info(path: UPath) -> dict[str, Any] | None:
    """The listing of the object at ``path``, or None if there is no object (a prefix, a
    "folder" marker ``name/``, or nothing)."""
    try:
        info = ask(path, "info")
    except FileNotFoundError:
        return None
    return info if info.get("type") == "file" else None


def _version(info: Mapping[str, Any]) -> tuple[Any, ...]:
    """What tells one version of an object from another (S3's ETag, gcs/azure's etag)."""
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    return info.get("size"), tag or info.get("LastModified") or info.get("last_modified")


READ_RANGE = 8 << 20  # bytes asked for in one ranged GET


class ObjectReader(io.RawIOBase):
    """An object read in ranged GETs, each under the operation deadline (a server that
    drip-feeds a body meets every per-read timeout yet would never finish). A read over
    several ranges checks at its end that the object was not replaced meanwhile, so a
    reader never takes half of one version and half of another as a whole."""

    def __init__(self, path: UPath, info: Mapping[str, Any]) -> None:
        self._path, self._info = path, info
        self._size = int(info.get("size") or 0)
        self._position = 0
        self._ranges = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size:
            return 0
        end = min(self._position + len(buffer), self._size)
        data = ask(self._path, "cat_file", start=self._position, end=end)
        if not data or len(data) > end - self._position:
            asked = end - self._position
            raise OSError(f"{self._path}: object storage sent {len(data)} bytes for a range"
                          f" of {asked}; the object changed, or the server is wrong")  # fmt: skip
        self._ranges += 1
        buffer[: len(data)] = data
        self._position += len(data)
        if self._position >= self._size and self._ranges > 1:
            now = object_info(self._path)
            if now is None or _version(now) != _version(self._info):
                raise OSError(f"{self._path}: replaced while it was read; read it again")
        return len(data)


def open_object(path: UPath) -> io.BufferedReader:
    """A reader of the object at ``path``; ``FileNotFoundError`` if there is none."""
    info = object_info(path)
    if info is None:
        raise FileNotFoundError(errno.ENOENT, "no such object", str(path))
    return io.BufferedReader(ObjectReader(path, info), READ_RANGE)
