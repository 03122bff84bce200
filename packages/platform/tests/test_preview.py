"""Preview deployments of a pull request against the session's Prefect server, on
throwaway departments: created, updated by a new push, pruned within the preview, removed
on close; production deployments and another PR's previews untouched throughout."""

import itertools
import re
import subprocess
from pathlib import Path

import pytest
from airnub_core.conventions import MANAGED_TAG
from airnub_platform import deploy
from airnub_platform.cli import app
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags
from prefect.exceptions import ObjectNotFound
from prefect.types.entrypoint import EntrypointType
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("prefect_api")
CATEGORIES = {"ingestion": ["feed"], "analysis": ["sums"]}
_made = itertools.count(1)


def prefect_yaml(department: str, message: str = "from the deployment", analysis=True) -> str:
    """Stage orchestrators with an active schedule on ingestion, and one category with
    parameters; ``analysis=False`` is the same file with the analysis stage removed."""
    pool = department.replace("_", "-")
    common = f"work_pool: {{name: {pool}, job_variables: {{env: {{AIRNUB_ENV: local}}}}}}"
    analysis_entry = f"""
  - name: {pool}-analysis
    entrypoint: {department}.analysis_flow_{department}:analysis_flow
    {common}"""
    return f"""
name: {pool}
pull: []
deployments:
  - name: {pool}-ingestion
    entrypoint: {department}.ingestion_flow_{department}:ingestion_flow
    {common}
    schedules:
      - cron: "0 6 1 1 *"
        timezone: UTC
        slug: yearly
        active: true
  - name: {pool}-ingestion-feed
    entrypoint: {department}.ingestion.feed.make_feed_flow_{department}:make_feed
    parameters: {{overrides: {{message: {message}}}}}
    {common}{analysis_entry if analysis else ""}
"""


@pytest.fixture
def new_department(make_department):
    """Makes fresh departments, dept_preview_<n>: (id, its prefect.yaml). Their deployments
    and pools go with the test."""
    names = []

    def new() -> tuple[str, Path]:
        names.append(name := f"dept_preview_{next(_made)}")
        folder = make_department(name, CATEGORIES, prefect_yaml=prefect_yaml(name))
        return name, folder / "prefect.yaml"

    yield new
    with get_client(sync_client=True) as client:
        for name in names:
            tagged = DeploymentFilter(tags=DeploymentFilterTags(all_=[name]))
            for found in client.read_deployments(deployment_filter=tagged):
                client.delete_deployment(found.id)
            for pool in client.read_work_pools():
                if pool.name.startswith(name.replace("_", "-")):
                    client.delete_work_pool(pool.name)


@pytest.fixture
def department(new_department):
    return new_department()


def run(department, preview=None, **options):
    with get_client(sync_client=True) as client:
        return deploy.deploy(client, department, "local", preview=preview, **options)


def remove(preview, **options):
    with get_client(sync_client=True) as client:
        return deploy.retire_preview(client, preview, **options)


def actions(results):
    return {what: action for action, what in results}


def snapshot(department, preview=None):
    """Every compared field, and the id, of each deployment in the set."""
    with get_client(sync_client=True) as client:
        found = deploy.existing_deployments(client, department, preview)
    return {key: (d.id, d.updated, deploy.current(d)) for key, d in found.items()}


def pool_of(name):
    with get_client(sync_client=True) as client:
        try:
            return client.read_work_pool(name)
        except ObjectNotFound:
            return None


