"""The CLI is a package: a thin entry point over one module per command group, each
handing its work to a domain function (``runner.run_departments``, ``dev.serve``) and
turning that function's known errors into one line and an exit code.

`airnub --help` and every command's own help are read from the real console script
and in a fresh interpreter, where nothing has imported Prefect yet."""

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from airnub_platform import cli, dev, local_api
from airnub_platform.cli import app
from airnub_platform.testing import clean_env
from typer.testing import CliRunner

# every command and command group, in the order `airnub --help` lists them
COMMANDS = ["list", "run", "check", "affected", "deploy", "plan", "drift", "retire", "dev",
            "usage", "variables", "blocks", "deployments", "owners", "automations"]  # fmt: skip
SUBCOMMANDS = [
    ["variables", "sync"],
    ["blocks", "sync"],
    ["deployments", "write"],
    ["owners", "write"],
    ["automations", "sync"],
]
MODULES = sorted(module.name for module in pkgutil.iter_modules(cli.__path__))
MAX_LINES = 150
HOSTILE = ["[/red]", "$(id)", "../../etc", "a\nb"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), terminal_width=2000)


def one_line_error(result, code: int, *needles: str) -> str:
    """A refusal: ``code``, one `error:` line holding ``needles`` verbatim, no traceback."""
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in errors[0], result.output
    return errors[0]


# --- the layout ----------------------------------------------------------------------


@pytest.mark.parametrize("name", MODULES)
def test_every_command_module_imports_and_stays_short(name):
    module = importlib.import_module(f"{cli.__name__}.{name}")
    assert module.__doc__, f"{name} says what it holds"
    lines = Path(module.__file__ or "").read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"cli/{name}.py has {lines} lines; split it by command group"


def test_help_lists_every_command_group_from_the_console_script():
    airnub = Path(sys.executable).with_name("airnub")
    shown = subprocess.run([airnub, "--help"], env=clean_env(COLUMNS="200"), capture_output=True,
                           text=True, timeout=120, check=True).stdout  # fmt: skip
    panel = shown.split("Commands", 1)[1].splitlines()
    # a name starts its row; a wrapped help line starts with spaces
    listed = [
        line[2:].split(" ", 1)[0] for line in panel if line.startswith("│ ") and line[2] != " "
    ]
    assert listed == COMMANDS, shown


@pytest.mark.parametrize("command", [[name] for name in COMMANDS] + SUBCOMMANDS, ids=" ".join)
def test_every_command_explains_itself(command):
    """Its options' annotations resolve: every alias they use is defined where they are."""
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: root {' '.join(command)}" in result.output


def test_the_command_line_and_its_help_import_no_prefect(tmp_path):
    """Importing prefect costs seconds: the entry point and every --help do without it."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, sys\n"
        "from airnub_platform.cli import app\n"
        "loaded = {'import': 'prefect' in sys.modules}\n"
        f"for command in {[[name] for name in COMMANDS] + SUBCOMMANDS + [[]]!r}:\n"
        "    try:\n"
        "        app([*command, '--help'], prog_name='airnub')\n"
        "    except SystemExit as done:\n"
        "        assert done.code == 0, command\n"
        "    loaded[' '.join(command) or 'airnub'] = 'prefect' in sys.modules\n"
        "print(json.dumps(loaded))\n"
    )
    done = subprocess.run([sys.executable, probe], env=clean_env(), capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded["import"] is False
    assert [name for name, prefect in loaded.items() if prefect] == []


# --- commands hand their work to the domain, and refuse in one line ------------------


@pytest.mark.parametrize("stage", HOSTILE)
def test_run_refuses_a_hostile_stage_before_anything_runs(make_department, airnub_data_root, stage):
    make_department("dept_layout_run", {"ingestion": ["one"]})
    result = invoke("run", "dept_layout_run", stage)
    one_line_error(result, 2, f"unknown stage {stage!r}; valid: ingestion, processing, analysis")
    assert not list(airnub_data_root.rglob("*"))


@pytest.mark.parametrize("category", HOSTILE)
def test_run_refuses_a_hostile_category_naming_the_valid_ones(
    make_department, airnub_data_root, category
):
    make_department("dept_layout_run", {"ingestion": ["one"], "analysis": ["two"]})
    result = invoke("run", "dept_layout_run", "--category", category)
    message = f"unknown category of dept_layout_run {category!r}; valid: one, two"
    one_line_error(result, 2, message)
    assert not list(airnub_data_root.rglob("*"))


@pytest.fixture
def prefect_home(tmp_path, monkeypatch) -> Path:
    """A Prefect home of the test's own: where `airnub dev` keeps its state and logs."""
    home = tmp_path / "home"
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.delenv(dev.DATABASE_URL_ENV, raising=False)
    return home


@pytest.mark.parametrize("db", HOSTILE)
def test_dev_refuses_a_hostile_database_kind(prefect_home, db):
    result = invoke("dev", "--db", db, "--port", str(local_api.free_port()))
    one_line_error(result, 2, f"--db: unknown database {db!r}; valid: sqlite, postgres")
    assert not prefect_home.exists()


def test_dev_without_a_postgres_url_starts_nothing(prefect_home):
    result = invoke("dev", "--db", "postgres", "--port", str(local_api.free_port()))
    one_line_error(result, 1, f"--db postgres needs ${dev.DATABASE_URL_ENV}, e.g. postgresql")
    assert "stopped" not in result.output
    assert not prefect_home.exists()


def test_dev_says_why_its_server_died_then_stops_everything(prefect_home, monkeypatch):
    """A real server that cannot reach its database exits; `airnub dev` names the log in
    one line, before it stops what it started, and never shows the database password."""
    secret = "s3cret-pw"
    url = f"postgresql+asyncpg://airnub:{secret}@127.0.0.1:{local_api.free_port()}/prefect"
    monkeypatch.setenv(dev.DATABASE_URL_ENV, url)
    result = invoke("dev", "--db", "postgres", "--port", str(local_api.free_port()))
    log = prefect_home / "airnub-dev-logs" / "server.log"
    error = one_line_error(result, 1, f"Prefect server exited with 3; see {log}")
    lines = result.output.splitlines()
    stopped = [line for line in lines if line.startswith("stopped server (pid ")]
    assert len(stopped) == 1 and lines.index(error) < lines.index(stopped[0]), result.output
    assert secret not in result.output
    pid = int(stopped[0].removeprefix("stopped server (pid ").rstrip(")"))
    assert not dev.alive(pid)
    assert dev.running() is None and not dev.state_file().exists()


def test_names_from_files_reach_the_terminal_as_one_printable_line():
    from airnub_platform.cli._shared import printable

    assert printable("dept_x/a\nb\x1b[2J\u200bé: bad") == "dept_x/a\\nb\\x1b[2J\\u200bé: bad"
