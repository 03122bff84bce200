"""Daily consumption and consumption trends, on the shipped sample, after ingestion."""

import csv
import json

import pytest
from airnub_platform.testing import run_whole_department
from dept_project_beta.analysis.consumption_trends import (
    chart_consumption_trends_flow_dept_project_beta as trends,
)
from dept_project_beta.processing.daily_consumption import (
    aggregate_daily_consumption_flow_dept_project_beta as daily,
)
from prefect.client.orchestration import get_client

pytestmark = pytest.mark.usefixtures("prefect_api")
DEPT = "dept_project_beta"
DAILY = daily.aggregate_daily_consumption
TRENDS = trends.chart_consumption_trends


@pytest.fixture(scope="module")
def department_run(prefect_api, tmp_path_factory):
    root = tmp_path_factory.mktemp("beta")
    outcomes = run_whole_department(DEPT, root)
    assert all(o.completed for o in outcomes), [o.message for o in outcomes]
    return root, {o.stage: o.results for o in outcomes}


def test_daily_totals_mark_incomplete_days_and_reject_bad_readings(department_run):
    root, results = department_run
    summary = results["processing"]["daily_consumption"]
    assert (summary["days"], summary["incomplete_days"], summary["rejected"]) == (42, 3, 2)
    folder = root / DEPT / "processing/daily_consumption"
    reasons = [r["reasons"] for r in json.loads((folder / "rejected.json").read_text())]
    assert any(r.startswith("kwh: Input should be greater than or equal to 0") for r in reasons)
    with (folder / "daily.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0] == {
        "building": "B01", "name": "Town Hall", "date": "2026-11-01", "kwh": "542.21",
        "readings": "24", "complete": "True", "mean_temp_c": "9.1", "kwh_per_m2": "0.1291",
    }  # fmt: skip


def test_the_report_embeds_a_png_chart_and_the_artifacts_link_to_it(department_run):
    root, results = department_run
    folder = root / DEPT / "analysis/consumption_trends"
    assert results["analysis"]["consumption_trends"]["buildings"] == 3
    assert (folder / "consumption.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    report = (folder / "report.md").read_text()
    assert "![Daily kWh per building, with the mean temperature](consumption.png)" in report
    assert "| B03 | Leisure Centre | 14 | 1 |" in report
    with get_client(sync_client=True) as client:
        artifacts = {a.key: a for a in client.read_artifacts()}
    chart_uri = (folder / "consumption.png").as_uri()
    assert (
        artifacts["dept-project-beta-analysis-consumption-trends-chart"].data
        == f"[{chart_uri}]({chart_uri})"
    )
    assert chart_uri in artifacts["dept-project-beta-analysis-consumption-trends-report"].data


def test_processing_without_ingested_meters_fails_naming_what_to_run_first():
    state = DAILY(return_state=True)
    assert state.is_failed()
    assert "needs ingestion/meter_readings manifest.json: run that category first" in state.message


def test_trends_without_processed_days_fail_naming_what_to_run_first():
    state = TRENDS(return_state=True)
    assert state.is_failed()
    assert "needs processing/daily_consumption daily.csv: run that category first" in state.message


def test_dask_gives_the_same_daily_totals_as_threads(department_run, monkeypatch):
    root, results = department_run
    monkeypatch.setenv("AIRNUB_DATA_ROOT", str(root))
    daily = root / DEPT / "processing/daily_consumption/daily.csv"
    on_threads = daily.read_text()
    result = DAILY(overrides={"task_runner": "dask", "max_workers": 2})
    assert result["days"] == results["processing"]["daily_consumption"]["days"]
    assert daily.read_text() == on_threads
