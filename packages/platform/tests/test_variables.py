"""YAML -> Prefect Variables, environments, the Variable layer at run time, and secrets,
against the session's Prefect server on loopback."""

import importlib
import re

import pytest
from airnub_core import config
from airnub_core.config import ConfigError
from airnub_core.conventions import Identity
from airnub_platform import variable_sync
from airnub_platform.cli import app
from airnub_platform.testing import (
    flow_logs,
    importable_departments,
    published_anywhere,
    write_department,
)
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import VariableCreate
from prefect.variables import Variable
from pydantic import SecretStr
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("prefect_api")
DEPT = "dept_vars"
OTHER = "dept_vars_other"


@pytest.fixture(scope="module")
def departments(tmp_path_factory):
    """Two throwaway departments with two ingestion categories each."""
    root = tmp_path_factory.mktemp("variables")
    for name in (DEPT, OTHER):
        write_department(root, name, {"ingestion": ["one", "two"]})
    with importable_departments(root, {DEPT: "Vars Team", OTHER: "Other Team"}):
        yield root


@pytest.fixture
def configs(departments):
    """The dept_vars config folder, restored after each test."""
    folder = departments / DEPT / "configs" / "variables" / "ingestion"
    saved = {p: p.read_text() for p in folder.iterdir()}
    yield folder
    for path in folder.iterdir():
        if path not in saved:
            path.unlink()
    for path, text in saved.items():
        path.write_text(text)


@pytest.fixture(autouse=True)
def no_managed_variables():
    with get_client(sync_client=True) as client:
        for name in variable_sync.managed_variables(client):
            client.delete_variable_by_name(name)


def sync(*names, env="local", prune=False, dry_run=False):
    chosen = list(names or (DEPT, OTHER))
    wanted = variable_sync.desired_values(chosen, env)
    with get_client(sync_client=True) as client:
        changes = variable_sync.sync(client, wanted, chosen, prune=prune, dry_run=dry_run)
    return {c.name: c.action for c in changes}


def test_names_fit_prefects_rules_and_never_collide(departments):
    names = {
        f.identity.variable_name() for d in (DEPT, OTHER) for f in variable_sync.config_files(d)
    }
    assert len(names) == 4
    for name in names:
        VariableCreate(name=name, value={})  # Prefect's own validation
        assert re.fullmatch(r"[a-z0-9_-]{1,255}", name)
    # "-" never occurs in an id, so different paths cannot join to the same name
    assert (
        Identity("dept_a_b", "ingestion", "c").variable_name()
        != Identity("dept_a", "ingestion", "b_c").variable_name()
    )


def test_a_second_sync_changes_nothing(departments):
    result = CliRunner().invoke(app, ["variables", "sync", DEPT, OTHER])
    assert result.exit_code == 0, result.output
    assert "applied: 4 create" in result.output
    again = CliRunner().invoke(app, ["variables", "sync", DEPT, OTHER])
    assert "applied: 4 unchanged" in again.output
    assert Variable.get(f"{DEPT}-ingestion-one") == {"message": "hello from one"}


def test_editing_one_file_updates_only_its_variable(configs):
    sync()
    (configs / "two.yaml").write_text("message: changed\n")
    changes = sync()
    assert changes[f"{DEPT}-ingestion-two"] == "update"
    assert [a for a in changes.values() if a != "unchanged"] == ["update"]
    assert Variable.get(f"{DEPT}-ingestion-two") == {"message": "changed"}


def test_prune_deletes_only_managed_variables_whose_file_is_gone(configs):
    sync()
    Variable.set("someone-elses", {"keep": True}, overwrite=True)
    (configs / "two.yaml").unlink()
    assert sync(DEPT)[f"{DEPT}-ingestion-two"] == "stale"  # reported, not deleted
    assert Variable.get(f"{DEPT}-ingestion-two") is not None
    assert sync(DEPT, prune=True)[f"{DEPT}-ingestion-two"] == "delete"
    assert Variable.get(f"{DEPT}-ingestion-two") is None
    assert Variable.get(f"{OTHER}-ingestion-two") is not None  # another department's
    assert Variable.get("someone-elses") == {"keep": True}  # not managed by airnub
    Variable.unset("someone-elses")


