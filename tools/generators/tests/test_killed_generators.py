"""A generator killed outright (SIGKILL: no handler runs) leaves its journal; the next
generator, any of them, undoes the run before its commit point or finishes it after,
says which, and then does its own work.

Each kill is real: a `uv` shim on PATH stops at a chosen subcommand (``lock``, the
last step before the commit point, or ``pip``, the uninstall after it) until the
generator is killed, and dies with it (the generator's children get PDEATHSIG)."""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airnub_platform.testing import OWNED, clean_env, generate

DEPT = "dept_victim"
NAME = "Victim Team"
JOURNAL = ".airnub-generator-journal"


@pytest.fixture(scope="module")
def workspace(new_copy) -> Path:
    """A copy holding ``dept_victim`` (added by the generator), committed."""
    root = new_copy("killed")
    generate(root, "add_department", "--id", DEPT, "--name", NAME, *OWNED)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", DEPT], cwd=root, check=True)
    return root


def state(root: Path) -> str:
    """Everything git sees (ignored files too, so a journal or parking folder shows) and
    the bytes and modes of the files the generators edit."""
    porcelain = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored"],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    edited = ("pyproject.toml", "uv.lock", "docker-compose.yml", ".github/CODEOWNERS")
    files = "".join(f"{(root / n).stat().st_mode:o}{(root / n).read_text()}" for n in edited)
    return porcelain + files


def without_journal(state: str) -> str:
    return "".join(line for line in state.splitlines(True) if not line.startswith(f"!! {JOURNAL}/"))


def lock_is_current(root: Path) -> bool:
    check = ["uv", "lock", "--check", "--offline", "--quiet"]
    return subprocess.run(check, cwd=root, env=clean_env(), timeout=120).returncode == 0


