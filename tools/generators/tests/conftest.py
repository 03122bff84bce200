"""A throwaway copy of the repository, as a git repo, for the generators to write into."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
GENERATORS = Path("tools") / "generators"


def tracked_files(root: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in listed.stdout.split("\0") if name and (root / name).is_file()]


def copy_repository(target: Path) -> Path:
    for name in tracked_files(REPO):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=target, check=True)
    subprocess.run([*git, "add", "-A"], cwd=target, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=target, check=True)
    return target


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for commands in the copy: its own venv, not the one running pytest."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    return {**env, **extra}


@pytest.fixture(scope="session")
def new_copy(tmp_path_factory: pytest.TempPathFactory):
    """Make a fresh copy of the repository: ``new_copy("name") -> Path``."""
    return lambda name: copy_repository(tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def repo_copy(new_copy) -> Path:
    return new_copy("repo")


@pytest.fixture(scope="session")
def env_for_copy():
    return clean_env


@pytest.fixture
def generate(repo_copy: Path):
    """Run a generator in the copy with stdin closed; returns the finished process."""

    def run(script: str, *args: str, env: dict[str, str] | None = None, root: Path = repo_copy):
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
