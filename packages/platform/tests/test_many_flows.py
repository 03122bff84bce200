"""Prune and retire on a server holding more than one page of everything.

Each test runs twice: on the session's API holding more than 200 flows and Variables
(200 is Prefect's default page), and on a second real API on loopback whose operator set
``PREFECT_SERVER_API_DEFAULT_LIMIT`` to 3, so every read needs several pages. The
fillers sort before the department's own objects, so a read that stops at its first
page misses exactly those.
"""

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from airnub_core import variables
from airnub_core.conventions import MANAGED_TAG, work_pool_name
from airnub_platform import deploy, local_api, variable_sync
from airnub_platform.cli import app
from hypothesis import given
from hypothesis import strategies as st
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import VariableCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

MANY = 201  # one more than Prefect's default page
SMALL_PAGE = 3
OTHER = "dept_filler"  # a department the tested ones must never touch
BY_HAND = "by-hand"  # tags what a test makes itself, so it can be swept afterwards
_made = itertools.count(1)


@contextmanager
def fillers(count: int) -> Iterator[None]:
    """``count`` flows and ``count`` Variables managed for another department, all named
    to sort before anything a department is given."""
    names = [f"a-filler-{i:03}" for i in range(count)]
    with get_client(sync_client=True) as client:
        flows = [client.create_flow_from_name(f"A filler flow {i:03}") for i in range(count)]
        for name in names:
            client.create_variable(VariableCreate(name=name, value=1, tags=[MANAGED_TAG, OTHER]))
    try:
        yield
    finally:
        with get_client(sync_client=True) as client:
            for flow_id in flows:
                client.delete_flow(flow_id)
            for name in names:
                client.delete_variable_by_name(name)


