"""Where outputs go, and writing them so a crash never leaves half a file.

The data root defaults to ``data/`` at the repository root (git-ignored), and
``AIRNUB_DATA_ROOT`` overrides it. Outputs are laid out as
``<department>/<stage>/<category>/...``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

DATA_ROOT_ENV = "AIRNUB_DATA_ROOT"


def repository_root(start: Path | None = None) -> Path | None:
    """The nearest folder above ``start`` holding a ``uv.lock`` (the workspace root)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "uv.lock").is_file():
            return folder
    return None


def data_root() -> Path:
    configured = os.environ.get(DATA_ROOT_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return (repository_root() or Path.cwd()) / "data"


def output_dir(*parts: str) -> Path:
    """``data_root()/<department>/<stage>/<category>``, created on demand."""
    folder = data_root().joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_bytes_atomic(path: Path, content: bytes) -> Path:
    """Write to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
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
