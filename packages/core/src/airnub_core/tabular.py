"""Check rows against a declared pydantic schema, splitting accepted from rejected."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError


class TooManyRejected(ValueError):
    """More rows failed the schema than the category allows."""


@dataclass
class Checked:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rejected_fraction(self) -> float:
        total = len(self.accepted) + len(self.rejected)
        return len(self.rejected) / total if total else 0.0


def check_rows(
    rows: Iterable[Mapping[str, Any]], schema: type[BaseModel], max_rejected_fraction: float
) -> Checked:
    """Validate each row; rejected rows keep their index and the reasons.

    Raises :class:`TooManyRejected` when the share of rejects is above the limit,
    so a broken upstream fails the run instead of producing a thin table.
    """
    checked = Checked()
    for index, row in enumerate(rows):
        try:
            checked.accepted.append(schema.model_validate(row).model_dump(mode="json"))
        except ValidationError as error:
            reasons = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in error.errors()
            )
            checked.rejected.append({"row": index, "reasons": reasons, "data": dict(row)})
    if checked.rejected_fraction > max_rejected_fraction:
        raise TooManyRejected(
            f"{len(checked.rejected)} of {len(checked.rejected) + len(checked.accepted)} rows"
            f" failed {schema.__name__} (limit {max_rejected_fraction:.0%}); first:"
            f" row {checked.rejected[0]['row']}: {checked.rejected[0]['reasons']}"
        )
    return checked
