"""remove_department.py: the exact reverse of add_department.py, all or nothing."""

import fcntl
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airnub_platform.testing import OWNED, SCRATCH_DEPARTMENTS, clean_env, generate

DEPT = "dept_roundtrip"


@pytest.fixture(scope="module")
def workspace(new_copy) -> tuple[Path, str]:
    """A copy with ``dept_roundtrip`` added by the generator; also its state before that."""
    root = new_copy("remove")
    before = state(root)
    generate(root, "add_department", "--id", DEPT, "--name", "Round Trip", *OWNED)
    generate(root, "add_category", "--department", DEPT, "--stage", "ingestion", "--id", "feed")
    return root, before


def state(root: Path) -> str:
    """Every tracked and untracked file's status, and the bytes of the files it edits."""
    porcelain = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    edited = ("pyproject.toml", "uv.lock", "docker-compose.yml", ".github/CODEOWNERS")
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
        "edit   .github/CODEOWNERS",
        "edit   docker-compose.yml",
        "edit   pyproject.toml",
        "edit   uv.lock (uv lock)",
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
    assert process.returncode == 128 + signum  # 130, 143, 129, as a shell reports them
    assert stderr.strip() == (
        f"error: interrupted ({signal.Signals(signum).name}); nothing was changed"
    )
    assert state(root) == added
    assert not list(root.glob(".airnub-removing-*"))


def test_a_removed_department_leaves_the_environment_too(scratch_root):
    """The scratch workspace installed the repository's departments, then removed them
    with the generator: its environment lists only the departments it added."""
    listed = subprocess.run([str(scratch_root / ".venv" / "bin" / "airnub"), "list"],
                            cwd=scratch_root, capture_output=True, text=True)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    shown = {line.split()[1] for line in listed.stdout.splitlines() if line[:1] in "└├"}
    assert shown == set(SCRATCH_DEPARTMENTS)


def test_one_generator_at_a_time(workspace):
    root, _ = workspace
    added = state(root)
    with open(root / ".airnub-generators.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        done = remove(root, "--id", DEPT)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: another generator is running in {root}; try again when it has finished"
    )
    assert state(root) == added


def test_what_an_interrupted_remover_parked_must_be_dealt_with_first(workspace):
    root, _ = workspace
    parked = root / ".airnub-removing-x1"
    parked.mkdir()
    (parked / "MANIFEST").write_text(f"0\tpackages/{DEPT}\n")
    try:
        done = remove(root, "--id", DEPT)
    finally:
        (parked / "MANIFEST").unlink()
        parked.rmdir()
    assert done.returncode == 1
    assert done.stderr.startswith("error: .airnub-removing-x1 holds what an interrupted remover")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("[project\n", "pyproject.toml: not valid TOML"),
        ('[project]\nname = "x"\n', "pyproject.toml: no [project] dependencies = [...] to edit"),
    ],
)
def test_a_root_pyproject_it_cannot_edit_is_named(workspace, broken, message):
    root, _ = workspace
    saved = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(broken)
    try:
        done = remove(root, "--id", DEPT)
        assert done.returncode == 1
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert (root / "packages" / DEPT).is_dir()
        assert (root / "pyproject.toml").read_text() == broken
    finally:
        (root / "pyproject.toml").write_text(saved)


def test_a_hand_edited_compose_service_is_refused_not_mangled(workspace):
    root, _ = workspace
    added = state(root)
    compose = root / "docker-compose.yml"
    saved = compose.read_text()
    service = "  worker-dept-roundtrip:\n    <<: *worker\n"
    compose.write_text(saved.replace(service, f"{service}# pinned\n    labels: {{team: x}}\n"))
    try:
        done = remove(root, "--id", DEPT)
    finally:
        compose.write_text(saved)
    assert done.returncode == 1
    assert (
        "docker-compose.yml: the worker-dept-roundtrip service is not as add_department wrote"
        in done.stderr
    )
    assert state(root) == added


def test_a_signal_after_the_commit_point_lets_it_finish(workspace, tmp_path):
    """Once the lock is rewritten the removal is done: a SIGTERM then (here sent by the
    `uv pip uninstall` that follows) must not leave a half-finished cleanup behind."""
    root, before = workspace
    fake = tmp_path / "bin" / "uv"
    fake.parent.mkdir()
    real = shutil.which("uv")
    fake.write_text(f'#!/bin/sh\nif [ "$1" = pip ]; then kill -TERM $PPID; exit 0; fi\n'
                    f'exec {real} "$@"\n')  # fmt: skip
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    (root / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    (root / ".venv" / "bin" / "python").symlink_to(sys.executable)  # so it uninstalls
    env = clean_env(PATH=f"{fake.parent}:{os.environ['PATH']}")
    try:
        done = remove(root, "--id", DEPT, env=env)
    finally:
        shutil.rmtree(root / ".venv")
    assert done.returncode == 0, done.stderr
    assert f"removed packages/{DEPT}/" in done.stdout
    assert not list(root.glob(".airnub-removing-*"))
    assert state(root) == before
    generate(
        root, "add_department", "--id", DEPT, "--name", "Round Trip", *OWNED
    )  # for the tests after
    generate(root, "add_category", "--department", DEPT, "--stage", "ingestion", "--id", "feed")


def test_edited_files_keep_their_mode_and_new_ones_get_the_umasks(workspace):
    root, _ = workspace
    umask = os.umask(0)
    os.umask(umask)
    created = root / "packages" / DEPT / "pyproject.toml"
    assert stat.S_IMODE(created.stat().st_mode) == 0o666 & ~umask
    for name in ("pyproject.toml", "docker-compose.yml"):  # copied with the checkout's mode
        source = Path(__file__).resolve().parents[3] / name
        assert stat.S_IMODE((root / name).stat().st_mode) == stat.S_IMODE(source.stat().st_mode)


def test_adding_then_removing_leaves_the_tree_as_it_was(workspace):
    root, before = workspace
    done = remove(root, "--id", "roundtrip")
    assert done.returncode == 0, done.stderr
    assert f"removed packages/{DEPT}/" in done.stdout
    assert f"uv run airnub retire {DEPT}" in done.stdout
    assert state(root) == before
    assert not list(root.glob(".airnub-removing-*"))
