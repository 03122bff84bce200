"""Usage: per department, what its flow runs asked of Prefect over a window of time.

Read from the Prefect API, page by page, for the departments installed here (a flow run
belongs to a department by its department tag; other tags never make a row). Counted:

- **runs**: top-level flow runs expected to start in the window (a stage's category
  subflows are part of its run, not runs of their own);
- **failures**: those that ended Failed or Crashed;
- **late**: those in Prefect's Late state, still waiting (Scheduled or Pending) more than
  ``LATE_AFTER`` past their expected start, or that started more than ``LATE_AFTER`` after it;
- **run time**: the time they spent running (Prefect's estimate for one still running).

As a table, JSON, an RFC 4180 CSV whose text cells cannot become spreadsheet formulas, and a
PNG bar chart. Both files are made in memory and then renamed into place, whole or not at all.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airnub_core import conventions
from airnub_core.variables import read_all

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1),
         "w": timedelta(weeks=1)}  # fmt: skip
MAX_SINCE = timedelta(days=366)  # a year: Prefect servers seldom keep runs longer
LATE_AFTER = timedelta(seconds=60)
_SINCE_RE = re.compile(r"([1-9][0-9]{0,5})([mhdw])")
# A cell starting with one of these is read as a formula by spreadsheets (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ["department", "display_name", "runs", "failures", "late", "run_time_seconds"]
FAILED_STATES = frozenset({"FAILED", "CRASHED"})
WAITING_STATES = frozenset({"SCHEDULED", "PENDING"})


class UsageError(ValueError):
    """An argument usage cannot work with; the message names it, in one line."""


def parse_since(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d`` or ``2w`` as a timedelta, up to ``MAX_SINCE``."""
    match = _SINCE_RE.fullmatch(text)
    if match is None:
        shown = repr(text[:24]) + ("..." if len(text) > 24 else "")
        raise UsageError(f"--since: {shown} is not a duration like 30m, 12h, 7d or 2w")
    since = int(match[1]) * UNITS[match[2]]
    if since > MAX_SINCE:
        raise UsageError(f"--since: {text} is longer than {MAX_SINCE.days} days")
    return since


@dataclass
class DepartmentUsage:
    department: str
    display_name: str
    runs: int = 0
    failures: int = 0
    late: int = 0
    run_time_seconds: float = 0.0

    def count(self, run: FlowRun, now: datetime) -> None:
        self.runs += 1
        state = run.state_type.name if run.state_type else ""
        self.failures += state in FAILED_STATES
        self.late += is_late(run, state, now)
        self.run_time_seconds += run.estimated_run_time.total_seconds()


def is_late(run: FlowRun, state: str, now: datetime) -> bool:
    expected = run.expected_start_time
    if run.state_name == "Late":
        return True
    if expected is None:
        return False
    if run.start_time is not None:
        return run.start_time - expected > LATE_AFTER
    return state in WAITING_STATES and now - expected > LATE_AFTER


def _flow_runs(
    client: SyncPrefectClient, departments: list[str], start: datetime, now: datetime
) -> list[FlowRun]:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterParentTaskRunId,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    wanted = FlowRunFilter(
        tags=FlowRunFilterTags(any_=departments),
        # validated from a dict: the fields are typed with Prefect's own datetime subclass
        expected_start_time=FlowRunFilterExpectedStartTime.model_validate(
            {"after_": start, "before_": now}
        ),
        parent_task_run_id=FlowRunFilterParentTaskRunId(is_null_=True),
    )
    # a stable order, so no run moves between pages while they are read
    return read_all(client.read_flow_runs, flow_run_filter=wanted, sort=FlowRunSort.ID_DESC)


def read_usage(
    client: SyncPrefectClient, since: timedelta, now: datetime | None = None
) -> list[DepartmentUsage]:
    """Every installed department's usage over the ``since`` before ``now``, by id."""
    now = now or datetime.now(UTC)
    known = conventions.departments()
    found = {d: DepartmentUsage(d, name) for d, name in sorted(known.items())}
    if not found:
        return []
    for run in _flow_runs(client, list(found), now - since, now):
        if not asked_for(run, now - since, now):
            continue
        for tag in dict.fromkeys(run.tags):  # a tag given twice counts once
            if tag in found:
                found[tag].count(run, now)
    return list(found.values())


def asked_for(run: FlowRun, start: datetime, now: datetime) -> bool:
    """Whether ``run`` is one the filter asked for: a server that ignores it (a proxy, an
    old or a hostile one) cannot add subflows or runs from outside the window to the count."""
    expected = run.expected_start_time
    top_level = run.parent_task_run_id is None
    return top_level and expected is not None and start <= expected <= now


def safe_cell(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: one that would start a formula gets a
    leading apostrophe. Numbers are ours, never negative: left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


def as_rows(usage: list[DepartmentUsage]) -> list[dict[str, Any]]:
    return [{**asdict(u), "run_time_seconds": round(u.run_time_seconds, 3)} for u in usage]


def to_csv(usage: list[DepartmentUsage]) -> bytes:
    """RFC 4180: a header, CRLF line ends, fields quoted where they need it."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in as_rows(usage):
        writer.writerow([safe_cell(row[column]) for column in COLUMNS])
    return buffer.getvalue().encode("utf-8")


def _label(text: str, limit: int = 30) -> str:
    """A name as a chart label: short, one line, no mathtext (``$`` would start it)."""
    flat = " ".join(_printable(text).split())
    short = flat if len(flat) <= limit else f"{flat[: limit - 1]}…"
    return short.replace("$", r"\$")


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text)


def to_png(usage: list[DepartmentUsage], title: str) -> bytes:
    """Two bar charts by department: runs, failures and late runs; hours of run time."""
    import matplotlib  # here, not above: a second of imports that --help never needs

    matplotlib.use("Agg")  # files only: no display, whatever MPLBACKEND says
    from matplotlib.figure import Figure

    labels = [_label(u.display_name) for u in usage]
    positions = list(range(len(usage)))
    width = min(max(6.0, 0.6 * len(usage) + 2), 40.0)
    figure = Figure(figsize=(width, 7), layout="constrained")
    counts, hours = figure.subplots(2, 1, sharex=True)
    for offset, (name, values) in zip(
        (-0.27, 0.0, 0.27),
        (("runs", [u.runs for u in usage]), ("failures", [u.failures for u in usage]),
         ("late", [u.late for u in usage])),
        strict=True,
    ):  # fmt: skip
        counts.bar([p + offset for p in positions], values, width=0.27, label=name)
    counts.set_ylabel("flow runs")
    counts.legend(loc="upper right")
    counts.set_title(_label(title, 120))
    hours.bar(positions, [u.run_time_seconds / 3600 for u in usage], color="tab:purple")
    hours.set_ylabel("run time (hours)")
    hours.set_xticks(positions, labels, rotation=30, ha="right")
    if not usage:
        counts.text(0.5, 0.5, "no departments", ha="center", transform=counts.transAxes)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    return image.getvalue()
