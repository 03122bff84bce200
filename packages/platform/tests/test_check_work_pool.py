"""``airnub check`` reads a department's work-pool.yaml as ``airnub deploy`` does."""

import pytest
from airnub_platform import work_pools
from airnub_platform.check import check_repository
from airnub_platform.testing import (
    department_pyproject,
    importable_departments,
    write_department_project,
)

DEPT = "dept_pool_checked"


def violations(tmp_path, text: str | None) -> list[str]:
    folder = write_department_project(tmp_path, DEPT, "Pool Checked", {})
    (folder / "pyproject.toml").write_text(department_pyproject(DEPT, "Pool Checked"))
    if text is not None:
        (folder / work_pools.FILE_NAME).write_text(text)
    with importable_departments(folder / "src", {DEPT: "Pool Checked"}):
        report = check_repository(tmp_path, [DEPT])
    return [v.show(tmp_path) for v in report.violations]


@pytest.mark.parametrize(
    "text",
    [None, "", "kubernetes: {namespace: team-a, service_account_name: runner}\n"],
)
def test_a_valid_file_or_none_passes(tmp_path, text):
    assert violations(tmp_path, text) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kubernetes: {namespace: Team_A}\n", "kubernetes.namespace: must be a DNS label"),
        ("kubernetes: {resources: {limits: {cpu: 1.5}}}\n", "kubernetes.resources.limits.cpu"),
        ("kubernetes: {secret: x}\n", "kubernetes.secret: not a known setting"),
        ("a: &a [1]\nb: *a\n", "line 2: an alias (*a)"),
    ],
)
def test_a_hostile_file_is_one_violation_naming_its_field(tmp_path, text, message):
    found = violations(tmp_path, text)
    assert len(found) == 1, found
    assert found[0].startswith(f"packages/{DEPT}/{work_pools.FILE_NAME}: {message}")
