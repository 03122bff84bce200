"""Environments are declared once, in the workspace root's pyproject.toml, and every
command agrees on them: ``check``, ``variables sync``, ``deploy`` and ``run`` refuse the
same names and the same overlays, with one line naming the argument or the file."""

import importlib
import sys
import tomllib

import pytest
from airnub_core import environments
from airnub_core.config import ENV_VAR
from airnub_core.environments import EnvironmentsError, check_environment
from airnub_platform.cli import app
from airnub_platform.testing import department_pyproject
from hypothesis import given
from hypothesis import strategies as st
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import VariableCreate
from typer.testing import CliRunner

DEPT = "dept_envs"
DECLARED = '[tool.airnub]\nenvironments = ["local", "prod"]\n'
DEPARTMENT_PYPROJECT = department_pyproject(DEPT, "Envs Team")


@pytest.fixture
def workspace(make_department, monkeypatch):
    """A workspace root (uv.lock, pyproject.toml declaring local and prod) holding one
    throwaway department that `airnub check` accepts; the working directory meanwhile."""
    forget_department()  # each test's copy is imported afresh
    folder = make_department(DEPT, {"ingestion": ["one"]}, display_name="Envs Team")
    root = folder.parent.parent
    (root / "uv.lock").write_text("")
    (root / "pyproject.toml").write_text(DECLARED)
    (folder / "pyproject.toml").write_text(DEPARTMENT_PYPROJECT)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_it.py").write_text(
        f"import {DEPT}.ingestion.one.make_one_flow_{DEPT}\n"
    )
    monkeypatch.chdir(root)
    monkeypatch.setenv(ENV_VAR, "local")  # restored after the test, which may change it
    monkeypatch.delenv(ENV_VAR)
    yield root
    forget_department()


def forget_department():
    for name in [m for m in sys.modules if m == DEPT or m.startswith(f"{DEPT}.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def configs(root):
    return root / "packages" / DEPT / "src" / DEPT / "configs" / "variables" / "ingestion"


def airnub(*args):
    return CliRunner().invoke(app, list(args))


def one_line_error(result, *needles):
    """A refusal: non-zero exit, one `error:` line naming what was wrong, no traceback."""
    assert result.exit_code != 0, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in errors[0], result.output


COMMANDS = {
    "sync": ["variables", "sync", "--dry-run", DEPT],
    "deploy": ["deploy", "--dry-run", DEPT],
    "run": ["run", DEPT, "ingestion"],
}
BAD_FORM = "is not an environment name"
HOSTILE = [("../../x", BAD_FORM), ("QA", BAD_FORM), ("qa", "is not declared"),
           ("local/../../etc", BAD_FORM), ("a\nb", BAD_FORM), ("x" * 500, BAD_FORM)]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("name", "why"), HOSTILE)
def test_a_hostile_env_option_is_refused_before_anything_runs(workspace, command, name, why):
    result = airnub(*COMMANDS[command], "--env", name)
    one_line_error(result, "--env:", why)
    assert not (workspace / "x").exists()


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("name", "why"), HOSTILE)
def test_a_hostile_airnub_env_is_refused_naming_the_variable(
    workspace, monkeypatch, command, name, why
):
    monkeypatch.setenv(ENV_VAR, name)
    one_line_error(airnub(*COMMANDS[command]), f"{ENV_VAR}:", why)


@pytest.mark.usefixtures("prefect_api")
def test_a_run_outside_a_workspace_refuses_a_hostile_airnub_env(
    make_department, tmp_path, monkeypatch
):
    """A worker's run: no workspace to declare environments, the form is still checked."""
    department = "dept_envs_worker"
    make_department(department, {"ingestion": ["one"]})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_VAR, "../../x")
    module = importlib.import_module(f"{department}.ingestion.one.make_one_flow_{department}")
    state = module.make_one(return_state=True)
    assert state.is_failed()
    assert "AIRNUB_ENV: '../../x' is not an environment name" in state.message
    monkeypatch.setenv(ENV_VAR, "staging")  # well formed: deploy checked it is declared
    assert module.make_one(return_state=True).is_completed()


@pytest.mark.usefixtures("prefect_api")
def test_an_undeclared_overlay_is_refused_alike_by_check_sync_and_run(workspace):
    (configs(workspace) / "one.qa.yaml").write_text("message: from qa\n")
    refusal = "one.qa.yaml: environment 'qa' is not declared in"
    check = airnub("check", DEPT)
    assert check.exit_code == 1 and refusal in check.output, check.output
    sync = airnub(*COMMANDS["sync"])
    assert sync.exit_code == 1 and refusal in sync.output, sync.output
    assert "nothing written" in sync.output
    run = airnub(*COMMANDS["run"])
    assert run.exit_code == 1 and refusal in run.output, run.output
    assert not list(workspace.glob("**/out.txt"))


