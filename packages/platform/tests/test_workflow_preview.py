"""The preview workflow's structure: when each job runs, what it may touch, and that its
command lines are ones the real `airnub` accepts (run through bash with a recording `uv`)."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import typer
import yaml
from airnub_platform.cli import app
from airnub_platform.github_expressions import render, truth
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[3]  # packages/platform/tests/ -> the workspace
WORKFLOWS = ROOT / ".github" / "workflows"
PREVIEW = yaml.safe_load((WORKFLOWS / "preview.yml").read_text())
JOBS: dict[str, dict] = PREVIEW["jobs"]
BASE_SHA = "0123456789abcdef0123456789abcdef01234567"
OPENING = ["opened", "synchronize", "reopened"]


def triggers(workflow: dict) -> dict:
    return workflow.get("on") or workflow[True]  # YAML 1.1 reads a bare `on` key as True


def context(action: str, head_repository: str = "org/repo", number: object = 7) -> dict:
    return {
        "github.event_name": "pull_request",
        "github.event.action": action,
        "github.repository": "org/repo",
        "github.event.pull_request.head.repo.full_name": head_repository,
        "github.event.pull_request.number": number,
        "github.event.pull_request.base.sha": BASE_SHA,
        "secrets.PREFECT_API_URL": "http://127.0.0.1:9/api",
        "secrets.PREFECT_API_KEY": "pnu_not-a-real-key",
    }


def runs(job: str, ctx: dict) -> bool:
    return truth(JOBS[job].get("if"), ctx)


def the_step(job: str, pattern: str) -> dict:
    (step,) = [s for s in JOBS[job]["steps"] if re.search(pattern, s.get("run", ""))]
    return step


def test_it_runs_on_pull_requests_only_never_pull_request_target():
    assert triggers(PREVIEW) == {"pull_request": {"types": [*OPENING, "closed"]}}
    for workflow in WORKFLOWS.glob("*.y*ml"):
        loaded = yaml.safe_load(workflow.read_text())
        assert "pull_request_target" not in triggers(loaded), workflow.name


@pytest.mark.parametrize("action", OPENING)
def test_a_push_deploys_previews_and_removes_nothing(action):
    assert runs("deploy", context(action)) and not runs("remove", context(action))


def test_closing_removes_and_deploys_nothing():
    assert runs("remove", context("closed")) and not runs("deploy", context("closed"))


@pytest.mark.parametrize("action", [*OPENING, "closed"])
def test_a_forks_pull_request_gets_no_job(action):
    """A fork's run gets no secrets: it would fail, so it is not started."""
    assert not any(runs(job, context(action, head_repository="fork/repo")) for job in JOBS)


def test_permissions_are_read_only_and_secrets_come_from_the_environment_only():
    assert PREVIEW["permissions"] == {}
    for name, job in JOBS.items():
        assert job["permissions"] == {"contents": "read"}, name
        assert job["environment"] == "preview", name
        assert job["timeout-minutes"] <= 15, name
    used = set(re.findall(r"secrets\.(\w+)", (WORKFLOWS / "preview.yml").read_text()))
    assert used == {"PREFECT_API_URL", "PREFECT_API_KEY"}


def test_runs_of_one_pull_request_queue_and_are_never_cancelled():
    concurrency = PREVIEW["concurrency"]
    assert concurrency["cancel-in-progress"] is False
    assert render(concurrency["group"], context("closed", number=7)) == "preview-7"


def test_checkouts_keep_no_token_and_removal_runs_the_base_branchs_code():
    for name, job in JOBS.items():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
    (checkout,) = [s for s in JOBS["remove"]["steps"] if "checkout" in s.get("uses", "")]
    assert render(checkout["with"]["ref"], context("closed")) == BASE_SHA
    assert "--no-dev --package airnub-platform" in the_step("remove", r"uv sync")["run"]


def test_every_action_is_pinned_as_ci_pins_it():
    pins = re.findall(r"uses: (\S+@\S+ # v[\d.]+)", (WORKFLOWS / "preview.yml").read_text())
    assert pins and set(pins) <= set(re.findall(r"uses: (\S+@\S+ # v[\d.]+)", ci_text()))


def ci_text() -> str:
    return (WORKFLOWS / "ci.yml").read_text()


@pytest.fixture
def recorded(tmp_path):
    """Run a step's script through bash with its env rendered for ``ctx`` and a `uv` first
    on PATH that records its arguments: (result, the arguments given to uv)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uv").write_text('#!/bin/sh\nfor a; do printf "%s\\0" "$a"; done > "$UV_ARGS"\n')
    (bin_dir / "uv").chmod(0o755)
    args = tmp_path / "uv_args"

    def run(step: dict, ctx: dict):
        env = {key: render(value, ctx) for key, value in step.get("env", {}).items()}
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "UV_ARGS": str(args),
                 **env},
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        called = args.read_text().split("\0")[:-1] if args.exists() else None
        return done, called

    return run


def accepted(arguments: list[str]) -> None:
    """Parse ``arguments`` as the real `airnub` would, running nothing."""
    command = typer.main.get_command(app)
    with command.make_context("airnub", list(arguments)) as ctx:
        sub = command.get_command(ctx, arguments[0])  # type: ignore[attr-defined]
        assert sub is not None
        sub.make_context(arguments[0], arguments[1:], parent=ctx)


def test_a_push_deploys_the_affected_departments_as_this_prs_previews(recorded):
    done, called = recorded(the_step("deploy", r"airnub deploy"), context("synchronize"))
    assert done.returncode == 0, done.stderr
    assert called == [
        "run", "--no-sync", "airnub", "deploy", "--affected", "--base", BASE_SHA,
        "--preview", "pr-7", "--env", "staging", "--prune",
    ]  # fmt: skip
    accepted(called[3:])


@pytest.mark.usefixtures("prefect_api")
def test_closing_removes_this_prs_previews_with_a_command_that_works(recorded):
    done, called = recorded(the_step("remove", r"airnub retire"), context("closed", number=987654))
    assert done.returncode == 0, done.stderr
    assert called == ["run", "--no-sync", "airnub", "retire", "--preview", "pr-987654"]
    result = CliRunner().invoke(app, called[3:])  # against the session's real server
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "pr-987654: nothing to remove"


@pytest.mark.parametrize("job", sorted(JOBS))
def test_a_hostile_pull_request_number_is_one_argument_and_refused_in_one_line(
    recorded, job, tmp_path
):
    hostile = "7 $(touch pwned); --prune"
    step = the_step(job, r"airnub (deploy|retire)")
    done, called = recorded(step, context("synchronize", number=hostile))
    assert done.returncode == 0 and called is not None
    assert f"pr-{hostile}" in called
    assert not (tmp_path / "pwned").exists()  # the step's working directory
    result = CliRunner().invoke(app, called[3:])
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1, result.output
    assert "--preview: preview 'pr-7 $(touch pwned); --prune' must be pr-<N>" in result.output
