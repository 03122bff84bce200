"""Refusals: each is one line on stderr naming the argument, exit 1, and no trace left.

They are tried against a workspace holding only a department of the test's own."""

import subprocess
from pathlib import Path

import pytest
from airnub_platform.testing import OWNED, generate, scratch_workspace

REPO = Path(__file__).resolve().parents[3]
DEPT = "dept_fixture"
IN_DEPT = ["--department", DEPT]


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only ``dept_fixture`` ("Fixture Team"): an ingestion category ``feed`` and a stage
    task ``count_rows``, committed so that any trace a refusal leaves shows up in git."""
    root = tmp_path_factory.mktemp("repo")
    scratch_workspace(root, {DEPT: "Fixture Team"}, {"ingestion": ["feed"]}, source=REPO)
    generate(root, "add_task", *IN_DEPT, "--stage", "ingestion", "--id", "count_rows")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "a stage task"], cwd=root, check=True)
    return root


CASES = [
    ("add_department", ["--id", "class"], "--id: department id 'class' is a Python keyword"),
    ("add_department", ["--id", "../x"], "--id: department id '../x' must be lowercase"),
    ("add_department", ["--id", "Dept-Foo"], "--id: department id 'Dept-Foo' must be lowercase"),
    ("add_department", ["--id", "café"], "must be lowercase snake_case"),
    ("add_department", ["--id", ""], "--id: department id is empty"),
    ("add_department", ["--id", "x" * 300], "longer than 40 characters"),
    ("add_department", ["--id", "a/b"], "must be lowercase snake_case"),
    ("add_department", ["--id", "fixture"], "packages/dept_fixture already exists"),
    ("add_department", ["--id", "gamma", "--name", "A/B"], "--name: display name 'A/B' may not"),
    ("add_department", ["--id", "gamma", "--name", " "], "--name: display name is empty"),
    ("add_department", ["--id", "gamma", "--name", "Fixture Team"],
     "--name: 'Fixture Team' is already the name of dept_fixture"),
    ("add_department", [], "--id is required (stdin is not a terminal, so no prompt)"),
    ("add_category", [*IN_DEPT, "--stage", "loading", "--id", "x"], "--stage: unknown stage"),
    ("add_category", ["--department", "dept_nope", "--stage", "ingestion", "--id", "x"],
     "--department: unknown department 'dept_nope'; valid: dept_fixture"),
    ("add_category", [*IN_DEPT, "--stage", "ingestion", "--id", "tasks"], "'tasks' is reserved"),
    ("add_category", [*IN_DEPT, "--stage", "ingestion", "--id", "processing"], "is reserved"),
    ("add_category", [*IN_DEPT, "--stage", "ingestion", "--id", "feed"],
     "ingestion/feed already exists"),
    ("add_category", [*IN_DEPT, "--stage", "ingestion", "--id", "lambda"], "Python keyword"),
    ("add_category", [*IN_DEPT, "--stage", "ingestion", "--id", "ok", "--action", "Get"],
     "--action: identifier 'Get' must be lowercase"),
    ("add_category", [*IN_DEPT, "--stage", "ingestion"], "--id is required"),
    ("add_task", [*IN_DEPT, "--stage", "ingestion", "--category", "nope", "--id", "t"],
     "--category: unknown ingestion category of dept_fixture 'nope'"),
    ("add_task", [*IN_DEPT, "--stage", "analysis", "--id", "match"], "Python keyword"),
    ("add_task", [*IN_DEPT, "--stage", "ingestion", "--id", "count_rows"],
     "count_rows_task_dept_fixture.py already exists"),
    ("add_task", [*IN_DEPT, "--stage", "ingestion", "--id", "x", "--bogus"], "No such option"),
    ("remove_department", ["--id", "nope"],
     "--id: unknown department 'dept_nope'; valid: dept_fixture"),
    ("remove_department", ["--id", "../fixture"], "--id: department id '../fixture' must be"),
    ("remove_department", ["--id", "core"], "--id: unknown department 'dept_core'"),
    ("remove_department", [], "--id is required (stdin is not a terminal, so no prompt)"),
]  # fmt: skip


@pytest.mark.parametrize(("script", "args", "message"), CASES)
def test_refused_with_one_line_and_no_trace(
    run_generator, repo_copy, tree_state, script, args, message
):
    before = tree_state(repo_copy)
    done = run_generator(repo_copy, script, *args)
    assert done.returncode != 0
    assert done.returncode in (1, 2)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ")
    assert message in done.stderr
    assert tree_state(repo_copy) == before


def test_quotes_and_braces_in_a_display_name_compile(run_generator, repo_copy, tree_state):
    before = tree_state(repo_copy)
    name = 'Team "Q" {x}\\'
    done = run_generator(
        repo_copy, "add_department", "--id", "quoted", "--name", name, "--dry-run", *OWNED
    )
    assert done.returncode == 0, done.stderr
    assert "create packages/dept_quoted/pyproject.toml" in done.stdout
    assert tree_state(repo_copy) == before


def test_a_failure_after_writing_undoes_everything(run_generator, repo_copy, tree_state):
    """With no uv on PATH, `uv lock` cannot run: the new package and the root edit go."""
    before = tree_state(repo_copy)
    env = {"PATH": "/nonexistent", "HOME": str(repo_copy)}
    done = run_generator(repo_copy, "add_department", "--id", "doomed", *OWNED, env=env)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: uv is not on PATH; install it with `pip install uv`"
    assert not (repo_copy / "packages" / "dept_doomed").exists()
    assert tree_state(repo_copy) == before
