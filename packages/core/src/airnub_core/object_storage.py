"""Data roots in object storage (``s3://``, ``gs://``, ``az://``), through fsspec.

A remote root is a :class:`upath.UPath` carrying its filesystem's options, so every path
joined below it reaches the same bucket with the same settings. Its rules:

- Only object-storage protocols are roots: ``s3`` (``s3fs``), ``gs``/``gcs`` (``gcsfs``),
  ``az``/``abfs``/``abfss`` (``adlfs``), each installed by an extra of airnub-core
  (``airnub-core[s3]``). Any other URL (``http://``, ``memory://``...) is refused.
- The URL names a bucket and nothing secret: a user, password, query or fragment in it is
  refused without echoing it; settings whose names look like credentials are refused too.
- S3 credentials come from the standard chain (``AWS_ACCESS_KEY_ID`` ..., the endpoint
  from ``AWS_ENDPOINT_URL``), or from the Prefect ``aws-credentials`` block named
  ``airnub-data-root``; that block's keys go only to the endpoint the block names.
- Every wait has a deadline. An S3 request connects within 10 s and each read waits at
  most 30 s; botocore tries a request 3 times and s3fs an operation twice (not its
  default 5), so a silent endpoint fails an operation within about four minutes, never
  hangs; the writes, lookups and removals of :mod:`airnub_core.storage` are also cut off
  after :data:`OPERATION_DEADLINE` seconds as a whole.
- A write is one object PUT (a multipart upload for large ones, completed last): readers
  see the whole object or none, so no partial output is ever visible.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, cast
from urllib.parse import urlparse

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
_ENDPOINT_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


class UnsupportedDataRoot(ValueError):
    """A data root that cannot be used, refused in one line naming where it came from."""


def is_remote_url(value: str) -> bool:
    """Whether ``value`` is a URL with a scheme other than ``file`` (a drive letter is not)."""
    scheme = urlparse(value).scheme
    return len(scheme) > 1 and scheme.lower() != "file"


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
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme not in PROTOCOLS:
        known = ", ".join(f"{name}://" for name in ("s3", "gs", "az"))
        raise UnsupportedDataRoot(
            f"{origin}: {scheme}:// is not a data root; give a local path, a file:// URL or"
            f" object storage ({known})"
        )
    if parsed.username or parsed.password or parsed.query or parsed.fragment:
        raise UnsupportedDataRoot(
            f"{origin}: refused, the URL carries a user, password, query or fragment;"
            " credentials belong in the environment or a credentials block"
        )
    if not parsed.hostname:
        raise UnsupportedDataRoot(f"{origin}: {scheme}:// URL names no bucket")
    if ".." in PurePosixPath(parsed.path).parts:
        raise UnsupportedDataRoot(f"{origin}: refused, '..' in the data root's path")
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
    if extra == "s3":
        options["config_kwargs"] = dict(S3_DEADLINES)
    options |= dict(settings or {})
    if credentials:
        _check_endpoints(options, credentials, origin)
        client = {**options.get("client_kwargs", {}), **credentials.get("client_kwargs", {})}
        options |= dict(credentials)
        if client:
            options["client_kwargs"] = client
    root = UPath(f"{scheme}://{parsed.netloc}{parsed.path.rstrip('/')}", **options)
    if extra == "s3":
        cast(Any, root.fs).retries = S3FS_RETRIES  # a class default of s3fs; the instance is ours
    return root


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


def _check_endpoints(
    options: Mapping[str, Any], credentials: Mapping[str, Any], origin: str
) -> None:
    """Credentials go only to the endpoint configured with them."""
    theirs = _endpoint(credentials)
    ours = _endpoint(options)
    if ours and ours != theirs:
        raise UnsupportedDataRoot(
            f"{origin}: refused, the root's endpoint differs from the one its credentials"
            f" block names; credentials go only to their own endpoint"
        )
    if theirs is None and (env := next((e for e in _ENDPOINT_ENV if os.environ.get(e)), None)):
        raise UnsupportedDataRoot(
            f"{origin}: refused, the {CREDENTIALS_BLOCK_TYPE} block names no endpoint but ${env}"
            " would send its keys there; set aws_client_parameters.endpoint_url in the block"
        )


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
