"""`airnub dev`'s workers: the poll interval they get, and department environments that
hold compiled bytecode, so a flow run does not recompile Prefect before it starts."""

import asyncio
import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from airnub_platform import dev
from airnub_platform.testing import clean_env
from hypothesis import given
from hypothesis import strategies as st

API = "http://127.0.0.1:4321/api"
DB = "sqlite+aiosqlite:////x/dev.db"
BUILD = '[build-system]\nrequires = ["uv_build>=0.8,<0.14"]\nbuild-backend = "uv_build"\n'


def test_workers_poll_every_second_unless_told_otherwise():
    assert dev.platform_env(API, DB, {})["PREFECT_WORKER_QUERY_SECONDS"] == "1"
    told = {"PREFECT_WORKER_QUERY_SECONDS": "0.5"}
    assert dev.platform_env(API, DB, told)["PREFECT_WORKER_QUERY_SECONDS"] == "0.5"


def test_prefect_reads_the_poll_interval_the_workers_get():
    env = dev.platform_env(API, DB, clean_env())
    code = "from prefect.settings import PREFECT_WORKER_QUERY_SECONDS as s; print(s.value())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    assert float(done.stdout.strip()) == 1.0


ARABIC_ONE, SNAKE = "\u0661", "\U0001f40d"  # float() reads the first as 1


@pytest.mark.parametrize(
    "raw", ["abc", "0", "-1", "nan", "inf", "1e3", "0.01", "1_0", ARABIC_ONE, "9999", ".5", SNAKE]
)
def test_an_unusable_poll_interval_is_refused_in_one_line_naming_it(raw):
    with pytest.raises(RuntimeError) as refused:
        dev.platform_env(API, DB, {"PREFECT_WORKER_QUERY_SECONDS": raw})
    message = str(refused.value)
    assert message.startswith("PREFECT_WORKER_QUERY_SECONDS: ") and "\n" not in message


@given(st.text(max_size=30))
def test_any_poll_interval_is_either_kept_as_given_or_refused_in_one_line(raw):
    try:
        kept = dev.platform_env(API, DB, {"PREFECT_WORKER_QUERY_SECONDS": raw})
    except RuntimeError as refused:
        assert "\n" not in str(refused) and str(refused).startswith("PREFECT_WORKER_QUERY")
    else:
        value = kept["PREFECT_WORKER_QUERY_SECONDS"]
        assert value == (raw.strip() or "1") and 0.1 <= float(value) <= 3600


@pytest.mark.parametrize(
    ("raw", "wanted"), [("", True), ("1", True), ("TRUE", True), (" off ", False), ("0", False)]
)
def test_bytecode_follows_uv_compile_bytecode(raw, wanted):
    assert dev.bytecode_wanted({"UV_COMPILE_BYTECODE": raw}) is wanted


@pytest.mark.parametrize("name", ["UV_COMPILE_BYTECODE", "AIRNUB_DEV_ENGINE_DIRECT"])
def test_an_unusable_flag_is_refused_before_anything_starts(monkeypatch, name):
    monkeypatch.setenv(name, "maybe\nsecret")
    with pytest.raises(RuntimeError, match=rf"^{name}: 'maybe\\nsecret' is neither") as no:
        dev.Platform(0, "sqlite", lambda _: None)
    assert "\n" not in str(no.value)


def test_the_direct_engine_can_be_turned_off():
    assert dev.engine_direct({}) is True
    assert dev.engine_direct({"AIRNUB_DEV_ENGINE_DIRECT": "0"}) is False


def tiny_workspace(root: Path) -> Path:
    """A uv workspace with one department whose dependency is a local, non-editable
    package: what a real department environment holds in its site-packages."""
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "scratch-root"\nversion = "0"\nrequires-python = ">=3.11"\n'
        '[tool.uv]\npackage = false\n[tool.uv.workspace]\nmembers = ["packages/*"]\n'
    )
    member = root / "packages" / "dept_quick"
    (member / "src" / "dept_quick").mkdir(parents=True)
    (member / "src" / "dept_quick" / "__init__.py").write_text("")
    (member / "pyproject.toml").write_text(
        '[project]\nname = "dept-quick"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        f'dependencies = ["quick-helper"]\n[tool.uv.sources]\n'
        f'quick-helper = {{ path = "../../helper" }}\n{BUILD}'
    )
    helper = root / "helper"
    (helper / "src" / "quick_helper").mkdir(parents=True)
    (helper / "src" / "quick_helper" / "__init__.py").write_text("ANSWER = 42\n")
    (helper / "pyproject.toml").write_text(
        f'[project]\nname = "quick-helper"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n{BUILD}'
    )
    subprocess.run(["uv", "lock", "--offline", "--quiet"], cwd=root, env=clean_env(), check=True,
                   timeout=300)  # fmt: skip
    return root


@pytest.fixture
def quick_env(tmp_path, monkeypatch):
    root = tiny_workspace(tmp_path / "ws")
    for name, value in clean_env().items():
        monkeypatch.setenv(name, value)
    for name in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_COMPILE_BYTECODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # the shells that recompile each run
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.chdir(root)
    return root