def test_a_preview_lifecycle_never_touches_production_or_another_pr(department):
    name, path = department
    pool = name.replace("_", "-")
    run(name)
    production = snapshot(name)
    assert len(production) == 3

    created = run(name, "pr-7", prune=True)
    assert ("create pool", f"{pool}--pr-7") in created
    assert set(actions(created).values()) == {"create pool", "create"}
    run(name, "pr-8", prune=True)
    previews = deploy_of(name, "pr-7")
    assert sorted(d.name for d in previews.values()) == [
        f"{pool}-analysis--pr-7", f"{pool}-ingestion--pr-7", f"{pool}-ingestion-feed--pr-7",
    ]  # fmt: skip
    for found in previews.values():
        assert found.tags[-2:] == [MANAGED_TAG, "preview:pr-7"] and name in found.tags
        assert found.work_pool_name == f"{pool}--pr-7"
        assert not any(schedule.active for schedule in found.schedules)
    [schedule] = next(d for d in previews.values() if d.name.endswith("ingestion--pr-7")).schedules
    assert (schedule.slug, schedule.schedule.cron) == ("yearly", "0 6 1 1 *")  # type: ignore[union-attr]
    made = pool_of(f"{pool}--pr-7")
    assert made is not None and made.description == deploy.preview_pool_description("pr-7")
    other_pr = snapshot(name, "pr-8")
    assert snapshot(name) == production

    # A new push: the same previews are unchanged; a changed one updates, a removed one goes.
    assert set(actions(run(name, "pr-7", prune=True)).values()) == {"unchanged"}
    path.write_text(prefect_yaml(name, message="from the pull request", analysis=False))
    pushed = actions(run(name, "pr-7", prune=True))
    feed_key = next(key for key in pushed if key.endswith("-ingestion-feed--pr-7"))
    assert pushed[feed_key] == "update"
    assert [a for k, a in pushed.items() if k.endswith("-analysis--pr-7")] == ["delete"]
    assert deploy_of(name, "pr-7")[feed_key].parameters == {
        "overrides": {"message": "from the pull request"}
    }
    assert snapshot(name) == production and snapshot(name, "pr-8") == other_pr

    # Production deploys (with --prune) see no preview at all.
    merged = actions(run(name, prune=True))
    assert not any("--pr-" in key for key in merged)
    assert sorted(merged.values()) == ["delete", "unchanged", "update"]
    assert snapshot(name, "pr-8") == other_pr
    production = snapshot(name)

    # Closing: this PR's previews and pool go, once; nothing else does.
    closed = remove("pr-7")
    assert sorted(action for action, _ in closed) == ["delete", "delete", "delete pool"]
    assert deploy_of(name, "pr-7") == {} and pool_of(f"{pool}--pr-7") is None
    assert remove("pr-7") == []
    assert snapshot(name) == production and snapshot(name, "pr-8") == other_pr
    assert pool_of(f"{pool}--pr-8") is not None and pool_of(pool) is not None


def deploy_of(department, preview):
    with get_client(sync_client=True) as client:
        return deploy.existing_deployments(client, department, preview)


def test_retiring_a_department_leaves_its_previews_and_absent_ignores_them(department):
    name, _ = department
    run(name, "pr-21")
    previews = snapshot(name, "pr-21")
    with get_client(sync_client=True) as client:
        # only previews left: the department counts as absent for no one
        assert name not in deploy.managed_departments(client)
        run(name)
        assert name in deploy.managed_departments(client)
        retired = deploy.retire(client, name)
    assert not any("--pr-" in what for _, what in retired)
    assert ("delete pool", name.replace("_", "-")) in retired
    assert snapshot(name, "pr-21") == previews


def test_removal_deletes_only_managed_previews_and_only_pools_it_made(department):
    name, _ = department
    pool = name.replace("_", "-")
    run(name, "pr-31")
    flow_module = __import__(f"{name}.analysis_flow_{name}", fromlist=["analysis_flow"])
    flow = flow_module.analysis_flow
    # By hand: one tagged as the preview but not managed, on the preview's pool; and an
    # operator's pool that merely ends like a preview pool.
    flow.to_deployment(
        name="hand-made--pr-31", tags=[name, "preview:pr-31"], work_pool_name=f"{pool}--pr-31",
        entrypoint_type=EntrypointType.MODULE_PATH,
    ).apply()  # fmt: skip
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=f"{pool}-ops--pr-31", type="process"))
    results = remove("pr-31")
    assert [a for a, _ in results].count("delete") == 3
    assert ("keep pool", f"{pool}--pr-31: used by 1 deployment not managed by airnub") in results
    with get_client(sync_client=True) as client:
        assert client.read_deployment_by_name(f"{flow.name}/hand-made--pr-31")
    assert pool_of(f"{pool}-ops--pr-31") is not None


