"""Every category, every stage and the whole department against the session's API."""

import csv
import json
from importlib.resources import files

import pytest
from airnub_platform.testing import run_whole_department
from dept_project_alpha.analysis_flow_dept_project_alpha import analysis_flow
from dept_project_alpha.ingestion.public_api_data.ingest_public_api_data_flow_dept_project_alpha import (  # noqa: E501
    ingest_public_api_data,
)
from dept_project_alpha.ingestion.scheduled_file_downloads.download_scheduled_files_flow_dept_project_alpha import (  # noqa: E501
    download_scheduled_files,
)
from dept_project_alpha.ingestion.web_page_link_scraping.scrape_web_page_links_flow_dept_project_alpha import (  # noqa: E501
    scrape_web_page_links,
)
from dept_project_alpha.ingestion_flow_dept_project_alpha import ingestion_flow
from dept_project_alpha.processing_flow_dept_project_alpha import processing_flow
from prefect.client.orchestration import get_client

pytestmark = pytest.mark.usefixtures("prefect_api")
DEPT = "dept_project_alpha"
SAMPLE = files(DEPT) / "sample_data"


def manifest_statuses(root):
    manifest = root / DEPT / "ingestion" / "scheduled_file_downloads" / "files" / "manifest.json"
    return {f["file"]: f["status"] for f in json.loads(manifest.read_text())["files"]}


def test_public_api_data_reads_the_shipped_pages(airnub_data_root):
    result = ingest_public_api_data()
    assert (result["pages"], result["records"]) == (3, 28)
    records = json.loads(
        (airnub_data_root / DEPT / "ingestion/public_api_data/records.json").read_text()
    )
    assert len(records) == 28


def test_public_api_data_over_http_survives_a_500(httpserver):
    pages = {
        n: json.loads((SAMPLE / f"public_api/readings_page_{n}.json").read_text())
        for n in (1, 2, 3)
    }
    httpserver.expect_ordered_request("/readings_page_1.json").respond_with_json(pages[1])
    httpserver.expect_ordered_request("/readings_page_2.json").respond_with_data("", status=500)
    httpserver.expect_ordered_request("/readings_page_2.json").respond_with_json(pages[2])
    httpserver.expect_ordered_request("/readings_page_3.json").respond_with_json(pages[3])
    url = httpserver.url_for("/readings_page_1.json")
    result = ingest_public_api_data(overrides={"url": url, "backoff_seconds": 0.01})
    assert result["records"] == 28
    assert len(httpserver.log) == 4


def test_public_api_data_fails_on_malformed_json(httpserver):
    httpserver.expect_request("/api").respond_with_data("<html>maintenance</html>")
    state = ingest_public_api_data(overrides={"url": httpserver.url_for("/api")}, return_state=True)
    assert state.is_failed()
    assert "malformed JSON" in state.message


def test_scheduled_downloads_skip_unchanged_files_on_rerun(airnub_data_root):
    first = download_scheduled_files()
    assert first["downloaded"] == 3
    assert set(manifest_statuses(airnub_data_root).values()) == {"downloaded"}
    second = download_scheduled_files()
    assert second["unchanged"] == 3 and "downloaded" not in second
    assert set(manifest_statuses(airnub_data_root).values()) == {"unchanged"}


def test_link_scraping_writes_a_link_table(airnub_data_root):
    result = scrape_web_page_links()
    assert result["pages"] == 2
    with (airnub_data_root / DEPT / "ingestion/web_page_link_scraping/links.csv").open() as f:
        links = list(csv.DictReader(f))
    assert len(links) == result["links"]
    texts = {row["text"] for row in links}
    assert {"Harbour Road & Quay", "October 2026", "WHO air quality guidelines"} <= texts
    assert not any(row["url"].startswith("mailto:") for row in links)


def test_ingestion_stage_contains_a_failing_category(airnub_data_root):
    missing = "sample_data/files/no_such_file.csv"
    state = ingestion_flow(
        overrides={"scheduled_file_downloads": {"files": [missing]}}, return_state=True
    )
    assert state.is_failed()
    assert "categories failed (scheduled_file_downloads)" in state.message
    assert "no_such_file.csv: file not found" in state.message
    ingested = airnub_data_root / DEPT / "ingestion"
    assert (ingested / "public_api_data/records.json").exists()
    assert (ingested / "web_page_link_scraping/links.csv").exists()
    metrics = json.loads((ingested / "ingest_metrics.json").read_text())
    assert [m["category"] for m in metrics] == ["public_api_data", "web_page_link_scraping"]


def test_processing_without_ingested_data_fails_naming_the_file():
    state = processing_flow(return_state=True)
    assert state.is_failed()
    assert "station_readings" in state.message and "records.json" in state.message


@pytest.fixture(scope="module")
def department_run(prefect_api, tmp_path_factory):
    """Run the whole department once; the tests below read what it wrote."""
    root = tmp_path_factory.mktemp("department")
    return root, run_whole_department(DEPT, root)


def test_whole_department_runs_every_stage(department_run):
    root, outcomes = department_run
    assert [(o.stage, o.completed) for o in outcomes] == [
        ("ingestion", True), ("processing", True), ("analysis", True),
    ]  # fmt: skip
    processed = root / DEPT / "processing/station_readings"
    assert len(json.loads((processed / "rejected.json").read_text())) == 3
    with (processed / "readings.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 25 and rows[0]["station_name"] == "Harbour Road"
    report = (root / DEPT / "analysis/air_quality_summary/report.md").read_text()
    assert "| ST-003 | Ring Road Junction |" in report
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert "dept-project-alpha-analysis-air-quality-summary-report" in keys
    assert "dept-project-alpha-ingestion-ingest-metrics" in keys


def test_analysis_stage_alone_uses_processed_data(department_run, monkeypatch):
    root, _ = department_run
    monkeypatch.setenv("AIRNUB_DATA_ROOT", str(root))
    result = analysis_flow()
    assert result["air_quality_summary"]["stations"] == 4
