"""Copies of the repository for the generators to write into."""

import subprocess
import sys
from pathlib import Path

import pytest
from airnub_platform.testing import GENERATORS, clean_env, copy_workspace

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def new_copy(tmp_path_factory: pytest.TempPathFactory):
    """Make a fresh copy of the repository as it is: ``new_copy("name") -> Path``."""
    return lambda name: copy_workspace(REPO, tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def env_for_copy():
    return clean_env


@pytest.fixture
def run_generator():
    """Run a generator of the copy at ``root`` with stdin closed; returns the process."""

    def run(root: Path, script: str, *args: str, env: dict[str, str] | None = None):
        return subprocess.run(
            [sys.executable, str(root / GENERATORS / f"{script}.py"), *args],
            cwd=root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env or clean_env(),
        )

    return run


@pytest.fixture
def tree_state():
    """What git sees as changed or new, plus the lock's bytes."""

    def state(root: Path) -> str:
        porcelain = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return porcelain + (root / "uv.lock").read_text()

    return state
