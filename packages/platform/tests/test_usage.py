"""`airnub usage`: its arguments refused in one line, its CSV safe in a spreadsheet, and its
report read from the session's real Prefect server for throwaway departments whose flows
succeed, fail and start late."""

import csv
import io
import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from airnub_core import conventions
from airnub_platform import usage
from airnub_platform.cli import app
from airnub_platform.usage import DepartmentUsage, UsageError
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

_made = itertools.count(1)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# a display name a spreadsheet would run as a formula, with mathtext for the chart
EVIL = '@SUM(1+1)*cmd|"calc"!A0 $x$'


def invoke(*args):
    return CliRunner().invoke(app, ["usage", *args], terminal_width=400)


def one_line_error(result, code, needle):
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and needle in lines[0], result.output


# --- --since -------------------------------------------------------------------------


@given(count=st.integers(1, 999), unit=st.sampled_from("mhdw"))
def test_a_duration_within_a_year_is_read_exactly(count, unit):
    expected = count * usage.UNITS[unit]
    if expected > usage.MAX_SINCE:
        with pytest.raises(UsageError, match="longer than 366 days"):
            usage.parse_since(f"{count}{unit}")
    else:
        assert usage.parse_since(f"{count}{unit}") == expected


@given(text=st.text(max_size=80))
def test_any_text_is_a_duration_or_refused_in_one_line_naming_the_option(text):
    try:
        since = usage.parse_since(text)
    except UsageError as error:
        message = str(error)
        assert message.startswith("--since: ") and "\n" not in message and len(message) < 320
    else:
        assert timedelta(0) < since <= usage.MAX_SINCE


@pytest.mark.parametrize(
    "since", ["0d", "-1d", "7", "d", "7x", "1.5h", "7 d", " 7d", "\uff17d", "1e9d", "9999999w", ""]
)
def test_hostile_since_values_stop_before_the_api_is_asked(since):
    one_line_error(invoke("--since", since), 2, "--since: ")