def compiled(env: Path) -> list[Path]:
    return sorted(env.glob("lib/python*/site-packages/quick_helper/__pycache__/*.pyc"))


def test_a_department_environment_holds_compiled_bytecode(quick_env):
    env = dev.department_env("dept_quick")
    assert compiled(env), "no .pyc for the department's dependency"
    assert (env / dev.BYTECODE_STAMP).read_text() == dev.lock_digest(quick_env)
    # Its Python loads the compiled file: a source edited behind it, same size and
    # time, is not read (the .pyc is checked by the source's size and mtime only).
    source = next(env.glob("lib/python*/site-packages/quick_helper/__init__.py"))
    stamp = source.stat()
    source.write_text("ANSWER = 41\n")
    os.utime(source, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    probe = "import quick_helper; print(quick_helper.ANSWER)"
    python = str(env / "bin" / "python")
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120,
                          env=clean_env(PYTHONDONTWRITEBYTECODE="1"))  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "42"), done.stderr


def test_bytecode_is_compiled_again_only_when_the_lock_changes(quick_env):
    env = dev.department_env("dept_quick")
    for pyc in compiled(env):
        pyc.unlink()
    dev.department_env("dept_quick")  # same lock: no whole-environment compile pass
    assert compiled(env) == []
    with (quick_env / "uv.lock").open("a") as lock:
        lock.write("\n")  # a different lock, same contents: the environment may have changed
    dev.department_env("dept_quick")
    assert compiled(env)


def test_uv_compile_bytecode_off_is_respected(quick_env, monkeypatch):
    monkeypatch.setenv("UV_COMPILE_BYTECODE", "0")
    env = dev.department_env("dept_quick")
    assert compiled(env) == [] and not (env / dev.BYTECODE_STAMP).exists()


def test_a_failed_sync_leaves_no_stamp_claiming_bytecode(quick_env):
    env = dev.department_env("dept_quick")
    (quick_env / "packages" / "dept_quick" / "pyproject.toml").write_text(
        '[project]\nname = "dept-quick"\nversion = "0.2.0"\nrequires-python = ">=3.11"\n'
    )  # the lock no longer matches: `uv sync --locked` refuses
    with pytest.raises(RuntimeError, match=r"^uv sync for dept_quick failed"):
        dev.department_env("dept_quick")
    assert not (env / dev.BYTECODE_STAMP).exists()


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def make_pool(name: str, pool_type: str, template: dict | None = None) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(
            WorkPoolCreate(name=name, type=pool_type, base_job_template=template or {})
        )


def pool_template(name: str) -> dict:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_work_pool(name).base_job_template


def test_a_process_pools_runs_start_the_engine_of_its_department_environment(prefect_api, tmp_path):
    from prefect.workers.process import ProcessJobConfiguration

    python = tmp_path / "env with space" / "bin" / "python"
    pool = unique("dept-engine-direct")
    make_pool(pool, "process")  # an empty template, as `airnub deploy` makes a process pool
    dev.run_engine_directly(prefect_api, pool, python)
    # what the worker renders for a run: the engine in that environment, no supervisor
    render = ProcessJobConfiguration.from_template_and_values(pool_template(pool), {})
    command = asyncio.run(render).command
    assert command is not None and shlex.split(command) == [str(python), "-m", "prefect.engine"]


def test_a_pools_own_command_and_the_rest_of_its_template_are_kept(prefect_api, tmp_path):
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    properties = template["variables"]["properties"]
    properties["command"]["default"] = "python -m my.own.launcher"
    properties["stream_output"]["default"] = False
    make_pool(own_command := unique("dept-own-command"), "process", template)
    dev.run_engine_directly(prefect_api, own_command, tmp_path / "python")
    assert pool_template(own_command) == template
    properties["command"]["default"] = None
    make_pool(own_template := unique("dept-own-template"), "process", template)
    dev.run_engine_directly(prefect_api, own_template, tmp_path / "python")
    kept = pool_template(own_template)["variables"]["properties"]
    assert kept["stream_output"]["default"] is False
    assert kept["command"]["default"] == f"{tmp_path / 'python'} -m prefect.engine"


def test_a_pool_of_another_type_is_left_alone(prefect_api, tmp_path):
    make_pool(not_process := unique("dept-not-process"), "docker")
    before = pool_template(not_process)
    dev.run_engine_directly(prefect_api, not_process, tmp_path / "python")
    assert pool_template(not_process) == before


@pytest.mark.parametrize("planted", ["a folder", "not utf-8"])
def test_a_stamp_that_cannot_be_read_means_compile_again(quick_env, planted):
    env = dev.department_env("dept_quick")
    for pyc in compiled(env):
        pyc.unlink()
    stamp = env / dev.BYTECODE_STAMP
    stamp.unlink()
    if planted == "a folder":
        stamp.mkdir()
    else:
        stamp.write_bytes(b"\xff\xfe")
    dev.department_env("dept_quick")
    assert compiled(env)
