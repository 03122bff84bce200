"""`airnub plan` against a real Prefect server of this module's own, on throwaway
departments: what it lists, that it writes nothing, and what reaches a job summary."""

import html
import itertools
import json
import re

import pytest
from airnub_core import conventions
from airnub_core.conventions import MANAGED_TAG
from airnub_platform import automation_sync, block_sync, deploy, plan, variable_sync
from airnub_platform.cli import app
from airnub_platform.testing import changed_repository, server_objects
from hypothesis import given
from hypothesis import strategies as st
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.exceptions import ObjectNotFound
from pydantic import SecretStr
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("own_prefect_api")
CATEGORIES = {"ingestion": ["feed"], "analysis": ["sums"]}
SECRET_VALUE = "plan-secret-value-0123456789"  # must never be shown
# Every character a display name may hold that markdown or HTML reads as markup
HOSTILE_DISPLAY = "Ops [x](javascript:1) *b* |c| `d` @team #1 !x _y_ \\ ~z~"
_made = itertools.count(1)


@pytest.fixture
def department(make_department):
    name = f"dept_plan_{next(_made)}"
    make_department(name, CATEGORIES)
    return name


def report(*departments, images=(), retired=()):
    with get_client(sync_client=True) as client:
        scope = plan.Scope(client, "local", list(departments), retired=list(retired),
                           images=list(images))  # fmt: skip
        return plan.build(client, "plan", "http://u:p@h/api", scope, plan.PLAN_SECTIONS)


def applied(department):
    """What `airnub deploy`, `variables sync`, `blocks sync` (with the department's alert
    webhook set) and `automations sync` write for ``department``."""
    with pytest.MonkeyPatch.context() as patch, get_client(sync_client=True) as client:
        patch.setenv(conventions.alert_webhook_env(department), "https://alerts.example.com/x")
        deploy.deploy(client, department, "local")
        wanted = variable_sync.desired_values([department], "local")
        variable_sync.sync(client, wanted, [department])
        block_sync.sync(block_sync.wanted_blocks([department], None)[0])
        automation_sync.sync(client, [department])


def rows(found, section, department=None):
    return {
        (row.action, row.name)
        for row in found.rows
        if row.section == section and department in (None, row.department)
    }


def snapshot():
    with get_client(sync_client=True) as client:
        return server_objects(client)


def test_a_new_department_is_all_creates_and_writing_nothing_creates_no_pool(department):
    before = snapshot()
    found = report(department, images=[department])
    assert snapshot() == before
    pool = department.replace("_", "-")
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_work_pool(pool)
    deployments = rows(found, "deployments")
    assert ("create pool", pool) in deployments
    assert {action for action, _ in deployments} == {"create", "create pool"}
    assert len(deployments) == 1 + 3 + 0  # the pool, three stage flows
    variables = rows(found, "variables")
    assert {action for action, _ in variables} == {"create"} and len(variables) == 2
    assert ("build", pool) in rows(found, "images")
    assert rows(found, "automations") == {("blocked", department)}  # no notification block
    assert found.pending


def test_once_applied_nothing_is_pending_and_each_edit_is_named(department, make_department):
    applied(department)
    assert not report(department).pending, report(department).changes
    config = (plan.variable_sync.config_files(department))[0].path
    config.write_text("message: edited in the branch\n")
    yaml_file = deploy.prefect_yaml.location(department)
    text = yaml_file.read_text()
    kept, _analysis = text.split("  - name: " + department.replace("_", "-") + "-analysis")
    yaml_file.write_text(kept)
    before = snapshot()
    found = report(department)
    assert snapshot() == before
    changed = {(r.section, r.action, r.detail) for r in found.changes}
    assert ("variables", "update", "value differ") in changed
    analysis = f"{department.replace('_', '-')}-analysis"
    assert any(a == "delete" and n.endswith(f"/{analysis}") for a, n in rows(found, "deployments"))


def test_a_deployment_edited_on_the_server_is_an_update(department):
    applied(department)
    with get_client(sync_client=True) as client:
        (existing, *_) = deploy.existing_deployments(client, department).values()
        client.update_deployment(existing.id, DeploymentUpdate(description="made in the UI"))
    assert {a for a, _ in rows(report(department), "deployments")} == {"unchanged", "update"}


