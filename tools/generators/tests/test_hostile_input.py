"""Refusals: each is one line on stderr naming the argument, exit 1, and no trace left."""

import pytest

ALPHA = ["--department", "dept_project_alpha"]
CASES = [
    ("add_department", ["--id", "class"], "--id: department id 'class' is a Python keyword"),
    ("add_department", ["--id", "../x"], "--id: department id '../x' must be lowercase"),
    ("add_department", ["--id", "Dept-Foo"], "--id: department id 'Dept-Foo' must be lowercase"),
    ("add_department", ["--id", "café"], "must be lowercase snake_case"),
    ("add_department", ["--id", ""], "--id: department id is empty"),
    ("add_department", ["--id", "x" * 300], "longer than 40 characters"),
    ("add_department", ["--id", "a/b"], "must be lowercase snake_case"),
    ("add_department", ["--id", "project_alpha"], "packages/dept_project_alpha already exists"),
    ("add_department", ["--id", "gamma", "--name", "A/B"], "--name: display name 'A/B' may not"),
    ("add_department", ["--id", "gamma", "--name", " "], "--name: display name is empty"),
    ("add_department", ["--id", "gamma", "--name", "Project Alpha"], "already the name of"),
    ("add_department", [], "--id is required (stdin is not a terminal, so no prompt)"),
    ("add_category", [*ALPHA, "--stage", "loading", "--id", "x"], "--stage: unknown stage"),
    ("add_category", ["--department", "dept_nope", "--stage", "ingestion", "--id", "x"],
     "--department: unknown department 'dept_nope'; valid: dept_project_alpha"),
    ("add_category", [*ALPHA, "--stage", "ingestion", "--id", "tasks"], "'tasks' is reserved"),
    ("add_category", [*ALPHA, "--stage", "ingestion", "--id", "processing"], "is reserved"),
    ("add_category", [*ALPHA, "--stage", "ingestion", "--id", "public_api_data"],
     "ingestion/public_api_data already exists"),
    ("add_category", [*ALPHA, "--stage", "ingestion", "--id", "lambda"], "Python keyword"),
    ("add_category", [*ALPHA, "--stage", "ingestion", "--id", "ok", "--action", "Get"],
     "--action: identifier 'Get' must be lowercase"),
    ("add_category", [*ALPHA, "--stage", "ingestion"], "--id is required"),
    ("add_task", [*ALPHA, "--stage", "ingestion", "--category", "nope", "--id", "t"],
     "--category: unknown ingestion category of dept_project_alpha 'nope'"),
    ("add_task", [*ALPHA, "--stage", "analysis", "--id", "match"], "Python keyword"),
    ("add_task", [*ALPHA, "--stage", "ingestion", "--id", "calculate_ingest_metrics"],
     "calculate_ingest_metrics_task_dept_project_alpha.py already exists"),
    ("add_task", [*ALPHA, "--stage", "ingestion", "--id", "x", "--bogus"], "No such option"),
]  # fmt: skip


@pytest.mark.parametrize(("script", "args", "message"), CASES)
def test_refused_with_one_line_and_no_trace(generate, repo_copy, tree_state, script, args, message):
    before = tree_state(repo_copy)
    done = generate(script, *args)
    assert done.returncode != 0
    assert done.returncode in (1, 2)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ")
    assert message in done.stderr
    assert tree_state(repo_copy) == before


def test_quotes_and_braces_in_a_display_name_compile(generate, repo_copy, tree_state):
    before = tree_state(repo_copy)
    done = generate("add_department", "--id", "quoted", "--name", 'Team "Q" {x}\\', "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "create packages/dept_quoted/pyproject.toml" in done.stdout
    assert tree_state(repo_copy) == before


def test_a_failure_after_writing_undoes_everything(generate, repo_copy, tree_state, monkeypatch):
    """With no uv on PATH, `uv lock` cannot run: the new package and the root edit go."""
    before = tree_state(repo_copy)
    env = {"PATH": "/nonexistent", "HOME": str(repo_copy)}
    done = generate("add_department", "--id", "doomed", env=env)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: uv is not on PATH; install it with `pip install uv`"
    assert not (repo_copy / "packages" / "dept_doomed").exists()
    assert tree_state(repo_copy) == before