@pytest.fixture
def shim(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose `uv` stops at the subcommand named in ``stop_at`` (if that
    file exists), after touching ``stopped``; every other call runs the real uv."""
    real = shutil.which("uv")
    stopped, stop_at = tmp_path / "stopped", tmp_path / "stop_at"
    fake = tmp_path / "bin" / "uv"
    fake.parent.mkdir()
    fake.write_text(
        f'#!/bin/sh\nif [ -e {stop_at} ] && [ "$1" = "$(cat {stop_at})" ]; then\n'
        f"  touch {stopped}\n  exec sleep 600\nfi\n"
        f'if [ "$1" = pip ]; then exit 0; fi\n'  # never touch the test's own environment
        f'exec {real} "$@"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return clean_env(PATH=f"{fake.parent}:{os.environ['PATH']}"), tmp_path


def kill_at(root: Path, shim, subcommand: str, script: str, *args: str) -> None:
    """Run ``script`` until it calls `uv <subcommand>`, then SIGKILL it."""
    env, folder = shim
    (folder / "stop_at").write_text(subcommand)
    command = [sys.executable, str(root / "tools" / "generators" / f"{script}.py"), *args]
    process = subprocess.Popen(command, cwd=root, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (folder / "stopped").exists():
            assert process.poll() is None, f"{script} ended before `uv {subcommand}`"
            assert time.monotonic() < deadline, f"{script} never reached `uv {subcommand}`"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    (folder / "stop_at").unlink()
    (folder / "stopped").unlink()


def run(root: Path, script: str, *args: str, env: dict[str, str] | None = None):
    command = [sys.executable, str(root / "tools" / "generators" / f"{script}.py"), *args]
    return subprocess.run(command, cwd=root, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=env or clean_env(), timeout=600)  # fmt: skip


def test_an_adder_killed_in_uv_lock_is_undone_by_the_next_generator(workspace, shim):
    before = state(workspace)
    kill_at(workspace, shim, "lock", "add_department", "--id", "intruder", *OWNED)
    assert (workspace / "packages" / "dept_intruder").is_dir()  # what it left: the package,
    assert "dept-intruder" in (workspace / "pyproject.toml").read_text()  # the root edits
    assert (workspace / JOURNAL / "journal.json").is_file()  # and its journal

    done = run(workspace, "remove_department", "--id", "intruder")
    assert done.stdout.splitlines()[0] == (
        "note: undid an interrupted add_department --id intruder --owner @airnub-tests/owners"
        " --alerts '#airnub-test-alerts': removed packages/dept_intruder/; restored"
        " pyproject.toml, docker-compose.yml, .github/CODEOWNERS"
    )
    assert done.returncode == 1  # its own work: there is nothing of that name to remove
    assert done.stderr.strip() == (
        "error: --id: unknown department 'dept_intruder'; valid: "
        + ", ".join(sorted(p.name for p in (workspace / "packages").glob("dept_*")))
    )
    assert state(workspace) == before
    assert lock_is_current(workspace)


def test_a_remover_killed_in_uv_lock_is_undone_by_the_next_generator(workspace, shim):
    before = state(workspace)
    kill_at(workspace, shim, "lock", "remove_department", "--id", DEPT)
    assert not (workspace / "packages" / DEPT).exists()  # parked, with the root files edited
    assert len(list(workspace.glob(".airnub-removing-*"))) == 1

    done = run(workspace, "add_department", "--id", DEPT, "--name", NAME, *OWNED)
    assert done.stdout.splitlines()[0] == (
        f"note: undid an interrupted remove_department --id {DEPT}: put back"
        f" packages/{DEPT}/; restored pyproject.toml, docker-compose.yml, .github/CODEOWNERS"
    )
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: --id: packages/{DEPT} already exists"
    assert state(workspace) == before
    assert lock_is_current(workspace)


def test_a_remover_killed_after_its_commit_point_is_finished(workspace, shim):
    """Killed while uninstalling (after `uv lock` succeeded): the next run deletes what
    it had set aside, uninstalls, and then does its own work, here adding it again."""
    before = state(workspace)
    venv = workspace / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)  # so that it uninstalls (the shim's pip)
    try:
        kill_at(workspace, shim, "pip", "remove_department", "--id", DEPT)
        assert len(list(workspace.glob(".airnub-removing-*"))) == 1
        assert DEPT.replace("_", "-") not in (workspace / "uv.lock").read_text()

        done = run(workspace, "add_department", "--id", DEPT, "--name", NAME, *OWNED, env=shim[0])
    finally:
        shutil.rmtree(workspace / ".venv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"note: finished an interrupted remove_department --id {DEPT}: deleted"
        f" packages/{DEPT} (set aside); uninstalled {DEPT.replace('_', '-')}"
    )
    assert f"created packages/{DEPT}/pyproject.toml" in done.stdout
    assert state(workspace) == before  # removed, then added again exactly as it was
    assert lock_is_current(workspace)


def write_journal(root: Path, record: object, log: str) -> None:
    folder = root / JOURNAL
    folder.mkdir()
    text = record if isinstance(record, str) else json.dumps(record)
    (folder / "journal.json").write_text(text)
    (folder / "log").write_text(log)


@pytest.mark.parametrize(
    ("record", "log", "message"),
    [
        ("{not json", "", f"{JOURNAL}/journal.json: unreadable (Expecting property name"),
        ({"command": ["x"]}, "", f"{JOURNAL}/journal.json: unreadable (no 'uninstall' field)"),
        ({"command": ["x"], "edits": [{"path": "../outside", "backup": None, "mode": None}],
          "uninstall": []}, "", "'../outside' is outside what a generator writes"),
        ({"command": ["x"], "edits": [], "uninstall": []}, '["mkdir", "/etc"]\n',
         f"{JOURNAL}/log: line 1 unreadable ('/etc' is outside what a generator writes)"),
        ({"command": ["x"], "edits": [], "uninstall": []}, '["rm", "-rf"]\n',
         f"{JOURNAL}/log: line 1 unreadable (not a step this version writes)"),
        ({"command": ["x"], "edits": [{"path": "uv.lock", "backup": "backup-0", "mode": 420}],
          "uninstall": []}, "", "its backup of uv.lock is missing"),
        ({"command": ["x"], "edits": [], "uninstall": []}, '["create", ".venv/bin/python"]\n',
         "'.venv/bin/python' is outside what a generator writes"),
        ({"command": ["x"], "edits": [], "uninstall": ["prefect"]}, "",
         "unreadable (department 'prefect' must start with 'dept_')"),
    ],
)  # fmt: skip
def test_a_journal_that_cannot_be_trusted_is_one_line_naming_it(workspace, record, log, message):
    before = state(workspace)
    write_journal(workspace, record, log)
    try:
        done = run(workspace, "remove_department", "--id", DEPT)
        after = state(workspace)
    finally:
        shutil.rmtree(workspace / JOURNAL)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert without_journal(after) == before  # acted on nothing


def test_a_journal_cannot_reach_outside_through_a_symlink_nor_set_a_setuid_mode(
    workspace, tmp_path
):
    outside = tmp_path / "outside"
    (outside / "victim").mkdir(parents=True)
    (outside / "victim" / "f").write_text("keep")
    (workspace / "escape").symlink_to(outside)
    hostile = [
        ({"command": ["x"], "edits": [{"path": "escape/pwned", "backup": "backup-0",
                                       "mode": 0o644}], "uninstall": []}, ""),
        ({"command": ["x"], "edits": [], "uninstall": []}, '["mkdir", "escape/victim"]\n'),
        ({"command": ["x"], "edits": [{"path": "uv.lock", "backup": "backup-0",
                                       "mode": 0o4755}], "uninstall": []}, ""),
    ]  # fmt: skip
    try:
        for record, log in hostile:
            write_journal(workspace, record, log)
            (workspace / JOURNAL / "backup-0").write_text("PWNED")
            try:
                done = run(workspace, "remove_department", "--id", DEPT)
            finally:
                shutil.rmtree(workspace / JOURNAL)
            assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
            assert "symlink" in done.stderr or "no plain file mode" in done.stderr
        assert sorted(p.name for p in outside.rglob("*")) == ["f", "victim"]
        assert (workspace / "uv.lock").stat().st_mode & 0o7000 == 0
    finally:
        (workspace / "escape").unlink()


def test_a_last_log_line_cut_short_by_the_kill_was_never_acted_on(workspace):
    """The log is written before each step: a torn last line names a step not taken."""
    before = state(workspace)
    made = workspace / "packages" / "dept_half"
    made.mkdir()
    (made / "stray.txt").write_text("written by the killed run\n")
    record = {"command": ["add_department", "--id", "half"], "edits": [], "uninstall": []}
    write_journal(workspace, record, '["mkdir", "packages/dept_half"]\n["create", "packages/de')
    done = run(workspace, "add_task", "--department", "dept_nope", "--stage", "ingestion",
               "--id", "t")  # fmt: skip
    assert done.stdout.strip() == (
        "note: undid an interrupted add_department --id half: removed packages/dept_half/"
    )
    assert done.returncode == 1 and "unknown department 'dept_nope'" in done.stderr
    assert state(workspace) == before


def test_a_dry_run_refuses_while_a_journal_waits_and_changes_nothing(workspace):
    before = state(workspace)
    record = {"command": ["remove_task", "--id", "x"], "edits": [], "uninstall": []}
    write_journal(workspace, record, "")
    try:
        done = run(workspace, "remove_department", "--id", DEPT, "--dry-run")
        after = state(workspace)
    finally:
        shutil.rmtree(workspace / JOURNAL)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: an interrupted remove_task --id x left {JOURNAL}/; run a generator without"
        " --dry-run to undo it first"
    )
    assert without_journal(after) == before
