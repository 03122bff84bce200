"""`airnub deploy` against the session's Prefect server, on throwaway departments."""

import itertools
from importlib import import_module

import pytest
from airnub_core.conventions import MANAGED_TAG
from airnub_platform import deploy
from airnub_platform.cli import app
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import ObjectNotFound
from prefect.types.entrypoint import EntrypointType
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("prefect_api")
CATEGORIES = {"ingestion": ["feed"], "analysis": ["sums"]}


def prefect_yaml(department: str) -> str:
    """Stage orchestrators, a scheduled ingestion and one category with parameters."""
    pool = department.replace("_", "-")
    common = f"work_pool: {{name: {pool}, job_variables: {{env: {{AIRNUB_ENV: local}}}}}}"
    return f"""
name: {pool}
pull: []
deployments:
  - name: {pool}-ingestion
    entrypoint: {department}.ingestion_flow_{department}:ingestion_flow
    description: The ingestion stage.
    tags: [{department}, ingestion, {MANAGED_TAG}]
    {common}
    schedules:
      - cron: "0 6 * * *"
        timezone: UTC
        active: false
  - name: {pool}-processing
    entrypoint: {department}.processing_flow_{department}:processing_flow
    tags: [{department}, processing, {MANAGED_TAG}]
    {common}
  - name: {pool}-analysis
    entrypoint: {department}.analysis_flow_{department}:analysis_flow
    tags: [{department}, analysis, {MANAGED_TAG}]
    {common}
  - name: {pool}-ingestion-feed
    entrypoint: {department}.ingestion.feed.make_feed_flow_{department}:make_feed
    tags: [{department}, ingestion, feed, {MANAGED_TAG}]
    parameters: {{overrides: {{message: from the deployment}}}}
    {common}
"""


_made = itertools.count(1)


@pytest.fixture
def department(make_department):
    """A fresh department per test, dept_deploy_<n> ("Deploy <n>"), not yet deployed."""
    name = f"dept_deploy_{next(_made)}"
    make_department(name, CATEGORIES, prefect_yaml=prefect_yaml(name))
    return name


def pool(department):
    return department.replace("_", "-")


def analysis_flow(department):
    return import_module(f"{department}.analysis_flow_{department}").analysis_flow


def run(department, env="local", **options):
    with get_client(sync_client=True) as client:
        return deploy.deploy(client, department, env, **options)


def deployed(department):
    with get_client(sync_client=True) as client:
        return deploy.existing_deployments(client, department)


def actions(results):
    return {what: action for action, what in results}


def test_a_department_deploys_its_prefect_yaml_idempotently(department):
    number = department.rsplit("_", 1)[1]
    ingestion = f"Ingestion Flow (Deploy {number})/{pool(department)}-ingestion"
    first = run(department)
    assert ("create pool", pool(department)) in first
    assert set(actions(first).values()) == {"create pool", "create"}
    found = deployed(department)
    assert len(found) == 4
    stage = found[ingestion]
    assert stage.tags == [department, "ingestion", MANAGED_TAG]
    assert stage.entrypoint == f"{department}.ingestion_flow_{department}:ingestion_flow"
    assert stage.work_pool_name == pool(department)
    assert stage.job_variables == {"env": {"AIRNUB_ENV": "local"}}
    [schedule] = stage.schedules
    assert isinstance(schedule.schedule, CronSchedule)
    assert (schedule.schedule.cron, schedule.active) == ("0 6 * * *", False)
    assert (stage.pull_steps, stage.path, stage.description) == ([], None, "The ingestion stage.")
    feed = next(d for key, d in found.items() if key.endswith("-ingestion-feed"))
    assert feed.parameters == {"overrides": {"message": "from the deployment"}}
    assert set(actions(run(department)).values()) == {"unchanged"}
    assert {d.id for d in deployed(department).values()} == {d.id for d in found.values()}


def test_unchanged_means_every_compared_field_matches(department):
    run(department)
    key, target = next(iter(deployed(department).items()))
    with get_client(sync_client=True) as client:
        client.update_deployment(target.id, DeploymentUpdate(job_variables={"env": {}}))
    assert actions(run(department, dry_run=True))[key] == "update"
    assert actions(run(department))[key] == "update"
    assert set(actions(run(department)).values()) == {"unchanged"}


