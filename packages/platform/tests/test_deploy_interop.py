"""`prefect deploy` and `airnub deploy` make the same deployments from a prefect.yaml.

Prefect's own CLI runs as a subprocess in the department's folder, against the
session's API, as a department's author would run it.
"""

import itertools
import json
import os
import subprocess
import sys

import pytest
from airnub_platform import deploy
from airnub_platform.prefect_yaml import render
from prefect.client.orchestration import get_client

pytestmark = pytest.mark.usefixtures("prefect_api")
CATEGORIES = {"ingestion": ["feed"]}
# When it was last written: every deploy of either command touches it.
VOLATILE = {"updated"}


def prefect_yaml(department: str) -> str:
    """The generated file, with a category deployed too, added as its header says: an
    entry holding its entrypoint (and here parameters), then a write."""
    feed = f"{department}.ingestion.feed.make_feed_flow_{department}:make_feed"
    listed = f"""deployments:
  - entrypoint: {feed}
    parameters: {{overrides: {{message: from the deployment}}}}
"""
    text = render(department, listed)
    assert render(department, text) == text  # what `airnub check` holds it to
    return text


_made = itertools.count(1)


@pytest.fixture
def department(make_department, monkeypatch):
    """A department folder made current, so both commands infer the same version."""
    name = f"dept_interop_{next(_made)}"
    folder = make_department(name, CATEGORIES, prefect_yaml=prefect_yaml(name))
    monkeypatch.chdir(folder)
    with get_client(sync_client=True) as client:
        deploy.ensure_work_pools(client, [deploy.PoolPlan(name.replace("_", "-"))], dry_run=False)
    return name, folder


def prefect_deploy(folder, api_url):
    env = {**os.environ, "PREFECT_API_URL": api_url, "PYTHONPATH": str(folder / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def airnub_deploy(department, **options):
    with get_client(sync_client=True) as client:
        return deploy.deploy(client, department, "local", **options)


def snapshot(department):
    with get_client(sync_client=True) as client:
        found = deploy.existing_deployments(client, department)
    return {
        key: {
            **d.model_dump(mode="json", exclude=VOLATILE | {"schedules", "last_polled"}),
            "schedules": [s.model_dump(mode="json", exclude=VOLATILE) for s in d.schedules],
        }
        for key, d in found.items()
    }


def assert_portable(found, folder):
    text = json.dumps(found)
    assert str(folder) not in text and os.getcwd() not in text
    for fields in found.values():
        assert (fields["pull_steps"], fields["path"]) == ([], None)


def test_airnub_deploy_after_prefect_deploy_finds_nothing_to_change(department, prefect_api):
    name, folder = department
    prefect_deploy(folder, prefect_api)
    found = snapshot(name)
    assert len(found) == 4  # every entry carries the managed tag, so airnub sees them all
    assert_portable(found, folder)
    assert {action for action, _ in airnub_deploy(name, dry_run=True)} == {"unchanged"}
    assert {action for action, _ in airnub_deploy(name)} == {"unchanged"}
    assert snapshot(name) == found


def test_prefect_deploy_after_airnub_deploy_changes_nothing(department, prefect_api):
    name, folder = department
    assert {action for action, _ in airnub_deploy(name)} == {"create"}
    found = snapshot(name)
    assert_portable(found, folder)
    prefect_deploy(folder, prefect_api)
    assert snapshot(name) == found
    assert {action for action, _ in airnub_deploy(name, dry_run=True)} == {"unchanged"}
