"""Where outputs go, and writing them so a crash never leaves half a file.

The data root is, first match wins: ``AIRNUB_DATA_ROOT``; the ``airnub-data-root``
storage block on the configured Prefect API (``airnub blocks sync`` creates it); else
``data/`` at the repository root (git-ignored). Outputs are laid out as
``<department>/<stage>/<category>/...``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

DATA_ROOT_ENV = "AIRNUB_DATA_ROOT"
DATA_ROOT_BLOCK = "airnub-data-root"


def repository_root(start: Path | None = None) -> Path | None:
    """The nearest folder above ``start`` holding a ``uv.lock`` (the workspace root)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "uv.lock").is_file():
            return folder
    return None


def local_path_of(value: str) -> str:
    """A local path or ``file://`` URL as an absolute path."""
    path = Path(unquote(urlparse(value).path) if value.startswith("file:") else value)
    return str(path.expanduser().resolve())


def data_root(*, use_block: bool | None = None) -> Path:
    """The data root. The storage block is looked up inside flow and task runs, where
    the API is known to be up, or when ``use_block`` says the caller knows it is."""
    configured = os.environ.get(DATA_ROOT_ENV)
    if configured:
        return Path(local_path_of(configured))
    if use_block is None:
        use_block = _in_a_run()
    from_block = _block_root(_api_url()) if use_block else None
    if from_block is not None:
        return from_block
    return (repository_root() or Path.cwd()) / "data"


def _in_a_run() -> bool:
    if "prefect" not in sys.modules:
        return False
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


@cache
def _block_root(api_url: str | None) -> Path | None:
    """The storage block's basepath on this API, looked up once per process and API."""
    if not api_url:
        return None
    from prefect.filesystems import LocalFileSystem

    try:
        block = LocalFileSystem.load(DATA_ROOT_BLOCK)
    except ValueError:  # no such block on this API: the default applies
        return None
    return Path(local_path_of(block.basepath))


def output_dir(*parts: str) -> Path:
    """``data_root()/<department>/<stage>/<category>``, created on demand."""
    folder = data_root().joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (threads write too)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass  # not Linux: fall back to setting it and putting it back
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def plain_write_mode(path: Path) -> int:
    """The mode a plain write of ``path`` would leave: the existing file's, or the umask's
    default for a new one (``mkstemp`` alone would make every file 0600)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def write_bytes_atomic(path: Path, content: bytes) -> Path:
    """Write to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(temp, plain_write_mode(path))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_csv_atomic(path: Path, rows: Iterable[Mapping[str, Any]], columns: list[str]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, buffer.getvalue())


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def folder_stats(paths: Iterable[Path]) -> dict[str, int]:
    """Count the files among ``paths`` and their total size."""
    files = [p for p in paths if p.is_file()]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