def test_secret_blocks_are_compared_when_known_and_never_shown(department, monkeypatch):
    name = f"{department.replace('_', '-')}-token"
    path = block_sync.config.package_dir(department) / "configs" / "blocks.yaml"
    path.write_text(f"secrets: [{name}]\n")
    variable = block_sync.secret_env_var(name)
    monkeypatch.delenv(variable, raising=False)
    assert ("create", name) in rows(report(department), "blocks")  # a PR job has no secrets
    Secret(value=SecretStr(SECRET_VALUE)).save(name)
    assert ("present", name) in rows(report(department), "blocks")
    monkeypatch.setenv(variable, SECRET_VALUE)
    assert ("unchanged", name) in rows(report(department), "blocks")
    monkeypatch.setenv(variable, SECRET_VALUE + "-rotated")
    found = report(department)
    assert ("update", name) in rows(found, "blocks")
    for shown in (json.dumps(found.to_json()), plan.markdown(found)):
        assert SECRET_VALUE not in shown


def test_the_api_url_is_shown_without_its_password(department):
    found = report(department)
    assert found.to_json()["api"] == "http://h/api"
    assert "u:p" not in plan.markdown(found)


def test_hostile_names_reach_the_job_summary_as_text(make_department):
    department = f"dept_plan_{next(_made)}"
    make_department(department, CATEGORIES, display_name=HOSTILE_DISPLAY)
    with get_client(sync_client=True) as client:  # a managed deployment made by anyone
        # Prefect refuses /%&<> in these names: HOSTILE_DISPLAY's markup and a newline
        flow_id = client.create_flow_from_name("img onerror=x\n# heading *b*")
        client.create_deployment(flow_id, "| x | `y` [z](javascript:1)",
                                 tags=[department, MANAGED_TAG])  # fmt: skip
    text = plan.markdown(report(department))
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) > 2 and all(line.count("|") == 5 for line in table), table
    for line in table:
        bare = re.sub(r"&#\d+;", "", line)
        assert not set(bare) & set("<>[]*`@#!\\~"), line
        assert "_y_" not in bare
    assert HOSTILE_DISPLAY in html.unescape(text)
    assert "img onerror=x\\n# heading *b*/| x | `y` [z](javascript:1)" in html.unescape(text)


@given(st.text())
def test_markdown_cells_render_as_the_text_itself_and_hold_no_markup(text):
    cell = plan.md(text)
    assert html.unescape(cell) == "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    bare = re.sub(r"&#\d+;", "", cell)
    assert all(c.isalnum() or c in " -.,/()=_" for c in bare), cell
    assert not re.search(r"(^|[^\w])_|_($|[^\w])", bare), cell  # no emphasis by underscores


# --- the command line, in a git repository of the test's own -----------------------------


@pytest.fixture
def repository(make_department, monkeypatch):
    """A git repository holding one department; HEAD changes it. Returns (id, base)."""
    department = f"dept_plan_{next(_made)}"
    root, base = changed_repository(make_department(department, CATEGORIES))
    monkeypatch.chdir(root)
    return department, base


def test_the_command_reports_the_affected_department_as_json(repository):
    department, base = repository
    before = snapshot()
    done = CliRunner().invoke(app, ["plan", "--base", base, "--format", "json"])
    assert done.exit_code == 0, done.output
    assert snapshot() == before
    found = json.loads(done.stdout)
    assert found["schema"] == plan.SCHEMA and found["command"] == "plan"
    assert found["affected"]["departments"] == [department]
    assert found["affected"]["base"] == base and found["pending"] is True
    sections = {change["section"] for change in found["changes"]}
    assert sections == {"deployments", "variables", "blocks", "automations", "images"}
    assert set(found["changes"][0]) == {"section", "department", "action", "name", "detail"}


def test_the_command_writes_markdown_and_a_table(repository):
    department, base = repository
    for output in ("markdown", "table"):
        done = CliRunner().invoke(app, ["plan", "--base", base, "--format", output],
                                  terminal_width=300)  # fmt: skip
        assert done.exit_code == 0, done.output
        assert department in html.unescape(done.stdout)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--format", "html"], "--format: unknown format 'html'"),
        (["--pool-type", "lambda"], "--pool-type: 'lambda'"),
        (["--registry", "ghcr.io/x"], "--registry: only for docker and kubernetes pools"),
        (["--env", "../prod"], "--env"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(repository, args, named):
    done = CliRunner().invoke(app, ["plan", *args], terminal_width=400)
    assert done.exit_code == 2, done.output
    assert done.output.count("\n") == 1 and named in done.output, done.output