def test_the_environment_reaches_the_runs(department):
    run(department)
    assert set(actions(run(department, env="staging")).values()) == {"update"}
    assert {d.job_variables["env"]["AIRNUB_ENV"] for d in deployed(department).values()} == {
        "staging"
    }


def test_a_deployment_made_without_the_managed_tag_is_adopted(department):
    flow, name = analysis_flow(department), f"{pool(department)}-analysis"
    flow.to_deployment(name=name, tags=[department, "analysis"]).apply()  # by hand, unmanaged
    with get_client(sync_client=True) as client:
        assert client.read_deployment_by_name(f"{flow.name}/{name}").path == "."
    assert actions(run(department))[f"{flow.name}/{name}"] == "update"
    adopted = deployed(department)[f"{flow.name}/{name}"]
    assert (MANAGED_TAG in adopted.tags, adopted.path) == (True, None)
    assert set(actions(run(department)).values()) == {"unchanged"}


def test_prune_deletes_only_this_departments_managed_leftovers(department):
    flow = analysis_flow(department)
    run(department)
    for name, tags in [("old-one", [department, MANAGED_TAG]), ("hand-made", [department])]:
        flow.to_deployment(
            name=name,
            tags=tags,
            work_pool_name=pool(department),
            entrypoint_type=EntrypointType.MODULE_PATH,
        ).apply()
    assert ("stale", f"{flow.name}/old-one") in run(department)
    assert ("delete", f"{flow.name}/old-one") in run(department, prune=True)
    with get_client(sync_client=True) as client:
        with pytest.raises(ObjectNotFound):
            client.read_deployment_by_name(f"{flow.name}/old-one")
        assert client.read_deployment_by_name(f"{flow.name}/hand-made")


def test_a_dry_run_writes_nothing(department):
    results = run(department, dry_run=True)
    assert ("create pool", pool(department)) in results
    assert set(actions(results).values()) == {"create pool", "create"}
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_work_pool(pool(department))
    assert deployed(department) == {}


def test_an_unreachable_api_is_named(department, monkeypatch):
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    url = "http://127.0.0.1:9/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    with temporary_settings(updates={PREFECT_API_URL: url, PREFECT_CLIENT_MAX_RETRIES: 0}):
        result = CliRunner().invoke(app, ["deploy", department])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert f"the Prefect API at {url} did not answer (connection refused)" in output


def test_names_in_the_output_are_verbatim_not_markup(department):
    flow, odd = analysis_flow(department), "x $(id) [x] [bold]y"
    flow.to_deployment(
        name=odd, tags=[department, MANAGED_TAG], entrypoint_type=EntrypointType.MODULE_PATH
    ).apply()
    result = CliRunner().invoke(app, ["deploy", department, "--dry-run"], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert f"{flow.name}/{odd}" in result.output


def test_deploy_applies_the_lost_run_automation_for_the_heartbeat_setting(department, monkeypatch):
    """A run whose host is lost is marked Crashed once its heartbeats (at the rate set here,
    which workers share) stop for two and a half periods (see lost_runs)."""
    from airnub_platform import lost_runs

    monkeypatch.setenv(lost_runs.HEARTBEAT_ENV, "40")
    result = CliRunner().invoke(app, ["deploy", department], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert f"{lost_runs.AUTOMATION_NAME} (silent 100 s)" in result.output
    with get_client(sync_client=True) as client:
        made = client.read_automations_by_name(lost_runs.AUTOMATION_NAME)
    assert [a.trigger.within.total_seconds() for a in made] == [100]  # type: ignore[union-attr]


def test_a_heartbeat_setting_prefect_would_refuse_stops_deploy_before_any_write(
    department, monkeypatch
):
    from airnub_platform import lost_runs

    monkeypatch.setenv(lost_runs.HEARTBEAT_ENV, "10")
    result = CliRunner().invoke(app, ["deploy", department])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {lost_runs.HEARTBEAT_ENV}: 10 is below Prefect's minimum of 30"
    )
    assert deployed(department) == {}
