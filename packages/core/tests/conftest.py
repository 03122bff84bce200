"""A throwaway department, ``dept_demo``, built in a temp folder for core's own tests."""

from collections.abc import Iterator

import pytest
from airnub_platform.testing import importable_departments, start_session_api, write_department

start_session_api()


@pytest.fixture(scope="session")
def demo_department(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``dept_demo`` ("Demo Team") with three ingestion categories and one per later stage."""
    root = tmp_path_factory.mktemp("departments")
    write_department(
        root,
        "dept_demo",
        {"ingestion": ["alpha", "beta", "gamma"], "processing": ["tidy"], "analysis": ["sums"]},
    )
    with importable_departments(root, {"dept_demo": "Demo Team"}):
        yield "dept_demo"
