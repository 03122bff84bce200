"""`airnub drift` against a real Prefect server of this module's own: hand edits made
through the API are found, nothing is written, and the exit code says which it was."""

import itertools
import json

import pytest
from airnub_core import conventions
from airnub_core.conventions import MANAGED_TAG
from airnub_platform import automation_sync, block_sync, deploy, variable_sync
from airnub_platform.cli import app
from airnub_platform.testing import server_objects
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate, VariableCreate, VariableUpdate
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("own_prefect_api")
CATEGORIES = {"ingestion": ["feed"], "processing": ["tidy"]}
_made = itertools.count(1)


@pytest.fixture
def department(make_department):
    """A department applied to the server, the only one the repository holds meanwhile
    (the server is this module's, so earlier tests' departments read as gone)."""
    name = f"dept_drift_{next(_made)}"
    make_department(name, CATEGORIES)
    with pytest.MonkeyPatch.context() as patch:
        # its alerts go to a webhook that is never called: no run fails here
        patch.setenv(conventions.alert_webhook_env(name), "https://alerts.example.com/hook")
        patch.setattr(conventions, "departments", lambda: {name: "Drift"})
        with get_client(sync_client=True) as client:
            for gone in deploy.managed_departments(client):  # a clean server for each test
                deploy.retire(client, gone)
                automation_sync.retire(client, gone)
            deploy.deploy(client, name, "local")
            variable_sync.sync(client, variable_sync.desired_values([name], "local"), [name])
            block_sync.sync(block_sync.wanted_blocks([name], None)[0])
            automation_sync.sync(client, [name])
        yield name


def drift(*args):
    """(exit code, the JSON report) of `airnub drift`, checking it wrote nothing."""
    with get_client(sync_client=True) as client:
        before = server_objects(client)
    done = CliRunner().invoke(app, ["drift", "--format", "json", *args])
    with get_client(sync_client=True) as client:
        assert server_objects(client) == before
    assert done.exit_code in (0, 1), done.output
    return done.exit_code, json.loads(done.stdout)


def changes(found):
    return {(c["section"], c["action"], c["name"], c["detail"]) for c in found["changes"]
            if c["action"] not in ("unchanged", "present")}  # fmt: skip


def test_a_server_as_the_repository_says_is_no_drift(department):
    code, found = drift()
    assert (code, changes(found), found["pending"]) == (0, set(), False)
    assert found["command"] == "drift" and found["affected"] is None


def test_a_deployment_changed_in_the_ui_is_drift(department):
    with get_client(sync_client=True) as client:
        key, existing = sorted(deploy.existing_deployments(client, department).items())[0]
        client.update_deployment(existing.id, DeploymentUpdate(parameters={"by": "hand"}))
    code, found = drift()
    assert (code, changes(found)) == (1, {("deployments", "update", key, "")})


def test_a_variable_edited_by_hand_is_drift(department):
    (name, *_) = sorted(variable_sync.desired_values([department], "local"))
    with get_client(sync_client=True) as client:
        client.update_variable(VariableUpdate(name=name, value={"message": "by hand"}))
    code, found = drift()
    assert (code, changes(found)) == (1, {("variables", "update", name, "value differ")})


def test_managed_objects_deleted_by_hand_are_drift(department):
    (name, *_) = sorted(variable_sync.desired_values([department], "local"))
    with get_client(sync_client=True) as client:
        key, existing = sorted(deploy.existing_deployments(client, department).items())[0]
        client.delete_deployment(existing.id)
        client.delete_variable_by_name(name)
    code, found = drift()
    expected = {("deployments", "create", key, ""), ("variables", "create", name, "")}
    assert (code, changes(found)) == (1, expected)


def test_a_hand_made_variable_under_a_managed_name_is_drift_and_left_alone(department):
    (name, *_) = sorted(variable_sync.desired_values([department], "local"))
    with get_client(sync_client=True) as client:
        client.delete_variable_by_name(name)
        client.create_variable(VariableCreate(name=name, value="mine"))
    code, found = drift()
    detail = "a Variable made by hand holds this name"
    assert (code, changes(found)) == (1, {("variables", "blocked", name, detail)})


def test_managed_objects_of_a_department_gone_from_the_repository_are_drift(department):
    gone = "dept_drift_gone"
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("Ingestion Flow (Gone)")
        client.create_deployment(flow_id, "dept-drift-gone-ingestion", tags=[gone, MANAGED_TAG])
        client.create_variable(
            VariableCreate(name=f"{gone}-ingestion-feed", value={}, tags=[MANAGED_TAG, gone])
        )
    code, found = drift()
    assert code == 1
    assert changes(found) == {
        ("retired", "delete", "Ingestion Flow (Gone)/dept-drift-gone-ingestion", ""),
        ("retired", "delete variable", f"{gone}-ingestion-feed", ""),
    }


def test_the_table_and_markdown_say_drift_and_exit_1(department):
    with get_client(sync_client=True) as client:
        key, existing = sorted(deploy.existing_deployments(client, department).items())[0]
        client.update_deployment(existing.id, DeploymentUpdate(description="by hand"))
    for output, says in (("table", "deployments: 2 unchanged, 1 update"), ("markdown", key)):
        done = CliRunner().invoke(app, ["drift", "--format", output], terminal_width=400)
        assert done.exit_code == 1, done.output
        assert says in done.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--format", "yaml"], "--format: unknown format 'yaml'"),
        (["--pool-type", "docker"], "--registry: required with --pool-type docker"),
        (["--env", "$(id)"], "--env"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(department, args, named):
    done = CliRunner().invoke(app, ["drift", *args], terminal_width=400)
    assert done.exit_code == 2, done.output
    assert done.output.count("\n") == 1 and named in done.output, done.output


def test_a_broken_config_is_one_error_and_exit_2_not_drift(department):
    config = variable_sync.config_files(department)[0].path
    config.write_text("message: [unclosed\n")
    done = CliRunner().invoke(app, ["drift"], terminal_width=400)
    assert done.exit_code == 2, done.output
    assert str(config) in done.output and "Traceback" not in done.output


def test_a_concurrency_limit_set_by_hand_is_drift(department):
    from airnub_platform import quotas
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    name = quotas.tag_limit_name(department)
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=3))
    try:
        code, found = drift()
    finally:
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name(name)
    detail = f"tag limit {name}: task-runs removed (was 3)"
    assert (code, changes(found)) == (1, {("quotas", "delete", name, detail)})


def test_an_alert_automation_switched_off_or_deleted_by_hand_is_drift(department):
    name = conventions.automation_name(department, automation_sync.FAILURES_RULE)
    with get_client(sync_client=True) as client:
        [found] = client.read_automations_by_name(name)
        edited = automation_sync.core_of(found).model_copy(update={"enabled": False})
        client.update_automation(found.id, edited)
    code, found_now = drift()
    assert (code, changes(found_now)) == (1, {("automations", "update", name, "")})
    with get_client(sync_client=True) as client:
        client.delete_automation(found.id)
    code, found_now = drift()
    assert (code, changes(found_now)) == (1, {("automations", "create", name, "")})


def test_a_department_without_its_notification_block_is_blocked_drift(department):
    block = conventions.alert_block_name(department)
    with get_client(sync_client=True) as client:
        client.delete_block_document(client.read_block_document_by_name(block, "custom-webhook").id)
    code, found = drift()
    ((action, name, detail),) = [
        (c["action"], c["name"], c["detail"]) for c in found["changes"]
        if c["section"] == "automations"
    ]  # fmt: skip
    assert (code, action, name) == (1, "blocked", department)
    assert f"no notification block named {block!r}" in detail
