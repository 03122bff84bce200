"""Stage orchestration and task retries against the session's Prefect API."""

import importlib

import pytest
from airnub_core.conventions import ConventionError
from airnub_core.flows import StageFailed, discover_categories
from airnub_core.tasks import fetch_json_pages_task
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

pytestmark = pytest.mark.usefixtures("prefect_api")


def stage(department, name):
    module = importlib.import_module(f"{department}.{name}_flow_{department}")
    return getattr(module, f"{name}_flow")


def children(parent_id):
    with get_client(sync_client=True) as client:
        subflows = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])
            )
        )
    return subflows


def test_categories_are_discovered_from_the_tree(demo_department):
    found = discover_categories(demo_department, "ingestion")
    assert list(found) == ["alpha", "beta", "gamma"]
    assert found["beta"].name == "Make Beta (Demo Team)"


def test_stage_runs_every_category_as_tagged_concurrent_subflows(demo_department, airnub_data_root):
    ingestion = stage(demo_department, "ingestion")
    state = ingestion(overrides={c: {"sleep_seconds": 0.5} for c in ["alpha", "beta", "gamma"]},
                      return_state=True)  # fmt: skip
    assert state.is_completed(), state.message
    assert set(state.result()) == {"alpha", "beta", "gamma"}
    out = airnub_data_root / demo_department / "ingestion" / "beta" / "out.txt"
    assert out.read_text() == "hello from beta"

    runs = children(state.state_details.flow_run_id)
    assert {r.name for r in runs} and len(runs) == 3
    for run in runs:
        category = next(c for c in ("alpha", "beta", "gamma") if c in run.tags)
        assert sorted(run.tags) == sorted([demo_department, "ingestion", category])
    # concurrent: every category started before any of them ended
    starts = [r.start_time for r in runs if r.start_time is not None]
    ends = [r.end_time for r in runs if r.end_time is not None]
    assert len(starts) == len(ends) == 3 and max(starts) < min(ends)


def test_a_failing_category_fails_the_stage_and_the_others_complete(
    demo_department, airnub_data_root
):
    ingestion = stage(demo_department, "ingestion")
    state = ingestion(overrides={"beta": {"fail_with": "source vanished"}}, return_state=True)
    assert state.is_failed()
    assert "1 of 3 categories failed (beta)" in state.message
    assert "source vanished" in state.message
    error = state.result(raise_on_failure=False)
    assert isinstance(error, StageFailed)
    assert set(error.results) == {"alpha", "gamma"}
    for category in ("alpha", "gamma"):
        assert (airnub_data_root / demo_department / "ingestion" / category / "out.txt").exists()
    assert not (airnub_data_root / demo_department / "ingestion" / "beta" / "out.txt").exists()


def test_invalid_settings_fail_the_category_with_file_and_key(demo_department):
    processing = stage(demo_department, "processing")
    state = processing(overrides={"tidy": {"sleep_seconds": "soon"}}, return_state=True)
    assert state.is_failed()
    assert "processing/tidy.yaml + flow parameters: sleep_seconds:" in state.message


def test_unknown_category_lists_the_valid_ones(demo_department):
    with pytest.raises(ConventionError, match="valid: alpha, beta, gamma"):
        stage(demo_department, "ingestion")(categories=["delta"])


@flow
def fetch(url: str) -> list:
    return fetch_json_pages_task.with_options(retry_delay_seconds=0)(url, retries=0)


def test_transient_errors_are_retried_by_prefect(httpserver):
    httpserver.expect_ordered_request("/api").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/api").respond_with_json({"items": [1]})
    assert fetch(httpserver.url_for("/api")) == [{"items": [1]}]
    assert len(httpserver.log) == 2


def test_permanent_errors_fail_without_retry(httpserver):
    httpserver.expect_request("/api").respond_with_data("gone", status=404)
    state = fetch(httpserver.url_for("/api"), return_state=True)
    assert state.is_failed() and "HTTP 404" in (state.message or "")
    assert len(httpserver.log) == 1