def test_an_invalid_file_writes_nothing(configs):
    (configs / "one.yaml").write_text("message: [unclosed\n")
    (configs / "two.yaml").write_text("message: hi\nsleep_seconds: soon\n")
    with pytest.raises(ConfigError) as error:
        sync()
    assert re.search(r"one\.yaml:\d+: invalid YAML", str(error.value))
    assert "two.yaml: sleep_seconds: Input should be a valid number" in str(error.value)
    result = CliRunner().invoke(app, ["variables", "sync", DEPT])
    assert result.exit_code == 1
    assert "nothing written" in result.output
    with get_client(sync_client=True) as client:
        assert variable_sync.managed_variables(client) == {}


def test_a_secret_in_yaml_is_refused_with_file_and_key(configs):
    (configs / "one.yaml").write_text("message: hi\nsource:\n  api_token: abc123\n")
    with pytest.raises(ConfigError, match=r"one\.yaml:source\.api_token: looks like a secret"):
        sync()
    (configs / "one.yaml").write_text("message: hi\napi_key_block: vars-api-key\n")
    assert not list(config.secret_keys(config.read_yaml(configs / "one.yaml")))


def test_an_environment_overlay_changes_a_value(configs):
    (configs / "one.staging.yaml").write_text("message: hello from staging\n")
    sync(DEPT, env="staging")
    assert Variable.get(f"{DEPT}-ingestion-one") == {"message": "hello from staging"}
    assert Variable.get(f"{DEPT}-ingestion-two") == {"message": "hello from two"}


def category(name):
    module = importlib.import_module(f"{DEPT}.ingestion.{name}.make_{name}_flow_{DEPT}")
    return getattr(module, f"make_{name}")


def test_a_run_uses_the_variable_and_says_so(departments, airnub_data_root):
    Variable.set(f"{DEPT}-ingestion-one", {"message": "from the variable"}, overwrite=True)
    state = category("one")(return_state=True)
    assert state.is_completed(), state.message
    assert (airnub_data_root / DEPT / "ingestion/one/out.txt").read_text() == "from the variable"
    assert f"settings from Prefect Variable '{DEPT}-ingestion-one'" in flow_logs(state)
    state = category("two")(return_state=True)  # no Variable: the shipped YAML
    assert "two.yaml" in flow_logs(state)
    Variable.unset(f"{DEPT}-ingestion-one")


def test_an_invalid_variable_fails_the_run_naming_it_and_the_key(departments):
    Variable.set(f"{DEPT}-ingestion-one", {"message": 5, "extra": 1}, overwrite=True)
    state = category("one")(return_state=True)
    Variable.unset(f"{DEPT}-ingestion-one")
    assert state.is_failed()
    assert f"Prefect Variable '{DEPT}-ingestion-one': message: Input should be" in state.message
    assert "extra: Extra inputs are not permitted" in state.message


def test_a_secret_block_is_used_and_never_logged_or_published(httpserver, airnub_data_root):
    """A core task reads the Secret block itself: the token reaches the source's origin
    and nowhere else (not a parameter, a log line, an artifact or an output)."""
    from airnub_core.tasks import fetch_json_pages_task, publish_table_task, write_json_task
    from prefect import flow

    token = "tok-7f3a9c-never-show-me"
    Secret(value=SecretStr(token)).save("test-api-key", overwrite=True)
    httpserver.expect_request(
        "/api", headers={"Authorization": f"Bearer {token}"}
    ).respond_with_json({"results": [{"id": "r1"}], "next": None})

    @flow
    def fetch_with_secret(url: str, api_key_block: str) -> str:
        pages = fetch_json_pages_task(url, auth_block=api_key_block)
        publish_table_task("secret-test", pages[0]["results"], "what was fetched")
        return str(write_json_task(airnub_data_root / "records.json", pages))

    state = fetch_with_secret(httpserver.url_for("/api"), "test-api-key", return_state=True)
    assert state.is_completed(), state.message
    assert "r1" in published_anywhere(state)  # it does read what was published
    assert token not in published_anywhere(state)
    assert "r1" in (airnub_data_root / "records.json").read_text()
    assert token not in (airnub_data_root / "records.json").read_text()
