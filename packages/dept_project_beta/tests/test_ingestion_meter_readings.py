"""The ingestion/meter_readings category flow against the session's Prefect API."""

from pathlib import Path

import pytest
from dept_project_beta.ingestion.meter_readings import (
    download_meter_readings_flow_dept_project_beta as flow_module,
)

pytestmark = pytest.mark.usefixtures("prefect_api")
CATEGORY = flow_module.download_meter_readings


def test_it_fetches_its_sources_into_the_data_root(airnub_data_root):
    result = CATEGORY()
    outputs = [Path(p) for p in result["outputs"]]
    assert outputs and all(p.is_file() for p in outputs)
    assert all(airnub_data_root in p.parents for p in outputs)


def test_a_rerun_skips_unchanged_sources():
    CATEGORY()
    state = CATEGORY(return_state=True)
    assert state.is_completed()
    assert '"status": "unchanged"' in Path(state.result()["outputs"][-1]).read_text()


def test_a_missing_source_fails_the_run_naming_it(tmp_path):
    missing = tmp_path / "missing.csv"
    state = CATEGORY(overrides={"sources": [str(missing)]}, return_state=True)
    assert state.is_failed()
    assert "missing.csv: file not found" in state.message
