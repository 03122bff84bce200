"""`airnub retire` against the session's Prefect server.

The retired department is never installed here: its deployments are made straight
through the API, as an earlier `airnub deploy` of a since-deleted package left them.
"""

import sys

import pytest
from airnub_core.conventions import MANAGED_TAG
from airnub_platform import deploy
from airnub_platform.cli import app
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("prefect_api")
GONE = "dept_gone"  # no such package anywhere


def make(client, flow, name, pool, tags):
    if pool:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    flow_id = client.create_flow_from_name(flow)
    return client.create_deployment(
        flow_id=flow_id, name=name, work_pool_name=pool, tags=tags,
        entrypoint=f"{GONE}.ingestion_flow_{GONE}:ingestion_flow",
    )  # fmt: skip


def exists(client, read, *args):
    try:
        read(*args)
    except ObjectNotFound:
        return False
    return True


def retire(*arguments):
    result = CliRunner().invoke(app, ["retire", *arguments])
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def leftovers():
    """Two managed deployments (own pool, shared pool), a hand-made one of the same
    department on the shared pool, and another department's managed one."""
    with get_client(sync_client=True) as client:
        managed, other = [GONE, MANAGED_TAG], ["dept_other", MANAGED_TAG]
        ids = {
            "own": make(client, "Gone Stage", "dept-gone-ingestion", "dept-gone", managed),
            "shared": make(client, "Gone Stage", "dept-gone-shared", "gone-shared", managed),
            "hand-made": make(client, "Gone Stage", "by-hand", "gone-shared", [GONE]),
            "other": make(client, "Other Stage", "other", "other-pool", other),
        }
    yield ids
    with get_client(sync_client=True) as client:
        for deployment_id in ids.values():
            if exists(client, client.read_deployment, deployment_id):
                client.delete_deployment(deployment_id)
        for pool in ("dept-gone", "gone-shared", "other-pool"):
            if exists(client, client.read_work_pool, pool):
                client.delete_work_pool(pool)


def test_a_dry_run_says_what_would_go_and_writes_nothing(leftovers):
    code, output = retire(GONE, "--dry-run")
    assert code == 0, output
    for line in (
        "delete Gone Stage/dept-gone-ingestion",
        "delete Gone Stage/dept-gone-shared",
        "delete pool dept-gone",
        "keep pool gone-shared: not the department's own pool",
        "dry run: nothing written",
    ):
        assert line in output
    assert "by-hand" not in output and "Other Stage" not in output
    with get_client(sync_client=True) as client:
        assert all(exists(client, client.read_deployment, i) for i in leftovers.values())
        assert exists(client, client.read_work_pool, "dept-gone")


def test_retire_removes_managed_deployments_and_its_own_unused_pool_only(leftovers):
    code, output = retire(GONE)
    assert code == 0, output
    assert "delete pool dept-gone" in output
    assert "keep pool gone-shared: not the department's own pool" in output
    with get_client(sync_client=True) as client:
        gone = {k for k, i in leftovers.items() if not exists(client, client.read_deployment, i)}
        assert gone == {"own", "shared"}
        assert not exists(client, client.read_work_pool, "dept-gone")
        assert exists(client, client.read_work_pool, "gone-shared")
        assert exists(client, client.read_work_pool, "other-pool")
    assert GONE not in sys.modules  # it never tried to import the department
    code, output = retire(GONE)
    assert code == 0, output
    assert "dept_gone: nothing to remove" in output
    assert "delete" not in output


def test_a_pool_another_departments_deployment_uses_is_kept(leftovers):
    with get_client(sync_client=True) as client:
        make(client, "Other Stage", "on-gone-pool", "dept-gone", ["dept_other", MANAGED_TAG])
        results = deploy.retire(client, GONE)
        assert ("keep pool", "dept-gone: used by 1 deployment of other departments") in results
        client.delete_deployment(client.read_deployment_by_name("Other Stage/on-gone-pool").id)


def test_nothing_to_retire_is_not_an_error():
    code, output = retire("dept_never_was")
    assert (code, output.endswith("dept_never_was: nothing to remove")) == (0, True), output


@pytest.mark.parametrize("bad", ["gone", "dept_Gone", "dept_", "dept_a-b", "dept_class"])
def test_an_invalid_department_id_is_named(bad):
    code, output = retire("dept_fine", bad)
    assert code != 0
    assert output.startswith("error: DEPARTMENT: department") and repr(bad)[1:-1] in output
    assert "Prefect API" not in output  # refused before anything is touched