def test_a_dry_run_removes_nothing(department):
    name, _ = department
    run(name, "pr-41")
    before = snapshot(name, "pr-41")
    results = remove("pr-41", dry_run=True)
    assert ("delete pool", f"{name.replace('_', '-')}--pr-41") in results
    assert snapshot(name, "pr-41") == before


def airnub(*arguments):
    result = CliRunner().invoke(app, list(arguments), terminal_width=400)
    return result.exit_code, result.output


def test_the_commands_deploy_and_remove_a_preview(department):
    name, _ = department
    code, output = airnub("deploy", name, "--preview", "pr-51", "--prune")
    assert code == 0, output
    assert "preview pr-51" in output and f"{name.replace('_', '-')}-ingestion--pr-51" in output
    code, output = airnub("retire", "--preview", "pr-51")
    assert code == 0, output
    assert f"delete pool {name.replace('_', '-')}--pr-51" in output
    code, output = airnub("retire", "--preview", "pr-51")
    assert (code, output.splitlines()[-1]) == (0, "pr-51: nothing to remove")


def git(root: Path, *arguments: str) -> str:
    identity = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    done = subprocess.run(["git", *identity, *arguments], cwd=root, check=True,
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout.strip()


def pushed(root: Path, changes: dict[str, str]) -> None:
    for name, text in changes.items():
        (root / "packages" / name).mkdir(exist_ok=True)
        (root / "packages" / name / "change.txt").write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "push")


def test_a_push_that_no_longer_affects_a_department_removes_its_previews(
    new_department, tmp_path, monkeypatch
):
    """`--affected --preview --prune` on a later push: a department the pull request no
    longer changes loses its previews and preview pool; production and other PRs keep."""
    (first, _), (second, _) = new_department(), new_department()
    repository = tmp_path / "repository"  # the pull request's checkout: a lock and two folders
    lock = "".join(
        f'[[package]]\nname = "{n.replace("_", "-")}"\nsource = {{ editable = "packages/{n}" }}\n'
        for n in (first, second)
    )
    (repository / "packages").mkdir(parents=True)
    (repository / "uv.lock").write_text(lock)
    git(repository, "init", "-q")
    pushed(repository, {first: "base\n", second: "base\n"})
    base = git(repository, "rev-parse", "HEAD")
    monkeypatch.chdir(repository)
    run(first)
    run(first, "pr-62")
    production, other_pr = snapshot(first), snapshot(first, "pr-62")
    command = ["deploy", "--affected", "--base", base, "--preview", "pr-61", "--prune"]

    pushed(repository, {first: "changed\n", second: "changed\n"})
    code, output = airnub(*command, "--env", "local")
    assert code == 0, output
    assert len(deploy_of(first, "pr-61")) == 3 and len(deploy_of(second, "pr-61")) == 3
    kept = snapshot(second, "pr-61")

    pushed(repository, {first: "base\n"})  # the pull request no longer changes the first
    code, output = airnub(*command, "--env", "local")
    assert code == 0, output
    assert re.search(rf"delete pool\s*│\s*{first.replace('_', '-')}--pr-61\s", output), output
    assert deploy_of(first, "pr-61") == {} and pool_of(f"{first.replace('_', '-')}--pr-61") is None
    assert snapshot(second, "pr-61") == kept

    pushed(repository, {second: "base\n"})  # nor the second: none affected
    code, output = airnub(*command, "--env", "local")
    assert code == 0, output
    assert "affected: none" in output and deploy_of(second, "pr-61") == {}
    assert snapshot(first) == production and snapshot(first, "pr-62") == other_pr


def test_a_pool_left_by_a_deploy_that_stopped_half_way_is_found_by_its_mark(department):
    """Its deployments never got made (or went by hand): closing still removes the pool."""
    name, _ = department
    run(name, "pr-71")
    with get_client(sync_client=True) as client:
        for found in deploy_of(name, "pr-71").values():
            client.delete_deployment(found.id)
    assert remove("pr-71") == [("delete pool", f"{name.replace('_', '-')}--pr-71")]
    assert remove("pr-71") == []
