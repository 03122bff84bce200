"""Weather observations from the shipped pages and over HTTP on loopback."""

import json
import time
from importlib.resources import files

import pytest
from airnub_core import tasks
from airnub_core.sources import fetch_json_pages
from dept_project_beta.ingestion.weather_observations import (
    ingest_weather_observations_flow_dept_project_beta as flow_module,
)

pytestmark = pytest.mark.usefixtures("prefect_api")
WEATHER = flow_module.ingest_weather_observations
PAGES = files("dept_project_beta") / "sample_data" / "weather_observations"


def page(number):
    return json.loads((PAGES / f"weather_page_{number}.json").read_text())


def test_the_shipped_pages_give_fourteen_days(airnub_data_root):
    result = WEATHER()
    assert (result["pages"], result["records"]) == (2, 14)
    saved = airnub_data_root / "dept_project_beta/ingestion/weather_observations/observations.json"
    assert json.loads(saved.read_text())[0]["date"] == "2026-11-01"


def test_http_pages_survive_a_503(httpserver):
    httpserver.expect_ordered_request("/weather_page_1.json").respond_with_data("", status=503)
    httpserver.expect_ordered_request("/weather_page_1.json").respond_with_json(page(1))
    httpserver.expect_ordered_request("/weather_page_2.json").respond_with_json(page(2))
    url = httpserver.url_for("/weather_page_1.json")
    result = WEATHER(overrides={"url": url, "backoff_seconds": 0.01})
    assert result["records"] == 14
    assert len(httpserver.log) == 3


def test_a_timeout_is_retried_by_prefect_then_fails_naming_the_url(httpserver, monkeypatch):
    attempts = []

    def counted(*args, **kwargs):
        attempts.append(args[0])
        return fetch_json_pages(*args, **kwargs)

    monkeypatch.setattr(tasks.fetch_json_pages_task, "retry_delay_seconds", [0, 0])
    monkeypatch.setattr(tasks, "fetch_json_pages", counted)
    httpserver.expect_request("/slow").respond_with_handler(lambda request: time.sleep(0.3))
    overrides = {"url": httpserver.url_for("/slow"), "timeout_seconds": 0.1, "retries": 0}
    state = WEATHER(overrides=overrides, return_state=True)
    assert state.is_failed()
    assert "/slow: timed out" in state.message
    assert len(attempts) == 3  # the first try and Prefect's two retries


def test_a_page_without_observations_fails(httpserver):
    httpserver.expect_request("/api").respond_with_json({"results": []})
    state = WEATHER(overrides={"url": httpserver.url_for("/api")}, return_state=True)
    assert state.is_failed()
    assert "page 1: expected a list under 'observations'" in state.message
