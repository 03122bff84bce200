"""The department's plain logic, with no Prefect API."""

import json
from importlib.resources import files

import pytest
from airnub_core.sources import SourceError
from airnub_core.tabular import TooManyRejected, check_rows
from dept_project_alpha.analysis.air_quality_summary import (
    analyze_air_quality_summary_flow_dept_project_alpha as summary,
)
from dept_project_alpha.ingestion.public_api_data.tasks import (
    parse_api_response_task_dept_project_alpha as parse,
)
from dept_project_alpha.processing.station_readings import (
    process_station_readings_flow_dept_project_alpha as readings,
)

SAMPLE = files("dept_project_alpha") / "sample_data" / "public_api"


def sample_pages():
    return [json.loads((SAMPLE / f"readings_page_{n}.json").read_text()) for n in (1, 2, 3)]


def test_parse_api_response_flattens_pages():
    records = parse.parse_api_response.fn(sample_pages(), "results")
    assert len(records) == 28
    assert records[0]["id"] == "r0001"


def test_parse_api_response_names_the_page_and_key():
    with pytest.raises(SourceError, match="page 2: expected a list under 'results'"):
        parse.parse_api_response.fn([{"results": []}, {"items": []}], "results")


def test_the_sample_has_three_rows_the_schema_rejects():
    records = parse.parse_api_response.fn(sample_pages(), "results")
    checked = check_rows(records, readings.Reading, max_rejected_fraction=0.2)
    assert len(checked.accepted) == 25
    reasons = " | ".join(r["reasons"] for r in checked.rejected)
    assert "pm25: Input should be greater than or equal to 0" in reasons
    assert "station: Field required" in reasons
    assert "measured_at:" in reasons


def test_too_many_rejects_fail():
    with pytest.raises(TooManyRejected, match="3 of 28 rows failed Reading"):
        check_rows(parse.parse_api_response.fn(sample_pages(), "results"), readings.Reading, 0.05)


def test_summary_ranks_stations_over_the_limit_first():
    rows = [
        {"station": "ST-001", "station_name": "A", "pm25": "10", "no2": "5"},
        {"station": "ST-002", "station_name": "B", "pm25": "30", "no2": "7"},
        {"station": "ST-002", "station_name": "B", "pm25": "10", "no2": "9"},
    ]
    stats = summary.summarize_stations.fn(rows, pm25_limit=15)
    assert stats[1] == {
        "station": "ST-002", "name": "B", "readings": 2, "mean_pm25": 20.0,
        "max_pm25": 30.0, "mean_no2": 8.0, "days_over_limit": 1,
    }  # fmt: skip
    markdown = summary.to_markdown(stats, 15)
    assert markdown.index("| ST-002") < markdown.index("| ST-001")


def test_summary_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no processed readings"):
        summary.summarize_stations.fn([], 15)
