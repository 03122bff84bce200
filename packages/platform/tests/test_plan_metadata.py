"""The installed entry points `airnub plan` reads once per deployment's owner tags are
cached, yet a changed ``entry_points.txt`` is read again: rewritten in place, added, or
removed. Real files on a real ``sys.path``."""

import shutil
import sys

import pytest
from airnub_core import owners
from airnub_platform.testing import write_department_project

DEPARTMENT = "dept_plan_metadata"


def declaring(team):
    return {"airnub.owners": f"@acme/{team}", "airnub.alerts": "#alerts"}


@pytest.fixture
def installed(tmp_path):
    folder = write_department_project(
        tmp_path, DEPARTMENT, "Metadata", {}, owners=declaring("first")
    )
    src = folder / "src"
    sys.path.insert(0, str(src))
    try:
        yield next(src.glob("*.dist-info")) / "entry_points.txt"
    finally:
        sys.path.remove(str(src))


def owners_of(department):
    found = owners.declared(department)
    return list(found.owners) if found else None


def test_a_rewritten_entry_points_file_is_read_again(installed):
    assert owners_of(DEPARTMENT) == owners_of(DEPARTMENT) == ["@acme/first"]
    # the same length, so only the file's time tells the two apart
    installed.write_text(installed.read_text().replace("@acme/first", "@acme/other"))
    assert owners_of(DEPARTMENT) == ["@acme/other"]


def test_a_removed_package_is_gone_and_an_added_one_is_found(installed, tmp_path):
    shutil.rmtree(installed.parent)
    assert owners_of(DEPARTMENT) is None
    again = tmp_path / "again"
    write_department_project(again, DEPARTMENT, "Metadata", {}, owners=declaring("back"))
    src = again / "packages" / DEPARTMENT / "src"
    sys.path.insert(0, str(src))
    try:
        assert owners_of(DEPARTMENT) == ["@acme/back"]
    finally:
        sys.path.remove(str(src))
