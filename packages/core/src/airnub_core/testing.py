"""Pytest support: one fast Prefect API per test session (a pytest11 plugin).

``prefect_test_harness`` builds and migrates a fresh database on every session.
Here a department's ``conftest.py`` calls :func:`start_session_api` when it is
imported, so the server (a copy of the cached, migrated template database)
boots on the second core while pytest imports the tests. Flow tests request
the ``prefect_api`` fixture, which waits for it and switches off the flow
heartbeat. Nothing here imports prefect before ``PREFECT_API_URL`` is set.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airnub_core import conventions, local_api
from airnub_core.client_speedups import local_run_settings, preload_engine

_session: local_api.LocalAPI | None = None


def start_session_api() -> None:
    """Start the session's API now, unless one is running or ``PREFECT_API_URL`` is set."""
    global _session
    if _session is not None or os.environ.get("PREFECT_API_URL"):
        return
    scratch = Path(tempfile.mkdtemp(prefix="airnub-tests-"))
    os.environ["PREFECT_HOME"] = str(scratch / "home")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    _session = local_api.start(db=scratch / "prefect.db")
    os.environ["PREFECT_API_URL"] = _session.url

    def stop() -> None:
        local_api.drain_client_workers()
        assert _session is not None
        _session.stop(settle=False)  # its database is deleted next
        shutil.rmtree(scratch, ignore_errors=True)

    atexit.register(stop)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The URL of a healthy Prefect API, with the client speed-ups on for the session."""
    start_session_api()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if _session is not None:
        preload_engine()
        _session.wait_healthy()
    updates = {PREFECT_API_URL: os.environ["PREFECT_API_URL"], **local_run_settings()}
    with temporary_settings(updates=updates):
        yield os.environ["PREFECT_API_URL"]
    local_api.drain_client_workers()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that need no API first, while the session's server is still booting."""
    items.sort(key=lambda item: "prefect_api" in getattr(item, "fixturenames", ()))


@pytest.fixture(autouse=True)
def airnub_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes its outputs under its own temporary data root."""
    root = tmp_path / "data"
    monkeypatch.setenv("AIRNUB_DATA_ROOT", str(root))
    return root


def run_whole_department(department: str, data_root: Path) -> list[Any]:
    """Run every stage of ``department`` writing under ``data_root``; returns the outcomes.

    For a module-scoped fixture, so several tests can read one run's outputs.
    """
    from airnub_core import runner

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRNUB_DATA_ROOT", str(data_root))
        return runner.run_department(department, runner.plan(department, None, None), local=None)


# A throwaway department for core's tests and the benchmarks.
CATEGORY = """
import time
from typing import Any

from airnub_core.config import Settings
from airnub_core.flows import category_flow, data_dir, settings_for
from airnub_core.storage import write_text_atomic
from prefect import task


@task
def wait(seconds: float) -> None:
    time.sleep(seconds)  # stands in for waiting on a slow source


class DemoSettings(Settings):
    message: str
    sleep_seconds: float = 0.0
    fail_with: str | None = None


@category_flow
def {action}(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(DemoSettings, __name__, overrides)
    wait(settings.sleep_seconds)
    if settings.fail_with:
        raise RuntimeError(settings.fail_with)
    path = write_text_atomic(data_dir(__name__) / "out.txt", settings.message)
    return {{"outputs": [str(path)]}}
"""

STAGE = """
from typing import Any

from airnub_core.flows import run_categories, stage_flow


@stage_flow
def {stage}_flow(
    categories: list[str] | None = None, overrides: dict[str, dict] | None = None
) -> dict[str, Any]:
    return run_categories(__name__, categories, overrides).result()
"""


def write_department(root: Path, department: str, categories: dict[str, list[str]]) -> None:
    """Write a minimal department package under ``root``: per category a flow that
    waits ``sleep_seconds`` in a task, optionally fails, and writes ``out.txt``."""
    package = root / department
    for stage in conventions.STAGES:
        (package / stage / "tasks").mkdir(parents=True)
        (package / stage / "__init__.py").touch()
        (package / stage / "tasks" / "__init__.py").touch()
        flow_file = package / f"{stage}{conventions.flow_suffix(department)}.py"
        flow_file.write_text(textwrap.dedent(STAGE.format(stage=stage)))
        for category in categories.get(stage, []):
            folder = package / stage / category
            folder.mkdir()
            (folder / "__init__.py").touch()
            action = f"make_{category}"
            module = folder / f"{action}{conventions.flow_suffix(department)}.py"
            module.write_text(CATEGORY.format(action=action))
            config = package / "configs" / "variables" / stage / f"{category}.yaml"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(f"message: hello from {category}\n")
    (package / "__init__.py").touch()


def write_department_project(
    root: Path,
    department: str,
    display_name: str,
    categories: dict[str, list[str]],
    prefect_yaml: str | None = None,
) -> Path:
    """``root/packages/<department>`` laid out as in the repository, returned.

    The package goes under ``src/`` beside a ``prefect.yaml`` (``prefect_yaml``, or one
    deploying the stage orchestrators by the conventions) and a ``.dist-info`` naming
    the department, so a process with ``src/`` on its path finds it as if installed.
    """
    folder = root / "packages" / department
    src = folder / "src"
    write_department(src, department, categories)
    info = src / f"{department}-0.0.0.dist-info"
    info.mkdir()
    distribution = conventions.distribution_name(department)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text(
        f"[{conventions.ENTRY_POINT_GROUP}]\n{display_name} = {department}\n"
    )
    (folder / "prefect.yaml").write_text(prefect_yaml or _prefect_yaml(department))
    return folder


def _prefect_yaml(department: str) -> str:
    pool = conventions.work_pool_name(department)
    lines = [f"name: {conventions.distribution_name(department)}", "pull: []", "deployments:"]
    for stage in conventions.STAGES:
        lines += [
            f"  - name: {pool}-{stage}",
            f"    entrypoint: {department}.{stage}{conventions.flow_suffix(department)}"
            f":{stage}_flow",
            f"    tags: [{department}, {stage}, {conventions.MANAGED_TAG}]",
            f"    work_pool: {{name: {pool}, job_variables: {{env: {{AIRNUB_ENV: local}}}}}}",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def make_department(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Build throwaway departments with :func:`write_department_project`, known to
    ``conventions.departments()`` and importable until the test ends."""
    patch = pytest.MonkeyPatch()
    paths: list[str] = []

    def make(department: str, categories: dict[str, list[str]], **options: Any) -> Path:
        root = tmp_path_factory.mktemp(department)
        display = options.pop("display_name", conventions.humanize(department.split("_", 1)[1]))
        folder = write_department_project(root, department, display, categories, **options)
        paths.append(str(folder / "src"))
        sys.path.insert(0, paths[-1])
        known = {**conventions.departments(), department: display}
        patch.setattr(conventions, "departments", lambda: known)
        return folder

    yield make
    patch.undo()
    for path in paths:
        sys.path.remove(path)
