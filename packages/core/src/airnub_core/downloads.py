"""Download listed files idempotently, recording each file's sha256 in a manifest.

A re-run first checks each file it downloaded before against its manifest entry (the
sha256 and size of what is on disk). Only an intact copy lets the source be asked whether
it changed (ETag / Last-Modified for HTTP, modification time and size for local files);
a missing or altered copy is fetched again unconditionally. Content that arrives but
hashes the same is not rewritten. Each file's status in ``manifest.json``:
``downloaded`` (new), ``updated`` (the source changed), ``unchanged``, or ``repaired``
(the copy on disk was missing or no longer matched its entry, and was fetched again).

The rule the folder keeps after every run, successful or failed:

- ``manifest.json`` lists exactly the downloaded files on disk, each matching its sha256
  and size: the files fetched this run, and earlier files still intact. A failed run
  writes it too, then re-raises its own error.
- A file whose URL left the list is removed, as is an earlier file found altered that a
  failed run did not get to fetch again. Only names a previous manifest recorded are
  removed, only regular files (never a symlink, nor what it points to), and only inside
  the folder; a file the manifest never knew is left alone.
- A manifest entry whose ``file`` is not the plain name its URL gives (``../x``, ``/etc/x``,
  ``a/b``, the manifest's own name) is refused, naming the manifest, before anything is
  fetched or removed.

The manifest is also saved after each file written, so a run killed mid-way (its host
lost) leaves every file it finished listed: a rerun asks for those conditionally and
downloads none of them again. The folder may be in object storage, where each file and
the manifest are single objects, visible only when whole.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from urllib.parse import unquote, urlparse

from airnub_core.sources import DEFAULT_DEADLINE, Reader, SourceError
from airnub_core.storage import (
    DataPath,
    open_output,
    output_digest,
    remove_output,
    write_bytes_atomic,
    write_json_atomic,
)

MANIFEST = "manifest.json"
SHA256 = re.compile(r"[0-9a-f]{64}")
MANIFEST_LIMIT = 64 << 20  # bytes; some 200,000 entries


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
    if not name or name in (".", "..") or not name.isprintable():  # NUL, newline...
        raise SourceError(f"{url}: cannot derive a file name from the URL")
    if name == MANIFEST:
        raise SourceError(f"{url}: would be saved as {MANIFEST}, the manifest's own name")
    return name


def load_manifest(folder: DataPath) -> dict[str, ManifestEntry]:
    """The manifest's entries by URL; none if there is no manifest yet."""
    path = folder / MANIFEST
    try:
        with open_output(path) as handle:
            text = handle.read(MANIFEST_LIMIT + 1)  # a planted giant is not read whole
    except FileNotFoundError:
        return {}
    if len(text) > MANIFEST_LIMIT:
        raise SourceError(f"{path}: refused, larger than {MANIFEST_LIMIT >> 20} MiB")
    try:
        entries = [ManifestEntry(**row) for row in json.loads(text)["files"]]
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise SourceError(f"{path}: unreadable manifest ({error})") from None
    for number, entry in enumerate(entries, start=1):
        _check_entry(path, number, entry)
    files = [entry.file for entry in entries]
    if len(set(files)) < len(files) or len({e.url for e in entries}) < len(entries):
        raise SourceError(f"{path}: refused, two entries name the same file or URL")
    return {entry.url: entry for entry in entries}


def _check_entry(path: DataPath, number: int, entry: ManifestEntry) -> None:
    """An entry may only name the plain file its URL gives, inside the manifest's folder
    (the URL is not echoed: it may carry a credential)."""
    if not isinstance(entry.url, str) or not isinstance(entry.file, str):
        raise SourceError(f"{path}: refused, entry {number} has a url or file that is not text")
    try:
        expected = file_name_for(entry.url)
    except SourceError:
        expected = None
    if entry.file != expected:
        raise SourceError(f"{path}: refused, entry {number} names file {entry.file[:80]!r},"
                          " not the plain file name its URL gives")  # fmt: skip
    if not isinstance(entry.sha256, str) or not SHA256.fullmatch(entry.sha256):
        raise SourceError(f"{path}: refused, entry {number} has no valid sha256")
    if type(entry.size) is not int or entry.size < 0:
        raise SourceError(f"{path}: refused, entry {number} has no valid size")


