"""Every stage of the department runs, and its names come from the conventions."""

import pytest
from airnub_core.conventions import STAGES, departments
from airnub_platform import runner

DEPARTMENT = "dept_project_beta"


def test_the_department_is_installed():
    assert DEPARTMENT in departments()


@pytest.mark.parametrize("stage", STAGES)
def test_stage_flow_names_follow_the_conventions(stage):
    flow = runner.stage_flow_for(DEPARTMENT, stage)
    assert flow.name == f"{stage.capitalize()} Flow ({departments()[DEPARTMENT]})"


@pytest.mark.usefixtures("prefect_api")
def test_every_stage_completes():
    outcomes = runner.run_department(DEPARTMENT, runner.plan(DEPARTMENT, None, None), local=None)
    assert {o.stage: o.message for o in outcomes if not o.completed} == {}
    assert [o.stage for o in outcomes] == list(STAGES)