@pytest.mark.usefixtures("prefect_api")
def test_a_declared_env_without_overlays_is_fine_everywhere(workspace, airnub_data_root):
    assert airnub("check", DEPT).exit_code == 0
    for command in ("sync", "deploy"):
        result = airnub(*COMMANDS[command], "--env", "prod")
        assert result.exit_code == 0, result.output
        assert "(prod)" in result.output
    result = airnub(*COMMANDS["run"], "--env", "prod")
    assert result.exit_code == 0, result.output
    out = airnub_data_root / DEPT / "ingestion" / "one" / "out.txt"
    assert out.read_text() == "hello from one"


@pytest.mark.usefixtures("prefect_api")
def test_a_declared_overlay_applies_in_sync_and_run(workspace, airnub_data_root):
    (configs(workspace) / "one.prod.yaml").write_text("message: from prod\n")
    assert airnub("check", DEPT).exit_code == 0
    assert airnub(*COMMANDS["run"], "--env", "prod").exit_code == 0
    out = airnub_data_root / DEPT / "ingestion" / "one" / "out.txt"
    assert out.read_text() == "from prod"


MALFORMED = {
    "not a list": '[tool.airnub]\nenvironments = "prod"\n',
    "a path in it": '[tool.airnub]\nenvironments = ["local", "../prod"]\n',
    "no local": '[tool.airnub]\nenvironments = ["prod"]\n',
    "not a table": "[tool]\nairnub = 3\n",
    "invalid TOML": "[tool.airnub\nenvironments = [\n",
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED)
def test_a_malformed_declaration_is_one_line_naming_the_file(workspace, text):
    (workspace / "pyproject.toml").write_text(text)
    for command in ("sync", "deploy", "run"):
        one_line_error(airnub(*COMMANDS[command], "--env", "prod"), "pyproject.toml")
    check = airnub("check", DEPT)
    assert check.exit_code == 1
    assert [line.split(":")[0] for line in check.output.splitlines()[:-1]] == ["pyproject.toml"]


def test_no_table_declares_local_only(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert environments.declared_environments(tmp_path) == ["local"]
    assert environments.declared_environments(tmp_path / "nowhere") == ["local"]


def test_the_shipped_declaration_reads():
    from airnub_core.storage import repository_root

    root = repository_root()
    assert root is not None
    declared = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["airnub"]
    assert environments.declared_environments(root) == declared["environments"]


UNSAFE = ("/", "\\", ".", " ", "\t", "\n", "\0")
NAMES = st.one_of(st.text(max_size=40), st.from_regex(r"[a-z][a-z0-9_-]{0,40}", fullmatch=True))


@given(name=NAMES)
def test_a_name_is_safe_or_refused_in_one_line(name):
    try:
        checked = environments.check_name(name, "--env")
    except EnvironmentsError as error:
        assert "\n" not in str(error) and "\r" not in str(error)
        assert str(error).startswith("--env: ")
        return
    assert checked == name and checked not in ("", ".", "..") and len(checked) <= 32
    assert not any(c in checked for c in UNSAFE)


@pytest.fixture(scope="module")
def declaring_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("declaring")
    (root / "pyproject.toml").write_text(DECLARED)
    return root


@given(name=NAMES)
def test_only_a_declared_name_passes(declaring_root, name):
    try:
        checked = check_environment(name, ENV_VAR, declaring_root)
    except EnvironmentsError as error:
        assert "\n" not in str(error) and str(error).startswith(f"{ENV_VAR}: ")
    else:
        assert checked in ("local", "prod")


# --- a hand-made Variable under a managed name ---------------------------------------


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("dry_run", [False, True], ids=["sync", "dry-run"])
def test_a_hand_made_variable_under_a_managed_name_is_refused(make_department, dry_run):
    from airnub_platform import variable_sync

    department = "dept_hand_made"
    make_department(department, {"ingestion": ["first", "second"]})
    taken = f"{department}-ingestion-second"
    with get_client(sync_client=True) as client:
        client.create_variable(VariableCreate(name=taken, value={"mine": 1}, tags=["by-hand"]))
    try:
        result = airnub("variables", "sync", department, *(["--dry-run"] * dry_run))
        one_line_error(result, repr(taken), "not managed by airnub", "delete it", "add")
        with get_client(sync_client=True) as client:
            kept = client.read_variable_by_name(taken)
            assert kept is not None and kept.value == {"mine": 1}
            managed = variable_sync.managed_variables(client)
            assert not [name for name in managed if name.startswith(department)]
    finally:
        with get_client(sync_client=True) as client:
            client.delete_variable_by_name(taken)
