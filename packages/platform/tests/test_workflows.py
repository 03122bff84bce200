"""The CI/CD workflow's structure: what runs for which change, and what gates a deploy.

There is no GitHub here, so job and step `if`s are evaluated by a small translator of
the expression forms the workflow uses, with outputs from the real `airnub affected`.
"""

import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from airnub_platform.affected import KINDS, read_workspace
from airnub_platform.cli import app
from airnub_platform.github_expressions import render, truth
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[3]  # packages/platform/tests/ -> the workspace
WORKFLOWS = ROOT / ".github" / "workflows"
CI = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
JOBS: dict[str, dict] = CI["jobs"]
TRIGGERS = CI.get("on", CI.get(True))  # YAML 1.1 reads a bare `on` key as True


def run_text(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def steps_using(action: str) -> list[tuple[str, dict]]:
    """(job, step) of every step that runs ``action`` (owner/name)."""
    return [
        (name, step)
        for name, job in JOBS.items()
        for step in job.get("steps", [])
        if step.get("uses", "").startswith(f"{action}@")
    ]


BUILD_ACTION = "docker/build-push-action"
IMAGE_ACTIONS = (BUILD_ACTION, "docker/setup-buildx-action", "docker/login-action")
# Jobs behind the deploy gate (they read an environment's secrets): publish, deploy, retire.
DEPLOYS = {name for name, job in JOBS.items() if "environment" in job}
PUBLISHES = {name for name, step in steps_using(BUILD_ACTION) if step["with"].get("push")}
RETIRES = {name for name, job in JOBS.items() if "airnub retire" in run_text(job)}
ABSENT = {name for name, job in JOBS.items() if "airnub retire --absent" in run_text(job)}
PYTHON_TESTS = {
    name for name, job in JOBS.items() if re.search(r"pytest|template_user\.py", run_text(job))
}


# --- contexts -----------------------------------------------------------------------
def outputs(**overrides: object) -> dict[str, str]:
    values = {"any": "false", "deleted": "[]", "deleted_unknown": "false"}
    values.update(dict.fromkeys(KINDS, "false"))
    values.update({k: v if isinstance(v, str) else str(v).lower() for k, v in overrides.items()})
    return values


def context(event: str, detected: dict[str, str], **extra: object) -> dict[str, object]:
    found: dict[str, object] = {
        "github.event_name": event,
        "github.ref": "refs/heads/main" if event != "pull_request" else "refs/pull/1/merge",
        **{f"needs.detect.outputs.{k}": v for k, v in detected.items()},
        **{f"steps.affected.outputs.{k}": v for k, v in detected.items()},
        "needs.ci-ok.result": "success",
    }
    found.update(extra)
    return found


def runs(job: str, ctx: dict[str, object]) -> bool:
    return truth(JOBS[job].get("if"), ctx)


def needs(job: str) -> set[str]:
    value = JOBS[job].get("needs", [])
    return {value} if isinstance(value, str) else set(value)


def all_needs(job: str) -> set[str]:
    found = set()
    for parent in needs(job):
        found |= {parent, *all_needs(parent)}
    return found


def step_running(pattern: str) -> tuple[str, dict]:
    """(job, step) of the one step whose command matches ``pattern``."""
    hits = [
        (name, step)
        for name, job in JOBS.items()
        for step in job.get("steps", [])
        if re.search(pattern, step.get("run", ""))
    ]
    assert len(hits) == 1, f"{pattern}: {[name for name, _ in hits]}"
    return hits[0]


# --- the deploy gate ----------------------------------------------------------------
def test_there_is_a_deploy_a_retire_and_a_publish_job():
    assert DEPLOYS and RETIRES and RETIRES <= DEPLOYS and PUBLISHES == {"publish"} <= DEPLOYS
    assert all("airnub deploy" in run_text(JOBS[j]) for j in DEPLOYS - RETIRES - PUBLISHES)


@pytest.mark.parametrize("job", sorted(DEPLOYS))
def test_a_deploy_needs_ci_ok_and_runs_only_after_it_passed(job):
    assert "ci-ok" in all_needs(job)
    detected = outputs(any=True, deleted='["dept_gone"]', deleted_unknown=True)
    assert runs(job, context("push", detected))
    if job not in ABSENT:  # a manual run retires nothing it was not told to
        dispatch = context("workflow_dispatch", detected, **{"inputs.environment": "prod"})
        assert runs(job, dispatch)
    for result in ("failure", "cancelled", "skipped"):
        assert not runs(job, context("push", detected, **{"needs.ci-ok.result": result}))


@pytest.mark.parametrize("job", sorted(DEPLOYS))
@pytest.mark.parametrize("event", ["pull_request", "merge_group", "push"])
def test_no_deploy_on_pull_requests_the_merge_queue_or_other_branches(job, event):
    for any_, deleted, unknown in itertools.product(
        ["true", "false"], ['["dept_gone"]', "[]"], ["true", "false"]
    ):
        ctx = context(event, outputs(any=any_, deleted=deleted, deleted_unknown=unknown))
        if event == "push":
            ctx["github.ref"] = "refs/heads/feature"
        assert not runs(job, ctx)


@pytest.mark.parametrize("job", sorted(DEPLOYS))
def test_prod_is_deployed_by_hand_only_from_main(job):
    detected = outputs(any=True, deleted='["dept_gone"]', deleted_unknown=True)
    ctx = context("workflow_dispatch", detected, **{"inputs.environment": "prod"})
    ctx["github.ref"] = "refs/heads/feature"
    assert not runs(job, ctx)
    assert runs(job, {**ctx, "inputs.environment": "staging"}) is (job not in ABSENT)


def test_the_deploy_step_prunes_what_prefect_yaml_no_longer_lists():
    _, step = step_running(r"airnub deploy")
    assert re.search(r'airnub deploy "\$DEPARTMENT" --env "\$TARGET" --prune\b', step["run"])


# Bounds, so a hung API or test ends the run; the deploy jobs hold a queue per department.
TIMEOUTS = {"detect": 10, "test": 30, "core": 30, "ci-ok": 5, "publish": 20}


@pytest.mark.parametrize("job", sorted(JOBS))
def test_every_job_has_a_timeout(job):
    minutes = JOBS[job].get("timeout-minutes")
    assert isinstance(minutes, int) and 0 < minutes <= 30, (job, minutes)
    assert minutes == TIMEOUTS.get(job, 10 if job in DEPLOYS else minutes)


def test_manual_runs_name_a_department_and_a_target():
    inputs = TRIGGERS["workflow_dispatch"]["inputs"]
    assert inputs["department"]["required"] is True
    assert set(inputs["environment"]["options"]) == {"staging", "prod"}
    assert "pull_request" in TRIGGERS and TRIGGERS["push"]["branches"] == ["main"]


@pytest.mark.parametrize("job", sorted(DEPLOYS - PUBLISHES))
def test_deploys_queue_per_department_and_are_never_cancelled(job):
    concurrency = JOBS[job]["concurrency"]
    assert "matrix.department" in concurrency["group"] or job in ABSENT
    assert concurrency["cancel-in-progress"] is False
    assert "secrets.PREFECT_API_KEY" in json.dumps(JOBS[job]["steps"])


def test_runs_on_main_are_never_cancelled_by_the_next_push():
    cancel = CI["concurrency"]["cancel-in-progress"]
    for event, expected in [("push", False), ("workflow_dispatch", False), ("pull_request", True)]:
        assert truth(cancel, {"github.event_name": event}) is expected


def test_permissions_are_granted_per_job_and_only_publish_writes_packages():
    assert CI["permissions"] == {}
    for name, job in JOBS.items():
        granted = job.get("permissions", {})
        if name in PUBLISHES:
            assert granted == {"contents": "read", "packages": "write"}
        else:
            assert set(granted.values()) <= {"read"}, name


def test_every_action_is_pinned_by_commit_with_its_version_named():
    for job in JOBS.values():
        for step in job.get("steps", []):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    lines = [line for line in (WORKFLOWS / "ci.yml").read_text().splitlines() if "uses:" in line]
    for line in lines:
        assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line
    # One version of an action throughout the file.
    pins = set(re.findall(r"uses: ([\w./-]+)@(\w+)", "\n".join(lines)))
    assert len(dict(pins)) == len(pins), sorted(pins)


def test_no_checkout_leaves_the_token_in_the_work_tree():
    for name, step in steps_using("actions/checkout"):
        assert step["with"]["persist-credentials"] is False, name


# --- retiring removed departments ---------------------------------------------------
@pytest.mark.parametrize("job", sorted(RETIRES - ABSENT))
def test_each_deleted_department_is_retired_and_an_empty_list_is_guarded(job):
    assert "needs.detect.outputs.deleted" in json.dumps(JOBS[job]["strategy"]["matrix"])
    assert 'airnub retire "$DEPARTMENT"' in run_text(JOBS[job])
    assert "--no-dev --package airnub-platform" in run_text(JOBS[job])
    assert runs(job, context("push", outputs(deleted='["dept_gone"]')))
    assert not runs(job, context("push", outputs(any=True, deleted="[]")))


def test_with_no_usable_base_departments_absent_from_the_lock_are_retired():
    """`deleted` is [] when the base is unknown: the absent ones are found on the server."""
    (job,) = ABSENT
    assert "--no-dev --package airnub-platform" in run_text(JOBS[job])
    assert JOBS[job]["environment"] == "prod"
    assert runs(job, context("push", outputs(deleted_unknown=True)))
    assert not runs(job, context("push", outputs(any=True, deleted='["dept_gone"]')))
    failed = context("push", outputs(deleted_unknown=True), **{"needs.ci-ok.result": "failure"})
    assert not runs(job, failed)


def test_detect_says_when_the_deleted_departments_are_unknown(change):
    assert change({"README.md": "more\n"})["deleted_unknown"] == "false"
    done = CliRunner().invoke(app, ["affected", "--format", "github"])  # no base
    assert (
        dict(line.split("=", 1) for line in done.stdout.splitlines())["deleted_unknown"] == "true"
    )
    selected = ["affected", "--select", Path(a_department_folder()).name, "--format", "github"]
    done = CliRunner().invoke(app, selected)
    assert "deleted_unknown=false" in done.stdout.splitlines(), done.output


def test_the_department_matrices_are_guarded_against_an_empty_list():
    for name, job in JOBS.items():
        matrix = json.dumps(job.get("strategy", {}).get("matrix", ""))
        if "needs.detect.outputs.matrix" in matrix:
            assert not runs(name, context("push", outputs(any=False))), name
            assert runs(name, context("push", outputs(any=True))), name


# --- the aggregate check ------------------------------------------------------------
def test_ci_ok_always_runs_and_needs_every_other_check():
    assert JOBS["ci-ok"]["if"] == "always()"
    assert needs("ci-ok") == set(JOBS) - DEPLOYS - {"ci-ok"}
    assert "failure|cancelled" in run_text(JOBS["ci-ok"])


def test_detect_exports_every_output_the_other_jobs_read():
    exported = set(JOBS["detect"]["outputs"])
    read = set(re.findall(r"needs\.detect\.outputs\.(\w+)", yaml.safe_dump(CI)))
    assert read <= exported
    assert {"matrix", "any", "deleted", *KINDS} <= exported


# --- each check runs for its kind of change -----------------------------------------
CHECKS = [
    ("docs", r"mkdocs build --strict"),
    ("workflows", r"actionlint"),
    ("containers", r"vendor\.compose-spec"),
    ("python", r"ruff check"),
    ("python", r"basedpyright"),
    ("python", r"lint-imports"),
]


@pytest.mark.parametrize(("kind", "pattern"), CHECKS)
def test_each_static_check_is_a_step_gated_on_its_kind(kind, pattern):
    job, step = step_running(pattern)
    assert job == "detect", "cheap checks are steps of the first job: no extra billed job"
    assert truth(step.get("if"), context("pull_request", outputs(**{kind: True})))
    assert not truth(step.get("if"), context("pull_request", outputs()))
    others = outputs(any=True, **{k: True for k in KINDS if k != kind})
    assert not truth(step.get("if"), context("pull_request", others))


def test_the_workflow_checks_match_the_local_ones():
    _, step = step_running(r"actionlint")
    for command in ("check-jsonschema --builtin-schema vendor.github-workflows", "zizmor"):
        assert command in step["run"]


def test_the_type_checker_runs_in_ci_and_locally():
    _, step = step_running(r"basedpyright")
    assert "uv run --no-sync basedpyright" in step["run"]
    assert "uv run --no-sync basedpyright" in (ROOT / ".ci" / "run").read_text()


def test_the_layer_contract_runs_in_ci_and_locally():
    _, step = step_running(r"lint-imports")
    assert step["run"] == "uv run --no-sync lint-imports"
    assert "uv run --no-sync lint-imports" in (ROOT / ".ci" / "run").read_text()


def test_the_core_job_runs_for_core_changes_only():
    job, _ = step_running(r"template_user\.py")
    assert runs(job, context("pull_request", outputs(core=True)))
    assert not runs(job, context("pull_request", outputs(any=True, docs=True, python=True)))


# --- with the real `airnub affected` ------------------------------------------------
@pytest.fixture
def change(tmp_path, monkeypatch):
    """A change to files over this repository's lock -> `airnub affected --format github`."""

    def outputs_for(files: dict[str, str]) -> dict[str, str]:
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
        shutil.copy(ROOT / "uv.lock", tmp_path / "uv.lock")
        (tmp_path / "README.md").write_text("start\n")
        subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
        subprocess.run([*git, "commit", "-qm", "base"], cwd=tmp_path, check=True)
        for path, text in files.items():
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text(text)
        subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
        subprocess.run([*git, "commit", "-qm", "change"], cwd=tmp_path, check=True)
        monkeypatch.chdir(tmp_path)
        done = CliRunner().invoke(app, ["affected", "--base", "HEAD~1", "--format", "github"])
        assert done.exit_code == 0, done.output
        return dict(line.split("=", 1) for line in done.stdout.splitlines())

    return outputs_for


def jobs_for(detected: dict[str, str]) -> set[str]:
    """The jobs a pull request with these `detect` outputs runs."""
    return {job for job in JOBS if runs(job, context("pull_request", detected))}


def a_department_folder() -> str:
    workspace = read_workspace((ROOT / "uv.lock").read_text())
    if not workspace.departments:
        pytest.skip("this workspace has no department")
    return sorted(workspace.departments.values())[0]


def test_a_docs_only_change_runs_no_python_test_job(change):
    docs = {"README.md": "more\n", "docs/index.md": "# more\n", "mkdocs.yml": "x: 1\n"}
    ran = jobs_for(change(docs))
    assert PYTHON_TESTS and not ran & PYTHON_TESTS
    assert ran == {"detect", "ci-ok"}


def test_one_departments_change_runs_its_tests_and_not_core(change):
    ran = jobs_for(change({f"{a_department_folder()}/src/new_module.py": "VALUE = 1\n"}))
    assert ran == {"detect", "test", "plan", "ci-ok"}


def test_a_core_change_runs_core_and_every_department(change):
    workspace = read_workspace((ROOT / "uv.lock").read_text())
    core = workspace.paths["airnub-core"]
    detected = change({f"{core}/src/new_module.py": "VALUE = 1\n"})
    assert jobs_for(detected) >= {"detect", "core", "ci-ok"}
    assert detected["core"] == "true"
    include = json.loads(detected["matrix"])["include"]
    assert {entry["path"] for entry in include} == set(workspace.departments.values())


def test_the_workflows_name_no_department_of_this_repository():
    workspace = read_workspace((ROOT / "uv.lock").read_text())
    for workflow in WORKFLOWS.glob("*.y*ml"):
        text = workflow.read_text()
        for folder in workspace.departments.values():
            assert Path(folder).name not in text, workflow.name


@pytest.mark.parametrize("files", [{"Dockerfile": "FROM scratch\n"}, {".dockerignore": ".git\n"}])
def test_a_change_to_the_image_build_builds_and_publishes_every_department(change, files):
    workspace = read_workspace((ROOT / "uv.lock").read_text())
    detected = change(files)
    assert jobs_for(detected) == {"detect", "test", "plan", "ci-ok"}
    assert all(runs(job, context("push", detected)) for job in IMAGE_BUILDERS)
    include = json.loads(detected["matrix"])["include"]
    assert {entry["path"] for entry in include} == set(workspace.departments.values())


# --- images: built where tested, pushed after ci-ok, pinned by deploy ---------------
DETECT_MATRIX = "${{ fromJson(needs.detect.outputs.matrix) }}"
IMAGE_BUILDERS = {name for name, _ in steps_using(BUILD_ACTION)}
SHA = "0123456789abcdef0123456789abcdef01234567"


def step_index(job: str, predicate) -> int:
    (index,) = [i for i, step in enumerate(JOBS[job]["steps"]) if predicate(step)]
    return index


@pytest.mark.parametrize("action", IMAGE_ACTIONS)
def test_image_steps_run_only_in_jobs_over_detects_department_matrix(action):
    """An unaffected department is in no such matrix: its image is neither built nor pushed."""
    assert steps_using(action)
    for name, _ in steps_using(action):
        assert JOBS[name]["strategy"]["matrix"] == DETECT_MATRIX, name
        assert not runs(name, context("push", outputs(any=False))), name


def test_no_image_is_built_or_pushed_outside_the_build_action():
    command = re.compile(r"\b(docker|podman|buildah|nerdctl)\s+(\S+\s+)?(build|push)|skopeo|crane")
    for name, job in JOBS.items():
        assert not command.search(run_text(job)), name


@pytest.mark.parametrize(("name", "step"), steps_using(BUILD_ACTION))
def test_each_build_is_its_own_departments_from_the_root_with_its_own_cache(name, step):
    given = step["with"]
    assert (given["context"], given["build-args"]) == (".", "DEPARTMENT=${{ matrix.department }}")
    assert given["cache-from"] == "type=gha,scope=${{ matrix.package }}"
    assert "file" not in given  # the project's Dockerfile, the one `affected` watches


def test_the_test_job_builds_its_image_after_its_tests_and_caches_it_without_pushing():
    (job,) = IMAGE_BUILDERS - PUBLISHES
    assert job == "test" and job in needs("ci-ok")
    build = step_index(job, lambda step: step.get("uses", "").startswith(f"{BUILD_ACTION}@"))
    assert step_index(job, lambda step: "pytest" in step.get("run", "")) < build
    assert step_index(job, lambda step: "airnub check" in step.get("run", "")) < build
    given = JOBS[job]["steps"][build]["with"]
    assert given["push"] is False
    assert given["cache-to"] == "type=gha,scope=${{ matrix.package }},mode=max"


def test_publish_has_the_deploy_gate_and_pushes_the_commits_image_from_the_cache():
    (job,) = PUBLISHES
    assert needs(job) == {"detect", "ci-ok"} and "test" in all_needs(job)
    assert JOBS[job]["if"] == JOBS["deploy"]["if"]
    assert JOBS[job]["environment"] == JOBS["deploy"]["environment"]
    (given,) = [step["with"] for _, step in steps_using(BUILD_ACTION) if _ == job]
    assert given["push"] is True
    assert given["tags"] == "${{ steps.image.outputs.repository }}:${{ github.sha }}"
    assert "cache-to" not in given  # a push never writes the cache the pull requests read


def test_deploy_needs_publish_and_pins_the_registry_publish_pushed_to():
    assert "publish" in needs("deploy")
    _, step = step_running(r"airnub deploy")
    assert step["env"]["REGISTRY"] == "${{ needs.publish.outputs.registry }}"
    assert step["env"]["PUBLISHED"] == "${{ needs.publish.result }}"
    assert JOBS["publish"]["outputs"]["registry"] == "${{ steps.image.outputs.registry }}"


def test_the_run_token_goes_to_ghcr_only():
    logins = [step for _, step in steps_using("docker/login-action")]
    token = [step for step in logins if "GITHUB_TOKEN" in json.dumps(step)]
    assert len(token) == 1 and token[0]["with"]["registry"] == "ghcr.io"
    assert token[0]["if"] == "steps.image.outputs.login == 'github-token'"
    (other,) = [step for step in logins if step is not token[0]]
    assert other["with"]["password"] == "${{ secrets.REGISTRY_PASSWORD }}"
    assert other["if"] == "steps.image.outputs.login == 'environment-secrets'"
    assert json.dumps(CI).count("secrets.GITHUB_TOKEN") == 1


# --- the image and deploy steps' shell, run by bash as a runner would ---------------
def run_step(step: dict, ctx: Mapping[str, object], tmp_path: Path, **env: str):
    """Render ``step``'s env from ``ctx`` and run its script: (result, outputs written)."""
    output = tmp_path / "github_output"
    output.write_text("")
    rendered = {key: render(value, dict(ctx)) for key, value in step.get("env", {}).items()}
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(output), "GITHUB_SHA": SHA,
             "GITHUB_REPOSITORY_OWNER": "Some-Org", **rendered, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    lines = output.read_text().splitlines()
    return done, dict(line.split("=", 1) for line in lines)


def image_step() -> dict:
    (step,) = [s for s in JOBS["publish"]["steps"] if s.get("id") == "image"]
    return step


def image_context(registry: str = "", username: str = "", password: str = "") -> dict:
    return {
        "vars.AIRNUB_REGISTRY": registry,
        "matrix.package": "dept-scratch",
        "secrets.REGISTRY_USERNAME": username,
        "secrets.REGISTRY_PASSWORD": password,
    }


@pytest.mark.parametrize(
    ("registry", "secrets", "expected"),
    [
        ("", False, ("ghcr.io/some-org", "ghcr.io", "github-token")),
        ("ghcr.io/another-org", False, ("ghcr.io/another-org", "ghcr.io", "github-token")),
        ("ghcr.io/another-org", True, ("ghcr.io/another-org", "ghcr.io", "environment-secrets")),
        ("registry.example.com:5000/data/team_1", True,
         ("registry.example.com:5000/data/team_1", "registry.example.com:5000",
          "environment-secrets")),
        ("localhost:5000", True, ("localhost:5000", "localhost:5000", "environment-secrets")),
    ],
)  # fmt: skip
def test_the_image_is_named_registry_package_and_logged_in_to(
    tmp_path, registry, secrets, expected
):
    ctx = image_context(registry, *(["user", "hunter2"] if secrets else []))
    done, written = run_step(image_step(), ctx, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (written["registry"], written["host"], written["login"]) == expected
    assert written["repository"] == f"{expected[0]}/dept-scratch"


HOSTILE_REGISTRIES = [
    "Registry.Example.com/team",  # image names are lower case
    "registry.example.com/team/",
    "https://registry.example.com/team",
    "myorg",  # Docker Hub shorthand: no host to log in to
    "registry.example.com/a b",
    "registry.example.com/x;touch pwned",
    "registry.example.com/$(touch pwned)",
    "ghcr.io/x\nlogin=github-token",  # a second output line, smuggled
    "registry.example.com/team:latest",
    "registry.example.com//team",
]


@pytest.mark.parametrize("registry", HOSTILE_REGISTRIES)
def test_a_hostile_registry_variable_is_refused_in_one_line_and_nothing_is_written(
    tmp_path, registry
):
    done, written = run_step(image_step(), image_context(registry, "u", "p"), tmp_path)
    assert done.returncode == 1 and written == {}
    assert done.stdout.count("\n") == 1
    assert done.stdout.startswith("::error title=AIRNUB_REGISTRY::")
    assert registry not in done.stdout and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("registry", "username", "password", "field"),
    [
        ("registry.example.com/team", "", "", "REGISTRY_PASSWORD"),  # no token sent there
        ("", "user", "", "REGISTRY_USERNAME"),
        ("registry.example.com/team", "", "s3cret-value", "REGISTRY_USERNAME"),
    ],
)
def test_missing_registry_credentials_are_refused_naming_the_secret(
    tmp_path, registry, username, password, field
):
    done, written = run_step(image_step(), image_context(registry, username, password), tmp_path)
    assert done.returncode == 1 and written == {}
    assert done.stdout.count("\n") == 1 and done.stdout.startswith(f"::error title={field}::")
    assert "s3cret-value" not in done.stdout + done.stderr


# --- deploy: process pools keep entrypoints, image pools pin this commit's image -----
@pytest.fixture
def uv_stub(tmp_path):
    """A `uv` first on PATH that records its arguments, in place of the real deploy."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uv").write_text('#!/bin/sh\nfor a; do printf "%s\\0" "$a"; done > "$UV_ARGS"\n')
    (bin_dir / "uv").chmod(0o755)
    args = tmp_path / "uv_args"
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"

    def deploy(pool: str, published: str, registry: str, department: str = "dept_scratch"):
        _, step = step_running(r"airnub deploy")
        ctx = {
            "matrix.department": department,
            "github.event_name": "push",
            "vars.AIRNUB_WORK_POOL_TYPE": pool,
            "needs.publish.result": published,
            "needs.publish.outputs.registry": registry,
        }
        done, _ = run_step(step, ctx, tmp_path, PATH=path, UV_ARGS=str(args))
        called = args.read_text().split("\0")[:-1] if args.exists() else None
        return done, called

    return deploy


DEPLOYED = ["run", "--no-sync", "airnub", "deploy", "dept_scratch", "--env", "prod", "--prune"]


@pytest.mark.parametrize("published", ["success", "failure", "skipped"])
@pytest.mark.parametrize("pool", ["", "process"])
def test_a_process_pool_deploys_module_entrypoints_with_no_image(uv_stub, pool, published):
    done, called = uv_stub(pool, published, "ghcr.io/some-org" if published == "success" else "")
    assert done.returncode == 0, done.stdout + done.stderr
    assert called == [*DEPLOYED, "--pool-type", "process"]


@pytest.mark.parametrize("pool", ["docker", "kubernetes"])
def test_an_image_pool_pins_the_image_pushed_for_this_commit(uv_stub, pool):
    done, called = uv_stub(pool, "success", "registry.example.com/team")
    assert done.returncode == 0, done.stdout + done.stderr
    assert called == [
        *DEPLOYED, "--pool-type", pool, "--registry", "registry.example.com/team", "--tag", SHA
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("published", "registry"),
    [("failure", ""), ("skipped", ""), ("cancelled", ""), ("success", "")],
)
def test_an_image_pool_is_not_deployed_without_this_commits_image(uv_stub, published, registry):
    done, called = uv_stub("docker", published, registry)
    assert done.returncode == 1 and called is None
    assert done.stdout.count("\n") == 1 and "::error title=AIRNUB_WORK_POOL_TYPE::" in done.stdout


def test_hostile_names_reach_the_deploy_as_one_argument_each(tmp_path, uv_stub):
    name = "dept_x $(touch pwned); --prune"
    done, called = uv_stub("docker", "success", "ghcr.io/o", department=name)
    assert done.returncode == 0 and called is not None and called[4] == name
    assert not (tmp_path / "pwned").exists()
