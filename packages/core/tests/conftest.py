"""A throwaway department, ``dept_demo``, built in a temp folder for core's own tests."""

import sys
import textwrap
from pathlib import Path

import pytest
from airnub_core import conventions
from airnub_core.testing import start_session_api

start_session_api()

CATEGORY = """
import time
from typing import Any

from airnub_core.config import Settings
from airnub_core.flows import category_flow, data_dir, settings_for
from airnub_core.storage import write_text_atomic


class DemoSettings(Settings):
    message: str
    sleep_seconds: float = 0.0
    fail_with: str | None = None


@category_flow
def {action}(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(DemoSettings, __name__, overrides)
    time.sleep(settings.sleep_seconds)
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


@pytest.fixture(scope="session")
def demo_department(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``dept_demo`` ("Demo Team") with three ingestion categories and one per later stage."""
    root = tmp_path_factory.mktemp("departments")
    write_department(
        root,
        "dept_demo",
        {"ingestion": ["alpha", "beta", "gamma"], "processing": ["tidy"], "analysis": ["sums"]},
    )
    sys.path.insert(0, str(root))
    known = {**conventions.departments(), "dept_demo": "Demo Team"}
    patcher = pytest.MonkeyPatch()
    patcher.setattr(conventions, "departments", lambda: known)
    yield "dept_demo"
    patcher.undo()
    sys.path.remove(str(root))
