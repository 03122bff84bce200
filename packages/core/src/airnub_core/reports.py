"""Small pieces of the reports analysis categories write and publish."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def markdown_table(
    rows: Sequence[Mapping[str, Any]], columns: list[str] | None = None
) -> list[str]:
    """The lines of a markdown table; columns default to the first row's keys."""
    if not rows:
        raise ValueError("a table needs at least one row")
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return lines
