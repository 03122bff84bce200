"""remove_department.py: the exact reverse of add_department.py, all or nothing."""

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airnub_core.testing import clean_env, generate

DEPT = "dept_roundtrip"


@pytest.fixture(scope="module")
def workspace(new_copy) -> tuple[Path, str]:
    """A copy with ``dept_roundtrip`` added by the generator; also its state before that."""
    root = new_copy("remove")
    before = state(root)
    generate(root, "add_department", "--id", DEPT, "--name", "Round Trip")
    generate(root, "add_category", "--department", DEPT, "--stage", "ingestion", "--id", "feed")
    return root, before


def state(root: Path) -> str:
    """Every tracked and untracked file's status, and the bytes of the files it edits."""
    porcelain = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    edited = ("pyproject.toml", "uv.lock", "docker-compose.yml")
    return porcelain + "".join((root / name).read_text() for name in edited)


def remover(root: Path) -> list[str]:
    return [sys.executable, str(root / "tools" / "generators" / "remove_department.py")]


def remove(root: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run([*remover(root), *args], cwd=root, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=env or clean_env())  # fmt: skip


def test_a_dry_run_lists_everything_and_writes_nothing(workspace):
    root, _ = workspace
    added = state(root)
    files = sum(1 for p in (root / "packages" / DEPT).rglob("*") if p.is_file())
    done = remove(root, "--id", "roundtrip", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"remove packages/{DEPT}/ ({files} files)",
        "edit   docker-compose.yml",
        "edit   pyproject.toml",
    ]
    assert state(root) == added


def test_a_department_another_depends_on_is_refused(workspace):
    root, _ = workspace
    added = state(root)
    user = root / "packages" / "dept_user"
    user.mkdir()
    (user / "pyproject.toml").write_text(
        '[project]\nname = "dept-user"\ndependencies = ["Dept_Roundtrip>=0.1"]\n'
    )
    try:
        done = remove(root, "--id", DEPT)
    finally:
        (user / "pyproject.toml").unlink()
        user.rmdir()
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: --id: packages/dept_user/pyproject.toml depends on dept-roundtrip;"
        " remove that dependency first"
    )
    assert state(root) == added


def test_a_failed_uv_lock_puts_everything_back(workspace):
    root, _ = workspace
    added = state(root)
    done = remove(root, "--id", DEPT, env={"PATH": "/nonexistent", "HOME": str(root)})
    assert done.returncode == 1
    assert done.stderr.strip() == "error: uv is not on PATH; install it with `pip install uv`"
    assert state(root) == added
    assert (root / "packages" / DEPT / "pyproject.toml").is_file()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_uv_lock_puts_everything_back(workspace, tmp_path, signum):
    """A `uv` that hangs: the signal arrives while the folder is moved aside and the
    root files are edited, which is the worst moment."""
    root, _ = workspace
    added = state(root)
    started = tmp_path / "started"
    fake = tmp_path / "bin" / "uv"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ntouch {started}\nexec sleep 60\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = clean_env(PATH=f"{fake.parent}:{os.environ['PATH']}")
    process = subprocess.Popen([*remover(root), "--id", DEPT], cwd=root, env=env, text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the fake uv never started"
            time.sleep(0.05)
        assert not (root / "packages" / DEPT).exists()  # moved aside at this point
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert stderr.strip() == (
        f"error: interrupted ({signal.Signals(signum).name}); nothing was changed"
    )
    assert state(root) == added
    assert not list(root.glob(".airnub-removing-*"))


def test_adding_then_removing_leaves_the_tree_as_it_was(workspace):
    root, before = workspace
    done = remove(root, "--id", "roundtrip")
    assert done.returncode == 0, done.stderr
    assert f"removed packages/{DEPT}/" in done.stdout
    assert f"uv run airnub retire {DEPT}" in done.stdout
    assert state(root) == before
    assert not list(root.glob(".airnub-removing-*"))