def test_an_unreachable_api_is_named(monkeypatch):
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    url = "http://127.0.0.1:9/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    with temporary_settings(updates={PREFECT_API_URL: url, PREFECT_CLIENT_MAX_RETRIES: 0}):
        code, output = retire(GONE)
    assert code == 1
    assert f"the Prefect API at {url} did not answer (connection refused)" in output


def test_a_pool_it_did_not_create_is_kept_even_when_nothing_uses_it():
    """An operator's production pool, named in prefect.yaml, outlives the department."""
    with get_client(sync_client=True) as client:
        make(client, "Gone Stage", "on-prod", "ops-prod-pool", [GONE, MANAGED_TAG])
        try:
            code, output = retire(GONE)
            assert code == 0, output
            assert "delete Gone Stage/on-prod" in output
            assert "keep pool ops-prod-pool: not the department's own pool" in output
            assert "delete pool ops-prod-pool" not in output
            assert exists(client, client.read_work_pool, "ops-prod-pool")
        finally:
            client.delete_work_pool("ops-prod-pool")


@pytest.fixture
def variables():
    """The department's managed Variables, one it has but does not manage, another's."""
    from prefect.client.schemas.actions import VariableCreate

    tags = {
        "dept_gone-ingestion-feed": [MANAGED_TAG, GONE],
        "dept_gone-analysis-sums": [GONE, MANAGED_TAG, "extra"],
        "dept_gone-by-hand": [GONE],
        "dept_other-ingestion-feed": [MANAGED_TAG, "dept_other"],
    }
    with get_client(sync_client=True) as client:
        for name, tagged in tags.items():
            client.create_variable(VariableCreate(name=name, value={"a": 1}, tags=tagged))
    yield tags
    with get_client(sync_client=True) as client:
        for name in tags:
            if client.read_variable_by_name(name) is not None:
                client.delete_variable_by_name(name)


def test_its_managed_variables_go_and_no_other(variables):
    managed = ["dept_gone-analysis-sums", "dept_gone-ingestion-feed"]
    code, output = retire(GONE, "--dry-run")
    assert code == 0, output
    assert all(f"delete variable {name}" in output for name in managed)
    with get_client(sync_client=True) as client:
        assert all(client.read_variable_by_name(name) for name in variables)
    code, output = retire(GONE)
    assert code == 0, output
    assert output.count("delete variable") == 2
    assert all(f"delete variable {name}" in output for name in managed)
    with get_client(sync_client=True) as client:
        left = {name for name in variables if client.read_variable_by_name(name) is not None}
    assert left == {"dept_gone-by-hand", "dept_other-ingestion-feed"}


def test_names_are_printed_verbatim_not_as_markup():
    odd = "x $(id) [x] [bold]y"  # Prefect refuses "/" in names
    with get_client(sync_client=True) as client:
        deployment_id = make(client, "Gone [red]Stage", odd, None, [GONE, MANAGED_TAG])
        try:
            code, output = retire(GONE, "--dry-run")
        finally:
            client.delete_deployment(deployment_id)
    assert code == 0, output
    assert f"delete Gone [red]Stage/{odd}" in output


def test_a_department_still_in_the_workspace_is_refused_unless_forced(make_department):
    make_department("dept_still_here", {"ingestion": ["feed"]})
    code, output = retire("dept_still_here")
    assert code != 0
    assert output.startswith("error: DEPARTMENT: 'dept_still_here' is still in the workspace")
    assert "--force" in output and "Prefect API" not in output
    code, output = retire("dept_still_here", "--force", "--dry-run")
    assert code == 0, output
    assert "dept_still_here: nothing to remove" in output


def test_a_department_whose_folder_is_still_there_is_refused(tmp_path, monkeypatch):
    """CI's retire runs in the checkout with only airnub-core installed: the folder counts."""
    (tmp_path / "uv.lock").write_text("version = 1\n")
    project = tmp_path / "packages" / "dept_folder_only" / "pyproject.toml"
    project.parent.mkdir(parents=True)
    project.write_text("[project]\nname = 'dept-folder-only'\n")
    monkeypatch.chdir(tmp_path)
    code, output = retire("dept_gone", "dept_folder_only")
    assert code != 0
    assert output.startswith("error: DEPARTMENT: 'dept_folder_only' is still in the workspace")
    assert str(project) in output


