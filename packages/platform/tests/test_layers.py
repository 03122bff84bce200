"""Two layers: what a worker installs for a department holds the runtime and no platform.

Each workspace member that is the runtime or a department is installed as production
does it (``uv sync --no-dev --no-editable``, as the Dockerfile's build stage) into a
fresh environment, from uv's cache; the platform must be absent from it.
"""

import os
import subprocess
from pathlib import Path

import pytest
from airnub_core.storage import repository_root
from airnub_platform.affected import read_workspace

ROOT = repository_root()
assert ROOT is not None
WORKSPACE = read_workspace((ROOT / "uv.lock").read_text())
RUNTIME_INSTALLS = ["airnub-core", *sorted(WORKSPACE.departments)]


def production_install(package: str, target: Path) -> Path:
    """``target``'s interpreter after installing ``package`` without its dev group."""
    env = {"UV_PROJECT_ENVIRONMENT": str(target), "UV_NO_PROGRESS": "1"}
    command = ["uv", "sync", "--locked", "--no-dev", "--no-editable", "--offline", "--quiet",
               "--package", package]  # fmt: skip
    subprocess.run(command, cwd=ROOT, env={**_environ(), **env}, check=True, timeout=300)
    return target / "bin" / "python"


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}


@pytest.mark.parametrize("package", RUNTIME_INSTALLS)
def test_a_production_install_holds_no_platform_module(package, tmp_path):
    python = production_install(package, tmp_path / "venv")
    probe = (
        "import importlib.util as u, json, sys;"
        "print(json.dumps([u.find_spec(m) is not None for m in sys.argv[1:]]))"
    )
    module = package.replace("-", "_")
    found = subprocess.run(
        [python, "-c", probe, module, "airnub_platform", "typer"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    assert found.strip() == "[true, false, true]"  # typer comes with Prefect, not with us
    assert not (tmp_path / "venv" / "bin" / "airnub").exists()
    listed = subprocess.run(["uv", "pip", "list", "--python", str(python)], capture_output=True,
                            text=True, check=True, timeout=120).stdout  # fmt: skip
    assert "airnub-platform" not in listed
    assert "airnub-core" in listed
