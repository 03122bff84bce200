"""A root file the generators cannot read or edit, and a target they cannot write, are
each one line on stderr naming the file, exit 1, and nothing half-written.

Permissions are real: as root, the generator runs without the capabilities that let
root write anywhere (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so a read-only folder is
read-only to it as to anyone."""

import ctypes
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from airnub_platform.testing import OWNED, clean_env, generate

DEPT = "dept_sturdy"
NEW = ["add_department", "--id", "broken_probe", *OWNED]
CATEGORY = ["add_category", "--department", DEPT, "--stage", "ingestion", "--id", "feed"]
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


@pytest.fixture(scope="module")
def workspace(new_copy) -> Path:
    root = new_copy("broken")
    generate(root, "add_department", "--id", DEPT, "--name", "Sturdy Team", *OWNED)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", DEPT], cwd=root, check=True)
    return root


def state(root: Path) -> str:
    porcelain = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored"],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return porcelain + (root / "uv.lock").read_text()


def unprivileged() -> None:
    """In the child, before exec: root's permission bypass goes (it keeps the rest)."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run(root: Path, script: str, *args: str):
    command = [sys.executable, str(root / "tools" / "generators" / f"{script}.py"), *args]
    return subprocess.run(command, cwd=root, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=clean_env(), timeout=600,
                          preexec_fn=unprivileged)  # fmt: skip


@contextmanager
def replaced(path: Path, content: bytes) -> Iterator[None]:
    saved = path.read_bytes()
    path.write_bytes(content)
    try:
        yield
    finally:
        path.write_bytes(saved)


@contextmanager
def mode(path: Path, bits: int) -> Iterator[None]:
    saved = path.stat().st_mode
    path.chmod(bits)
    try:
        yield
    finally:
        path.chmod(saved)


def assert_refused(root: Path, done, message: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (root / ".airnub-generator-journal").exists()


REPO_PYPROJECT = (Path(__file__).resolve().parents[3] / "pyproject.toml").read_text()
NO_SOURCES = REPO_PYPROJECT.replace("[tool.uv.sources]\n", "[tool.uv.not-sources]\n")

ROOT_FILES = [
    ("pyproject.toml", b"[project\n", NEW, "pyproject.toml: not valid TOML"),
    ("pyproject.toml", b"\xff\xfe[project]\n", NEW, "pyproject.toml: not UTF-8 text (byte 0)"),
    ("pyproject.toml", b'[tool.uv.sources]\nx = { workspace = true }\n', NEW,
     "pyproject.toml: no [project] dependencies = [...] to edit"),
    ("pyproject.toml", b'[project]\nname = "x"\n\n[tool.uv.sources]\n', NEW,
     "pyproject.toml: no [project] dependencies = [...] to edit"),
    ("pyproject.toml", NO_SOURCES.encode(), NEW,
     "pyproject.toml: no [tool.uv.sources] table to add dept-broken-probe to"),
    ("pyproject.toml", b"[project]\nname = 'x'\ndependencies = []\n[tool]\nuv = 1\n", NEW,
     "pyproject.toml: no [tool.uv.sources] table to add dept-broken-probe to"),
    ("docker-compose.yml", b"services: [\n", NEW, "docker-compose.yml: not valid YAML ("),
    ("docker-compose.yml", b"- a\n- b\n", NEW, "docker-compose.yml: no top-level 'services:'"),
    ("docker-compose.yml", b"services:\n  x: {}\n\tbad: tab\n", ["remove_department", "--id",
     DEPT], "docker-compose.yml: not valid YAML (found character '\\t' that cannot start"),
    ("docker-compose.yml", b"volumes:\n  data:\nservices:\n  x: {}\nvolumes:\n  y:\n", NEW,
     "docker-compose.yml: could not add the worker-dept-broken-probe service; add it by hand"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "args", "message"), ROOT_FILES)
def test_a_root_file_it_cannot_edit_is_named(workspace, name, content, args, message):
    before = state(workspace)
    with replaced(workspace / name, content):
        done = run(workspace, *args)
        assert (workspace / name).read_bytes() == content
    assert_refused(workspace, done, message)
    assert state(workspace) == before


@pytest.mark.parametrize(
    ("target", "bits", "args", "message"),
    [
        ("uv.lock", 0o444, NEW, "uv.lock: read-only; refusing to replace it"),
        ("pyproject.toml", 0o444, NEW, "pyproject.toml: read-only; refusing to replace it"),
        ("docker-compose.yml", 0o444, ["remove_department", "--id", DEPT],
         "docker-compose.yml: read-only; refusing to replace it"),
        ("packages", 0o555, NEW,
         "packages/: not writable, so packages/dept_broken_probe/"),
        (f"packages/{DEPT}/src/{DEPT}/ingestion", 0o555, CATEGORY,
         f"packages/{DEPT}/src/{DEPT}/ingestion/: not writable, so"),
        (".", 0o555, ["remove_department", "--id", DEPT], "not writable"),
        ("pyproject.toml", 0o000, NEW, "pyproject.toml: Permission denied"),
    ],
)  # fmt: skip
def test_an_unwritable_target_is_named_before_any_change(workspace, target, bits, args, message):
    before = state(workspace)
    with mode(workspace / target, bits):
        done = run(workspace, *args)
    assert_refused(workspace, done, message)
    assert state(workspace) == before


def test_a_failure_midway_through_writing_undoes_what_was_written(workspace):
    """A file where add_category needs a folder (sample_data/): it has already made the
    category's folder and staged its files when the mkdir fails. All of it goes."""
    before = state(workspace)
    sample = workspace / "packages" / DEPT / "src" / DEPT / "sample_data"
    sample.write_text("a file where a folder belongs\n")
    try:
        done = run(workspace, *CATEGORY)
    finally:
        sample.unlink()
    assert_refused(workspace, done, f"packages/{DEPT}/src/{DEPT}/sample_data/feed: Not a"
                   " directory; nothing was changed")  # fmt: skip
    assert state(workspace) == before
