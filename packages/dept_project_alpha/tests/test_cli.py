"""The airnub CLI on this department: inventory snapshot, errors, exit codes."""

import pytest
from airnub_core import config
from airnub_platform.cli import app
from typer.testing import CliRunner

LISTING = """\
dept_project_alpha (Project Alpha)
owners: @airnub/project-alpha; alerts: #project-alpha-alerts
ingestion: Ingestion Flow (Project Alpha)
public_api_data: Ingest Public API Data (Project Alpha)
scheduled_file_downloads: Download Scheduled Files (Project Alpha)
web_page_link_scraping: Scrape Web Page Links (Project Alpha)
processing: Processing Flow (Project Alpha)
station_readings: Process Station Readings (Project Alpha)
analysis: Analysis Flow (Project Alpha)
air_quality_summary: Analyze Air Quality Summary (Project Alpha)
"""


def invoke(*args):
    return CliRunner().invoke(app, list(args), terminal_width=2000)


def plain(output):
    return "".join(line.lstrip(" │├└─") + "\n" for line in output.splitlines()[1:])


def test_list_snapshot():
    result = invoke("list", "dept_project_alpha")
    assert result.exit_code == 0
    assert plain(result.output) == LISTING


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dept_nope"], "unknown department 'dept_nope'; valid: "),
        (
            ["dept_project_alpha", "loading"],
            "unknown stage 'loading'; valid: ingestion, processing",
        ),
        (["dept_project_alpha", "--category", "nope"], "valid: air_quality_summary, public_api"),
    ],
)
def test_run_refuses_unknown_names(args, message):
    result = invoke("run", *args)
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert message in output


def test_an_unknown_department_is_told_the_installed_ones():
    output = invoke("run", "dept_nope").output
    assert "dept_project_alpha" in output.split("valid: ", 1)[1]


@pytest.mark.usefixtures("prefect_api")
def test_run_exits_non_zero_and_skips_later_stages_when_a_category_fails(monkeypatch):
    def broken_downloads(identity):
        path, data = config.yaml_layer(identity)
        if identity.category == "scheduled_file_downloads":
            data = {**data, "files": ["sample_data/files/missing.csv"]}
        return path, data

    monkeypatch.setattr(config, "LAYERS", [broken_downloads])
    result = invoke("run", "dept_project_alpha")
    output = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "Ingestion Flow (Project Alpha) failed" in output
    assert "missing.csv: file not found" in output
    assert "dept_project_alpha: skipped processing, analysis" in output
    assert "failed: dept_project_alpha" in output


@pytest.mark.usefixtures("prefect_api")
def test_run_one_category_prints_its_outputs():
    result = invoke("run", "dept_project_alpha", "ingestion", "--category", "public_api_data")
    assert result.exit_code == 0, result.output
    assert "records.json" in result.output
    assert "Project Alpha: all stages completed" in result.output
