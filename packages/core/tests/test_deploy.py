"""`airnub deploy` against the session's Prefect server."""

import pytest
from airnub_core import deploy
from airnub_core.cli import app
from prefect.client.orchestration import get_client
from prefect.deployments.runner import EntrypointType
from prefect.exceptions import ObjectNotFound
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("prefect_api")
ALPHA = "dept_project_alpha"


def run(department, env="local", **options):
    with get_client(sync_client=True) as client:
        return deploy.deploy(client, department, env, **options)


def alpha_deployments():
    with get_client(sync_client=True) as client:
        return deploy.existing_deployments(client, ALPHA)


def test_a_department_deploys_its_prefect_yaml_idempotently():
    first = dict((what, action) for action, what in run(ALPHA))
    ingestion = "Ingestion Flow (Project Alpha)/dept-project-alpha-ingestion"
    assert first[ingestion] in ("create", "update")
    deployed = alpha_deployments()
    assert set(deployed) >= {
        ingestion,
        "Processing Flow (Project Alpha)/dept-project-alpha-processing",
        "Analysis Flow (Project Alpha)/dept-project-alpha-analysis",
        "Ingest Public API Data (Project Alpha)/dept-project-alpha-ingestion-public-api-data",
    }
    stage = deployed[ingestion]
    assert sorted(stage.tags) == sorted([ALPHA, "ingestion", deploy.MANAGED_TAG])
    assert stage.entrypoint == "dept_project_alpha.ingestion_flow_dept_project_alpha.ingestion_flow"
    assert stage.work_pool_name == "dept-project-alpha"
    assert stage.job_variables["env"]["AIRNUB_ENV"] == "local"
    assert [s.active for s in stage.schedules] == [False]
    again = run(ALPHA)
    assert {action for action, _ in again} == {"update"}
    assert alpha_deployments().keys() == deployed.keys()


def test_the_environment_reaches_the_runs():
    run(ALPHA, env="staging")
    deployed = alpha_deployments()["Analysis Flow (Project Alpha)/dept-project-alpha-analysis"]
    assert deployed.job_variables["env"]["AIRNUB_ENV"] == "staging"
    run(ALPHA)


def test_prune_deletes_only_this_departments_managed_leftovers():
    from dept_project_alpha.analysis_flow_dept_project_alpha import analysis_flow

    run(ALPHA)
    for name, tags in [("old-one", [ALPHA, deploy.MANAGED_TAG]), ("hand-made", [ALPHA])]:
        analysis_flow.to_deployment(
            name=name, tags=tags, work_pool_name="dept-project-alpha",
            entrypoint_type=EntrypointType.MODULE_PATH,
        ).apply()  # fmt: skip
    results = run(ALPHA)
    assert ("stale", "Analysis Flow (Project Alpha)/old-one") in results
    results = run(ALPHA, prune=True)
    assert ("delete", "Analysis Flow (Project Alpha)/old-one") in results
    with get_client(sync_client=True) as client:
        with pytest.raises(ObjectNotFound):
            client.read_deployment_by_name("Analysis Flow (Project Alpha)/old-one")
        assert client.read_deployment_by_name("Analysis Flow (Project Alpha)/hand-made")


def test_a_dry_run_writes_nothing():
    results = run("dept_project_beta", dry_run=True)
    assert ("create pool", "dept-project-beta") in results
    with get_client(sync_client=True) as client:
        with pytest.raises(ObjectNotFound):
            client.read_work_pool("dept-project-beta")
        assert deploy.existing_deployments(client, "dept_project_beta") == {}


def test_an_unreachable_api_is_named(monkeypatch):
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    url = "http://127.0.0.1:9/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    with temporary_settings(updates={PREFECT_API_URL: url, PREFECT_CLIENT_MAX_RETRIES: 0}):
        result = CliRunner().invoke(app, ["deploy", ALPHA])
    assert result.exit_code == 1
    assert f"cannot reach the Prefect API at {url}" in " ".join(result.output.split())
