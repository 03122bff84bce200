"""remove_category.py and remove_task.py: each the exact reverse of its add_ twin."""

import subprocess
from pathlib import Path

import pytest
from airnub_platform.testing import OWNED, generate

DEPT = "dept_pruned"
IN_DEPT = ["--department", DEPT]


@pytest.fixture(scope="module")
def workspace(new_copy) -> Path:
    root = new_copy("remove-category")
    generate(root, "add_department", "--id", DEPT, "--name", "Pruned Team", *OWNED)
    generate(root, "add_category", *IN_DEPT, "--stage", "ingestion", "--id", "feed")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", DEPT], cwd=root, check=True)
    return root


def test_adding_then_removing_a_category_and_tasks_leaves_the_tree_as_it_was(
    workspace, run_generator, tree_state
):
    before = tree_state(workspace)
    src = workspace / "packages" / DEPT / "src" / DEPT
    category = [*IN_DEPT, "--stage", "analysis", "--id", "trends"]
    task = [*IN_DEPT, "--stage", "analysis", "--category", "trends", "--id", "count_rows"]
    source = [*IN_DEPT, "--stage", "ingestion", "--id", "extra"]
    generate(workspace, "add_category", *category, "--with-subflows", "--reads", "ingestion/feed")
    generate(workspace, "add_category", *source)
    generate(workspace, "add_task", *task, "--with-config")  # wired into the trends flow
    overlay = src / "configs" / "variables" / "analysis" / "trends.prod.yaml"
    overlay.write_text("{}\n")
    stage_task = [*IN_DEPT, "--stage", "analysis", "--id", "stage_summary"]
    generate(workspace, "add_task", *stage_task)
    # A hand-made category of the same id as ingestion/feed in another stage: removing
    # it must leave the sample data that ingestion/feed reads.
    twin = [*IN_DEPT, "--stage", "processing", "--id", "feed"]
    (src / "processing" / "feed").mkdir()
    (src / "processing" / "feed" / "__init__.py").write_text("")

    listed = run_generator(workspace, "remove_category", *category, "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert f"remove packages/{DEPT}/src/{DEPT}/analysis/trends/ (" in listed.stdout
    assert "trends.prod.yaml" in listed.stdout
    listed = run_generator(workspace, "remove_category", *twin, "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert "sample_data" not in listed.stdout  # ingestion/feed still reads it

    for script, args in [("remove_task", task), ("remove_task", stage_task),
                         ("remove_category", category), ("remove_category", twin)]:  # fmt: skip
        done = run_generator(workspace, script, *args)
        assert done.returncode == 0, done.stderr
    assert (src / "sample_data" / "feed" / "example.csv").is_file()
    done = run_generator(workspace, "remove_category", *source)
    assert done.returncode == 0, done.stderr
    assert f"removed packages/{DEPT}/src/{DEPT}/sample_data/extra/" in done.stdout
    assert tree_state(workspace) == before


CASES = [
    ("remove_category", [*IN_DEPT, "--stage", "ingestion", "--id", "nope"],
     "--id: unknown ingestion category of dept_pruned 'nope'; valid: feed"),
    ("remove_category", [*IN_DEPT, "--stage", "loading", "--id", "feed"], "--stage: unknown stage"),
    ("remove_category", ["--department", "dept_nope", "--stage", "ingestion", "--id", "feed"],
     "--department: unknown department 'dept_nope'"),
    ("remove_category", [*IN_DEPT, "--stage", "ingestion", "--id", "../feed"], "must be lowercase"),
    ("remove_task", [*IN_DEPT, "--stage", "ingestion", "--id", "nope"],
     "--id: unknown task of dept_pruned ingestion 'nope'"),
    ("remove_task", [*IN_DEPT, "--stage", "ingestion", "--category", "nope", "--id", "x"],
     "--category: unknown ingestion category of dept_pruned 'nope'"),
]  # fmt: skip


@pytest.mark.parametrize(("script", "args", "message"), CASES)
def test_refused_with_one_line_and_no_trace(
    workspace, run_generator, tree_state, script, args, message
):
    before = tree_state(workspace)
    done = run_generator(workspace, script, *args)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: ") and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert tree_state(workspace) == before


def test_a_deployed_category_and_a_used_task_are_refused(workspace, run_generator, tree_state):
    before = tree_state(workspace)
    prefect_yaml = workspace / "packages" / DEPT / "prefect.yaml"
    saved = prefect_yaml.read_text()
    prefect_yaml.write_text(
        saved + f"  - name: feed\n    entrypoint: {DEPT}.ingestion.feed.x_flow_{DEPT}:x\n"
    )
    try:
        done = run_generator(workspace, "remove_category", *IN_DEPT, "--stage", "ingestion",
                             "--id", "feed")  # fmt: skip
    finally:
        prefect_yaml.write_text(saved)
    assert done.returncode == 1
    assert "prefect.yaml: deployments[3] deploys it; remove that entry first" in done.stderr

    generate(workspace, "add_task", *IN_DEPT, "--stage", "ingestion", "--id", "tally")
    flow = next((workspace / "packages" / DEPT / "src" / DEPT / "ingestion" / "feed").glob("*.py"))
    original = flow.read_text()
    flow.write_text(original + f"# from ..tasks.tally_task_{DEPT} import tally\n")
    try:
        done = run_generator(workspace, "remove_task", *IN_DEPT, "--stage", "ingestion",
                             "--id", "tally")  # fmt: skip
    finally:
        flow.write_text(original)
    assert done.returncode == 1
    assert f"uses tally_task_{DEPT}; remove that use first" in done.stderr
    assert run_generator(workspace, "remove_task", *IN_DEPT, "--stage", "ingestion",
                         "--id", "tally").returncode == 0  # fmt: skip
    assert tree_state(workspace) == before


def test_a_category_that_another_reads_or_a_remaining_test_imports_is_refused(
    workspace, run_generator, tree_state
):
    before = tree_state(workspace)
    reader = [*IN_DEPT, "--stage", "processing", "--id", "reader"]
    generate(workspace, "add_category", *reader, "--reads", "ingestion/feed")
    read = run_generator(
        workspace, "remove_category", *IN_DEPT, "--stage", "ingestion", "--id", "feed"
    )
    assert read.returncode == 1
    assert read.stderr == (
        "error: --id: processing/reader reads ingestion/feed manifest.json; remove that"
        " category or change its contract first\n"
    )
    keeper = workspace / "packages" / DEPT / "tests" / "test_keeper.py"
    keeper.write_text(f"from {DEPT}.processing.reader import tasks\n")
    imported = run_generator(workspace, "remove_category", *reader)
    assert imported.returncode == 1
    assert imported.stderr == (
        f"error: --id: packages/{DEPT}/tests/test_keeper.py imports {DEPT}.processing.reader;"
        " remove or change it first\n"
    )
    keeper.unlink()
    assert run_generator(workspace, "remove_category", *reader).returncode == 0
    assert tree_state(workspace) == before
