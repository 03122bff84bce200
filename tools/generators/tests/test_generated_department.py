"""A department made only by the generators passes its own tests, lint, check and run:
an ingestion -> processing -> analysis chain, each category doing its stage's job."""

import json
import subprocess
import sys

import pytest
import yaml
from airnub_platform.testing import OWNED

DEPT = "dept_generated"
GENERATE = [
    ("add_department", "--id", "generated", "--name", 'Generated "QA" {team}', *OWNED),
    ("add_category", "--department", DEPT, "--stage", "ingestion", "--id", "weather_feed"),
    ("add_category", "--department", DEPT, "--stage", "processing", "--id", "daily_totals"),
    ("add_category", "--department", DEPT, "--stage", "analysis", "--id", "trend_report",
     "--with-subflows"),
    ("add_task", "--department", DEPT, "--stage", "ingestion", "--category", "weather_feed",
     "--id", "count_outputs", "--with-config"),
    ("add_task", "--department", DEPT, "--stage", "analysis", "--id", "stage_summary"),
]  # fmt: skip


@pytest.fixture(scope="module")
def generated(new_copy, env_for_copy):
    clean_env = env_for_copy
    root = new_copy("generated")
    for script, *args in GENERATE:
        done = subprocess.run(
            [sys.executable, f"tools/generators/{script}.py", *args],
            cwd=root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=clean_env(),
        )
        assert done.returncode == 0, f"{script}: {done.stderr}"
    sync = ["uv", "sync", "--all-packages", "--locked", "--quiet"]
    subprocess.run(sync, cwd=root, check=True, env=clean_env())

    def run(*command: str):
        return subprocess.run(
            ["uv", "run", "--no-sync", *command],
            cwd=root,
            capture_output=True,
            text=True,
            env=clean_env(AIRNUB_DATA_ROOT=str(root / "data")),
        )

    return root, run


def test_its_tests_pass(generated):
    _, run = generated
    done = run("pytest", "-q", f"packages/{DEPT}")
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout


def test_ruff_is_clean(generated):
    _, run = generated
    for command in (["check", "tools", "packages"], ["format", "--check", "tools", "packages"]):
        done = run("ruff", *command)
        assert done.returncode == 0, done.stdout + done.stderr


def test_its_types_check(generated):
    """Every template, as generated (a task with its config included), passes the
    workspace's type checker: department authors start from 0 errors."""
    _, run = generated
    done = run("basedpyright", f"packages/{DEPT}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 errors" in done.stdout


def test_airnub_check_is_clean(generated):
    _, run = generated
    done = run("airnub", "check", DEPT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 department, 3 categories" in " ".join(done.stdout.split())


def test_airnub_run_works(generated):
    """Each stage's real output: the download, the checked table, the report."""
    root, run = generated
    done = run("airnub", "run", DEPT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert 'Generated "QA" {team}: all stages completed' in done.stdout
    data = root / "data" / DEPT
    assert (data / "ingestion" / "weather_feed" / "example.csv").is_file()
    assert (data / "processing" / "daily_totals" / "table.csv").read_text() == (
        "id,name,value\n1,first,10.0\n2,second,20.0\n3,third,30.0\n"
    )
    assert json.loads((data / "processing" / "daily_totals" / "rejected.json").read_text()) == []
    report = (data / "analysis" / "trend_report" / "report.md").read_text()
    assert "3 rows read from processing/daily_totals table.csv." in report
    assert "| id | 1.0 | 2.0 | 3.0 |" in report
    assert "| value | 10.0 | 20.0 | 30.0 |" in report


def test_the_task_made_with_config_runs_in_its_category_flow(generated):
    """add_task --with-config wired count_outputs into weather_feed's flow: its setting
    decides whether the category's run passes."""
    root, run = generated
    config = root / f"packages/{DEPT}/src/{DEPT}/configs/variables/ingestion/weather_feed"
    original = (config / "count_outputs.yaml").read_text()
    (config / "count_outputs.yaml").write_text("min_files: 99\n")
    try:
        done = run("airnub", "run", DEPT, "ingestion", "--category", "weather_feed")
    finally:
        (config / "count_outputs.yaml").write_text(original)
    assert done.returncode != 0
    assert "2 files written, fewer than min_files=99" in done.stdout + done.stderr


def test_docker_compose_gets_a_valid_worker_service(generated):
    """In the shape of the others: the shared worker settings and build-args, its image."""
    root, run = generated
    text = (root / "docker-compose.yml").read_text()
    assert "  worker-dept-generated:\n    <<: *worker" in text
    compose = yaml.safe_load(text)
    worker = compose["services"]["worker-dept-generated"]
    assert worker["image"] == "${AIRNUB_REGISTRY:-airnub}/dept-generated:${AIRNUB_IMAGE_TAG:-local}"
    assert worker["build"]["args"] == {**compose["x-build-args"], "DEPARTMENT": DEPT}
    schema = ["check-jsonschema", "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"]
    done = run(*schema)
    assert done.returncode == 0, done.stdout + done.stderr
