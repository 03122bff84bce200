"""The `plan` job of ci.yml and the nightly drift workflow: when they run, what they may
read, and what their shell steps do, run for real by bash with a stand-in `uv` on PATH
that records its arguments (the commands themselves are tested in test_plan*.py and
test_drift.py)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from airnub_platform.github_expressions import truth

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = ROOT / ".github" / "workflows"
CI = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
DRIFT = yaml.safe_load((WORKFLOWS / "drift.yml").read_text())
PLAN = CI["jobs"]["plan"]
NIGHTLY = DRIFT["jobs"]["drift"]
SHA = "0123456789abcdef0123456789abcdef01234567"


def triggers(workflow):
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True


def context(event, any_="true", deleted="[]"):
    return {
        "github.event_name": event,
        "needs.detect.outputs.any": any_,
        "needs.detect.outputs.deleted": deleted,
    }


@pytest.mark.parametrize(
    ("event", "any_", "deleted", "expected"),
    [
        ("pull_request", "true", "[]", True),
        ("pull_request", "false", '["dept_gone"]', True),
        ("pull_request", "false", "[]", False),  # docs only: nothing to plan
        ("push", "true", "[]", False),
        ("merge_group", "true", "[]", False),
        ("workflow_dispatch", "true", "[]", False),
    ],
)
def test_plan_runs_on_pull_requests_that_change_a_department(event, any_, deleted, expected):
    assert truth(PLAN["if"], context(event, any_, deleted)) is expected


def secrets_named(job):
    return set(re.findall(r"secrets\.(\w+)", yaml.safe_dump(job)))


@pytest.mark.parametrize("job", [PLAN, NIGHTLY], ids=["plan", "drift"])
def test_only_a_read_token_and_read_permissions(job):
    assert job["permissions"] == {"contents": "read"}
    assert "environment" not in job  # no deploy secret is in reach
    assert secrets_named(job) == {"PREFECT_READ_API_KEY"}
    checkouts = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts and all(s["with"]["persist-credentials"] is False for s in checkouts)


def test_plan_diffs_against_the_pull_requests_base():
    (step,) = [s for s in PLAN["steps"] if "airnub plan" in s.get("run", "")]
    assert step["env"]["BASE"] == "${{ github.event.pull_request.base.sha }}"
    checkout = PLAN["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0


def test_the_drift_workflow_runs_nightly_and_by_hand_only():
    assert set(triggers(DRIFT)) == {"schedule", "workflow_dispatch"}
    assert DRIFT["permissions"] == {}
    assert DRIFT["concurrency"]["cancel-in-progress"] is False
    assert 0 < NIGHTLY["timeout-minutes"] <= 30


def test_the_drift_workflow_pins_the_actions_ci_pins():
    pins = set(re.findall(r"uses: ([\w./-]+@\w+ # v[\d.]+)", (WORKFLOWS / "ci.yml").read_text()))
    used = re.findall(r"uses: (.+)", (WORKFLOWS / "drift.yml").read_text())
    assert used and set(used) <= pins, used


# --- the steps' shell, run for real -------------------------------------------------------


def step_script(job, command):
    (step,) = [s for s in job["steps"] if command in s.get("run", "")]
    return step["run"]


def run_step(tmp_path, script, uv_exit=0, env=None):
    """Run ``script`` as Actions does (bash -e), with a `uv` that records its arguments,
    prints a report and exits ``uv_exit``. Returns (exit code, summary, uv's arguments)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    fake = bin_dir / "uv"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {calls}\necho "## the report"\n'
                    f"exit {uv_exit}\n")  # fmt: skip
    fake.chmod(0o755)
    summary = tmp_path / "summary.md"
    summary.write_text("")
    variables = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_SHA": SHA,
        "GITHUB_REPOSITORY_OWNER": "Acme-Data",
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
        "PREFECT_API_KEY": "pnu_read_only",
        "POOL_TYPE": "process",
        "AIRNUB_REGISTRY": "",
        "BASE": SHA,
        **(env or {}),
    }
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=variables,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    args = calls.read_text().splitlines() if calls.exists() else None
    return done.returncode, summary.read_text(), args


def test_plan_writes_its_markdown_to_the_summary(tmp_path):
    code, summary, args = run_step(tmp_path, step_script(PLAN, "airnub plan"))
    assert code == 0 and "## the report" in summary
    expected = ["run", "--no-sync", "airnub", "plan", "--base", SHA, "--env", "prod",
                "--format", "markdown", "--pool-type", "process"]  # fmt: skip
    assert args == expected


def test_plan_pins_the_image_publish_would_push(tmp_path):
    script = step_script(PLAN, "airnub plan")
    _, _, args = run_step(tmp_path, script, env={"POOL_TYPE": "docker"})
    assert args is not None and args[-4:] == ["--registry", "ghcr.io/acme-data", "--tag", SHA]


@pytest.mark.parametrize("missing", ["PREFECT_API_URL", "PREFECT_API_KEY"])
def test_a_pull_request_without_the_read_token_passes_and_says_so(tmp_path, missing):
    code, summary, args = run_step(tmp_path, step_script(PLAN, "airnub plan"), env={missing: ""})
    assert (code, args) == (0, None)
    assert "PREFECT_READ_API_KEY" in summary


def test_a_failing_plan_fails_the_job(tmp_path):
    code, _, _ = run_step(tmp_path, step_script(PLAN, "airnub plan"), uv_exit=1)
    assert code == 1


@pytest.mark.parametrize("status", [0, 1, 2])
def test_the_nightly_step_keeps_drifts_exit_code_and_its_report(tmp_path, status):
    code, summary, args = run_step(tmp_path, step_script(NIGHTLY, "airnub drift"), uv_exit=status)
    assert code == status and "## the report" in summary
    assert args is not None and args[2:8] == ["airnub", "drift", "--env", "prod", "--format",
                                              "markdown"]  # fmt: skip


def test_the_nightly_step_without_its_token_is_an_error(tmp_path):
    code, _, args = run_step(
        tmp_path, step_script(NIGHTLY, "airnub drift"), env={"PREFECT_API_KEY": ""}
    )
    assert (code, args) == (2, None)


# --- the repository's own workflow checks -------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["actionlint"],
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows",
         str(WORKFLOWS / "ci.yml"), str(WORKFLOWS / "drift.yml")],
        ["zizmor", "--offline", "--min-severity", "low", str(WORKFLOWS)],
    ],
    ids=lambda command: command[0],
)  # fmt: skip
def test_the_workflows_pass_the_checks_ci_runs(command):
    tool = Path(sys.executable).with_name(command[0])
    done = subprocess.run([str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