@contextmanager
def small_page_api(folder: Path) -> Iterator[str]:
    """A second Prefect API on loopback that serves at most ``SMALL_PAGE`` objects a page."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_SERVER_API_DEFAULT_LIMIT", str(SMALL_PAGE))
        api = local_api.start(db=folder / "prefect.db")
    try:
        api.wait_healthy()
        yield api.url
    finally:
        api.stop(settle=False)


@pytest.fixture(scope="module", params=["more than 200", "pages of 3"])
def server(request, prefect_api, tmp_path_factory) -> Iterator[str]:
    """The API the test talks to (the CLI too), holding more than a page of fillers."""
    if request.param == "more than 200":
        with fillers(MANY):
            yield prefect_api
        return
    with (
        small_page_api(tmp_path_factory.mktemp("small-pages")) as url,
        pytest.MonkeyPatch.context() as patch,
        temporary_settings(updates={PREFECT_API_URL: url}),
    ):
        patch.setenv("PREFECT_API_URL", url)
        with fillers(2 * SMALL_PAGE + 1):
            yield url


@pytest.fixture
def department(server, make_department) -> Iterator[str]:
    """A fresh department: three stage deployments, four categories with a config file
    each; whatever it leaves on the server is swept afterwards."""
    name = f"dept_many_{next(_made)}"
    make_department(name, {"ingestion": ["one", "two", "three", "four"]})
    yield name
    with get_client(sync_client=True) as client:
        for tag in (name, BY_HAND):
            tagged = DeploymentFilter(tags=DeploymentFilterTags(all_=[tag]))
            while page := client.read_deployments(deployment_filter=tagged):
                for found in page:
                    client.delete_deployment(found.id)
        for variable in (*(f"{name}-ingestion-{n}" for n in NUMBERS), f"{name}-by-hand"):
            if client.read_variable_by_name(variable) is not None:
                client.delete_variable_by_name(variable)
        deploy.retire(client, name)  # its work pool


def by_hand(client, department, name, tags):
    """A deployment made outside airnub, on a flow of its own."""
    flow_id = client.create_flow_from_name(f"Hand Flow ({department})")
    return client.create_deployment(flow_id=flow_id, name=name, tags=[*tags, BY_HAND])


def still_there(client, deployment_id) -> bool:
    try:
        client.read_deployment(deployment_id)
    except ObjectNotFound:
        return False
    return True


def test_deploy_prune_deletes_only_the_stale_managed_deployment(department):
    pool = work_pool_name(department)
    with get_client(sync_client=True) as client:
        first = deploy.deploy(client, department, "local", prune=True)
        assert sorted(action for action, _ in first) == ["create"] * 3 + ["create pool"]
        own = {d.id for d in deploy.existing_deployments(client, department).values()}
        stale = by_hand(client, department, f"{pool}-gone", [department, MANAGED_TAG])
        unmanaged = by_hand(client, department, f"{pool}-mine", [department])
        others = by_hand(client, department, f"{pool}-theirs", [OTHER, MANAGED_TAG])

        second = deploy.deploy(client, department, "local", prune=True)

        assert sorted(action for action, _ in second) == ["delete"] + ["unchanged"] * 3
        assert ("delete", f"Hand Flow ({department})/{pool}-gone") in second
        assert not still_there(client, stale)
        assert all(still_there(client, d) for d in (*own, unmanaged, others))
        third = deploy.deploy(client, department, "local", prune=True)
        assert sorted(action for action, _ in third) == ["unchanged"] * 3
        assert {d.id for d in deploy.existing_deployments(client, department).values()} == own


def test_the_deploy_command_prunes_twice_and_keeps_its_own(department):
    for _ in range(2):
        result = CliRunner().invoke(app, ["deploy", department, "--prune"])
        assert result.exit_code == 0, result.output
        assert "delete" not in result.output
    with get_client(sync_client=True) as client:
        assert len(deploy.existing_deployments(client, department)) == 3


def test_variables_sync_prune_deletes_only_its_managed_variable_whose_file_is_gone(department):
    hand_made = f"{department}-by-hand"
    with get_client(sync_client=True) as client:
        client.create_variable(VariableCreate(name=hand_made, value=1, tags=[department, BY_HAND]))
    assert sync(department) == {f"{department}-ingestion-{n}": "create" for n in NUMBERS}
    assert set(sync(department).values()) == {"unchanged"}
    config_file(department, "two").unlink()

    changes = sync(department)

    names = {number: f"{department}-ingestion-{number}" for number in NUMBERS}
    kept = {names[number]: "unchanged" for number in ("one", "three", "four")}
    assert changes == {**kept, names["two"]: "delete"}
    values = variables.department_values(department)  # what a run reads, in one pass
    assert sorted(values) == sorted([hand_made, *kept])
    with get_client(sync_client=True) as client:
        assert client.read_variable_by_name("a-filler-000") is not None  # another's


def test_the_variables_command_prunes_and_a_hand_made_variable_is_still_refused(department):
    four = config_file(department, "four")
    saved = four.read_text()
    four.unlink()
    result = CliRunner().invoke(app, ["variables", "sync", department, "--prune"])
    assert result.exit_code == 0, result.output
    assert "applied: 3 create" in result.output
    taken = f"{department}-ingestion-four"
    with get_client(sync_client=True) as client:
        client.create_variable(VariableCreate(name=taken, value=1, tags=[department, BY_HAND]))
    four.write_text(saved)
    config_file(department, "two").unlink()

    refused = CliRunner().invoke(app, ["variables", "sync", department, "--prune"])

    assert refused.exit_code == 1, refused.output
    assert "Traceback" not in refused.output
    assert [line for line in refused.output.splitlines() if line.strip()] == [
        line for line in refused.output.splitlines() if line.startswith("error:")
    ]
    assert repr(taken) in refused.output and "not managed by airnub" in refused.output
    with get_client(sync_client=True) as client:  # nothing written: the stale one is kept
        assert client.read_variable_by_name(f"{department}-ingestion-two") is not None
        kept = client.read_variable_by_name(taken)
        assert kept is not None and kept.value == 1


def test_retire_deletes_the_departments_managed_objects_and_nothing_else(department):
    with get_client(sync_client=True) as client:
        deploy.deploy(client, department, "local")
        variable_sync.sync(
            client, variable_sync.desired_values([department], "local"), [department]
        )
        unmanaged = by_hand(client, department, f"{work_pool_name(department)}-mine", [department])
        client.create_variable(
            VariableCreate(name=f"{department}-by-hand", value=1, tags=[department, BY_HAND])
        )

        results = deploy.retire(client, department)

        deleted = sorted(what for action, what in results if action == "delete variable")
        assert deleted == [f"{department}-ingestion-{n}" for n in sorted(NUMBERS)]
        assert sum(action == "delete" for action, _ in results) == 3
        assert ("delete pool", work_pool_name(department)) in results
        assert deploy.existing_deployments(client, department) == {}
        assert still_there(client, unmanaged)
        assert client.read_variable_by_name(f"{department}-by-hand") is not None
        assert client.read_variable_by_name("a-filler-000") is not None


NUMBERS = ("one", "two", "three", "four")


def config_file(department: str, category: str) -> Path:
    from airnub_core.config import package_dir

    return package_dir(department) / "configs" / "variables" / "ingestion" / f"{category}.yaml"


def sync(department: str) -> dict[str, str]:
    wanted = variable_sync.desired_values([department], "local")
    with get_client(sync_client=True) as client:
        changes = variable_sync.sync(client, wanted, [department], prune=True)
    return {change.name: change.action for change in changes}


@dataclass(frozen=True)
class Found:
    id: uuid.UUID


@given(count=st.integers(0, 40), page=st.integers(1, 12), ignores_offset=st.booleans())
def test_a_paged_read_gets_everything_once_and_ends_on_any_server(count, page, ignores_offset):
    """Whatever page size the server chose, every object once and in order; a server
    that ignores the offset and repeats its first page ends the read instead of looping."""
    held = [Found(uuid.UUID(int=i)) for i in range(count)]

    def read(offset: int) -> list[Found]:
        start = 0 if ignores_offset else offset
        return held[start : start + page]

    expected = held[:page] if ignores_offset else held
    assert variables.read_all(read) == expected
