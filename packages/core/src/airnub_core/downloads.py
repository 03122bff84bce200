"""Download listed files idempotently, recording each file's sha256 in a manifest.

A re-run asks each source whether it changed (ETag / Last-Modified for HTTP,
modification time and size for local files) and skips unchanged ones; content
that arrives but hashes the same is not rewritten either. Every file's outcome
(``downloaded``, ``updated``, ``unchanged``) is recorded in ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from airnub_core.sources import Reader, SourceError
from airnub_core.storage import write_bytes_atomic, write_json_atomic

MANIFEST = "manifest.json"


@dataclass
class ManifestEntry:
    url: str
    file: str
    sha256: str
    size: int
    status: str
    checked_at: str
    etag: str | None = None
    last_modified: str | None = None


def file_name_for(url: str) -> str:
    name = posixpath.basename(unquote(urlparse(url).path))
    if not name or name in (".", ".."):
        raise SourceError(f"{url}: cannot derive a file name from the URL")
    return name


def load_manifest(folder: Path) -> dict[str, ManifestEntry]:
    path = folder / MANIFEST
    if not path.exists():
        return {}
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["files"]
        return {row["url"]: ManifestEntry(**row) for row in rows}
    except (ValueError, KeyError, TypeError) as error:
        raise SourceError(f"{path}: unreadable manifest ({error})") from None


def download_files(
    urls: list[str],
    folder: Path,
    *,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 0.5,
    headers: dict[str, str] | None = None,
) -> list[ManifestEntry]:
    """Download ``urls`` into ``folder``; return and save the manifest entries.

    Names must be unique; all files are fetched before the manifest is written,
    and any failure raises before it is, so the manifest always matches the files.
    """
    names = [file_name_for(url) for url in urls]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourceError(f"two files would be saved as {', '.join(duplicates)}")
    previous = load_manifest(folder)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    entries: list[ManifestEntry] = []
    with Reader(timeout, retries, backoff, headers, credential_origins=urls) as reader:
        for url, name in zip(urls, names, strict=True):
            target = folder / name
            known = previous.get(url) if target.exists() else None
            fetched = reader.fetch(
                url, known.etag if known else None, known.last_modified if known else None
            )
            if fetched.content is None and known:
                entries.append(
                    ManifestEntry(**{**asdict(known), "status": "unchanged", "checked_at": now})
                )
                continue
            content = fetched.content or b""
            digest = hashlib.sha256(content).hexdigest()
            if known and known.sha256 == digest:
                status = "unchanged"
            else:
                write_bytes_atomic(target, content)
                status = "updated" if known else "downloaded"
            entries.append(
                ManifestEntry(
                    url, name, digest, len(content), status, now,
                    fetched.etag, fetched.last_modified,
                )
            )  # fmt: skip
    write_json_atomic(folder / MANIFEST, {"files": [asdict(e) for e in entries]})
    return entries