def download_files(
    urls: list[str],
    folder: DataPath,
    *,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 0.5,
    headers: dict[str, str] | None = None,
    deadline: float = DEFAULT_DEADLINE,
) -> list[ManifestEntry]:
    """Download ``urls`` into ``folder``; return and save the manifest entries.

    Names must be unique. The manifest is saved whether the run succeeds or fails (see
    the module's rule), and a failure re-raises its own error.
    """
    names = [file_name_for(url) for url in urls]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourceError(f"two files would be saved as {', '.join(duplicates)}")
    previous = load_manifest(folder)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    done: list[ManifestEntry] = []
    try:
        with Reader(
            timeout, retries, backoff, headers, credential_origins=urls, deadline=deadline
        ) as reader:
            for url, name in zip(urls, names, strict=True):
                entry = _download(reader, url, folder / name, previous.get(url), now)
                done.append(entry)
                if entry.status != "unchanged":  # a file written: list it before the next
                    _checkpoint(folder, previous, done)
    except BaseException as error:
        try:
            _settle(folder, previous, done, set(urls))
        except Exception as failure:  # the run's own error is the one to report
            error.add_note(f"and {folder / MANIFEST} could not be saved: {failure}")
        raise
    _settle(folder, previous, done, set(urls))
    return done


def _download(
    reader: Reader, url: str, target: DataPath, known: ManifestEntry | None, now: str
) -> ManifestEntry:
    """Fetch one file: conditionally only when the copy on disk matches ``known``."""
    intact = known if known is not None and _matches(target, known) else None
    condition = (intact.etag, intact.last_modified) if intact else (None, None)
    fetched = reader.fetch(url, *condition)
    if fetched.content is None:
        if intact is None:
            raise SourceError(f"{url}: answered 'not modified' to a request without a condition")
        return replace(intact, status="unchanged", checked_at=now)
    digest = hashlib.sha256(fetched.content).hexdigest()
    if intact and intact.sha256 == digest:
        status = "unchanged"
    else:
        write_bytes_atomic(target, fetched.content)
        status = "updated" if intact else "repaired" if known else "downloaded"
    return ManifestEntry(
        url, target.name, digest, len(fetched.content), status, now,
        fetched.etag, fetched.last_modified,
    )  # fmt: skip


def _matches(path: DataPath, entry: ManifestEntry) -> bool:
    """Whether the regular file at ``path`` has the entry's size and sha256."""
    return output_digest(path) == (entry.size, entry.sha256)


def _checkpoint(
    folder: DataPath, previous: dict[str, ManifestEntry], done: list[ManifestEntry]
) -> None:
    """Save the manifest mid-run: this run's entries so far, and the earlier ones not yet
    reached (their files are still there; :func:`_settle` checks them at the end)."""
    reached = {entry.url for entry in done} | {entry.file for entry in done}
    pending = [e for e in previous.values() if e.url not in reached and e.file not in reached]
    write_json_atomic(folder / MANIFEST, {"files": [asdict(e) for e in [*done, *pending]]})


def _settle(
    folder: DataPath,
    previous: dict[str, ManifestEntry],
    done: list[ManifestEntry],
    listed: set[str],
) -> None:
    """Save the manifest of what is on disk: this run's entries, then earlier ones still
    listed and intact; remove the earlier files that are neither."""
    fetched_urls = {entry.url for entry in done}
    written = {entry.file for entry in done}
    kept: list[ManifestEntry] = []
    for entry in previous.values():
        if entry.url in fetched_urls or entry.file in written:
            continue
        if entry.url in listed and _matches(folder / entry.file, entry):
            kept.append(entry)
        else:
            remove_output(folder / entry.file)
    write_json_atomic(folder / MANIFEST, {"files": [asdict(e) for e in [*done, *kept]]})