def lock_listing(root, members):
    """A uv.lock at ``root`` whose workspace holds ``members`` (department ids) only."""
    packages = "".join(
        f'[[package]]\nname = "{m.replace("_", "-")}"\nversion = "0.1.0"\n'
        f'source = {{ editable = "packages/{m}" }}\n\n'
        for m in sorted(members)
    )
    (root / "uv.lock").write_text(f"version = 1\nrequires-python = '>=3.11'\n\n{packages}")


def test_absent_retires_exactly_the_departments_missing_from_the_lock(tmp_path, monkeypatch):
    from prefect.client.schemas.actions import VariableCreate

    with get_client(sync_client=True) as client:
        # whatever other tests left on the session's server stays a member: never touched
        members = deploy.managed_departments(client) | {"dept_kept"}
        kept = make(client, "Kept Stage", "dept-kept-ingestion-dept-fake", "dept-kept",
                    ["dept_kept", "ingestion", "dept_fake", MANAGED_TAG])  # fmt: skip
        gone = make(client, "Gone Stage", "dept-gone-ingestion", "dept-gone",
                    [GONE, "ingestion", MANAGED_TAG])  # fmt: skip
        client.create_variable(
            VariableCreate(name="dept_gone_too-ingestion", value=1, tags=["dept_gone_too",
                                                                           MANAGED_TAG])
        )  # fmt: skip
    lock_listing(tmp_path, members)
    monkeypatch.chdir(tmp_path)
    try:
        code, output = retire("--absent", "--dry-run")
        assert code == 0, output
        assert "absent from the workspace: dept_gone dept_gone_too" in output
        assert "dry run: nothing written" in output
        code, output = retire("--absent")
        assert code == 0, output
        for line in (
            "absent from the workspace: dept_gone dept_gone_too",
            "delete Gone Stage/dept-gone-ingestion",
            "delete pool dept-gone",
            "delete variable dept_gone_too-ingestion",
        ):
            assert line in output
        assert "dept_kept" not in output and "dept_fake" not in output
        with get_client(sync_client=True) as client:
            assert not exists(client, client.read_deployment, gone)
            assert exists(client, client.read_deployment, kept)
            assert client.read_variable_by_name("dept_gone_too-ingestion") is None
        code, output = retire("--absent")
        assert (code, "absent from the workspace: none" in output) == (0, True), output
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(kept)
            client.delete_work_pool("dept-kept")


def test_absent_keeps_a_department_whose_folder_is_still_there(tmp_path, monkeypatch):
    with get_client(sync_client=True) as client:
        members = deploy.managed_departments(client)
        unlocked = make(client, "Unlocked Stage", "dept-unlocked-ingestion", None,
                        ["dept_unlocked", MANAGED_TAG])  # fmt: skip
    lock_listing(tmp_path, members)
    (tmp_path / "packages" / "dept_unlocked").mkdir(parents=True)
    (tmp_path / "packages" / "dept_unlocked" / "pyproject.toml").write_text("[project]\n")
    monkeypatch.chdir(tmp_path)
    try:
        code, output = retire("--absent")
        assert code == 0, output
        assert "keep dept_unlocked: still in the workspace" in output
        assert "absent from the workspace: none" in output
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(unlocked)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--absent", "dept_gone"], "DEPARTMENT"),
        ([], "DEPARTMENT"),
        (["--absent", "--force"], "--force"),
    ],
)
def test_absent_or_departments_one_or_the_other(arguments, named):
    code, output = retire(*arguments)
    assert code != 0
    assert output.startswith(f"error: {named}:") and "Prefect API" not in output


def test_absent_outside_a_workspace_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, output = retire("--absent")
    assert code != 0 and output.startswith("error: --absent: not inside the workspace"), output


@pytest.mark.parametrize("command", ["retire", "deploy"])
def test_with_no_api_configured_a_write_is_refused_not_sent_to_a_throwaway_api(
    command, monkeypatch, tmp_path, make_department
):
    """A CI job missing its PREFECT_API_URL secret must fail, not 'deploy' to nothing."""
    name = GONE
    if command == "deploy":
        name = "dept_no_server"
        make_department(name, {"ingestion": ["feed"]})
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))  # no profile naming an API
    result = CliRunner().invoke(app, [command, name])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2
    assert len(lines) == 1
    assert lines[0].startswith("error: no Prefect API configured: set PREFECT_API_URL")
    assert f"{command} writes to a server" in lines[0]