def test_an_unknown_format_and_unwritable_targets_are_refused(tmp_path):
    one_line_error(invoke("--format", "xml"), 2, "--format: 'xml' is not one of table, json")
    one_line_error(invoke("--csv", str(tmp_path / "no" / "u.csv")), 2, "its folder does not exist")
    one_line_error(invoke("--png", str(tmp_path)), 2, "not a regular file")
    (tmp_path / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    one_line_error(invoke("--csv", str(tmp_path / "link.csv")), 2, "refused, it is a symlink")
    same = str(tmp_path / "u.out")
    one_line_error(invoke("--csv", same, "--png", same), 2, "name the same file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv"]


# --- the CSV -------------------------------------------------------------------------


@given(name=st.text(max_size=40))
def test_a_display_name_never_becomes_a_formula_and_reads_back_whole(name):
    rows = [DepartmentUsage("dept_x", name, runs=3, failures=1, late=0, run_time_seconds=1.5)]
    data = usage.to_csv(rows)
    assert data.startswith(b"department,display_name,") and b"\r\n" in data
    header, row = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert header == usage.COLUMNS
    assert row[0] == "dept_x" and row[2:] == ["3", "1", "0", "1.5"]
    cell = row[1]
    assert not cell.startswith(usage.FORMULA_STARTS)
    assert cell in (name, f"'{name}")


# --- against the session's server ----------------------------------------------------


@pytest.fixture
def departments(make_department):
    """Two fresh departments (ids), each with a quick and a failing ingestion category;
    the first has a display name a spreadsheet would read as a formula."""
    made = []
    for display in (EVIL, "Quiet Team"):
        name = f"dept_usage_{next(_made)}"
        folder = make_department(name, {"ingestion": ["quick", "broken"]}, display_name=display)
        config = folder / "src" / name / "configs" / "variables" / "ingestion" / "broken.yaml"
        config.write_text("message: broken\nfail_with: on purpose\n")
        made.append(name)
    return made


def run_category(department, category):
    import importlib

    suffix = conventions.flow_suffix(department)
    module = importlib.import_module(f"{department}.ingestion.{category}.make_{category}{suffix}")
    return getattr(module, f"make_{category}")(return_state=True)


def schedule_overdue_run(department):
    """A run of the department that was due five minutes ago and never started: late."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    @flow(name=f"overdue-{department}")
    def overdue() -> None: ...

    due = datetime.now(UTC) - timedelta(minutes=5)
    with get_client(sync_client=True) as client:
        client.create_flow_run(overdue, tags=[department], state=Scheduled(scheduled_time=due))
        # a tag that is not an installed department never makes a row
        client.create_flow_run(overdue, tags=["dept_not_installed_anywhere"])


@pytest.mark.usefixtures("prefect_api")
def test_usage_counts_each_departments_runs_failures_late_runs_and_time(departments, tmp_path):
    loud, quiet = departments
    for category in ("quick", "quick", "broken"):
        run_category(loud, category)
    run_category(quiet, "quick")
    schedule_overdue_run(quiet)

    out = tmp_path / "out"  # tmp_path also holds the runs' data root
    out.mkdir()
    report, chart = out / "usage.csv", out / "usage.png"
    result = invoke("--since", "1h", "--format", "json", "--csv", str(report), "--png", str(chart))
    assert result.exit_code == 0, result.output
    rows = {row["department"]: row for row in json.loads(result.output)}
    assert "dept_not_installed_anywhere" not in rows
    assert {k: rows[loud][k] for k in ("runs", "failures", "late")} == {
        "runs": 3, "failures": 1, "late": 0,
    }  # fmt: skip
    assert {k: rows[quiet][k] for k in ("runs", "failures", "late")} == {
        "runs": 2, "failures": 0, "late": 1,
    }  # fmt: skip
    assert rows[loud]["run_time_seconds"] > 0

    with report.open(newline="", encoding="utf-8") as handle:
        read_back = {row["department"]: row for row in csv.DictReader(handle)}
    assert read_back[loud]["display_name"] == f"'{EVIL}"
    assert read_back[loud]["runs"] == "3" and read_back[quiet]["late"] == "1"
    image = chart.read_bytes()
    assert image.startswith(PNG_SIGNATURE) and len(image) > 5_000
    assert sorted(p.name for p in out.iterdir()) == ["usage.csv", "usage.png"]


@pytest.mark.usefixtures("prefect_api")
def test_the_table_shows_names_as_text_and_says_what_it_wrote(departments, tmp_path):
    run_category(departments[0], "quick")
    result = invoke("--since", "30m", "--csv", str(tmp_path / "u.csv"))
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert EVIL in flat  # verbatim, never markup
    assert f"wrote {tmp_path / 'u.csv'}" in flat


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def flow_run(state: str, name: str, expected_ago: int, started_after: int | None = None):
    from uuid import uuid4

    from prefect.client.schemas.objects import FlowRun, StateType

    expected = NOW - timedelta(seconds=expected_ago)
    start = None if started_after is None else expected + timedelta(seconds=started_after)
    fields = {"flow_id": uuid4(), "expected_start_time": expected, "start_time": start,
              "state_type": StateType(state), "state_name": name}  # fmt: skip
    return FlowRun.model_validate(fields)  # Prefect types its times with its own subclass


@pytest.mark.parametrize(
    ("state", "name", "expected_ago", "started_after", "late"),
    [
        ("COMPLETED", "Completed", 600, 61, True),  # started over a minute late
        ("COMPLETED", "Completed", 600, 60, False),  # a minute is on time
        ("FAILED", "Failed", 600, 0, False),
        ("SCHEDULED", "Late", 10, None, True),  # Prefect's own verdict counts
        ("SCHEDULED", "Scheduled", 120, None, True),  # overdue, not yet marked Late
        ("PENDING", "Pending", 120, None, True),
        ("SCHEDULED", "Scheduled", 30, None, False),
        ("CANCELLED", "Cancelled", 600, None, False),  # cancelled before it was due to run
    ],
)
def test_late_means_started_or_still_waiting_over_a_minute_past_the_expected_start(
    state, name, expected_ago, started_after, late
):
    run = flow_run(state, name, expected_ago, started_after)
    assert usage.is_late(run, state, NOW) is late
