"""Quotas: a department's [tool.airnub.limits], read, refused and applied by `airnub deploy`
against the session's real Prefect server, on throwaway departments."""

import itertools
import os
import tomllib

import pytest
from airnub_core.conventions import work_pool_name
from airnub_platform import quotas
from airnub_platform.check import check_repository
from airnub_platform.cli import app
from airnub_platform.quotas import Limits, QuotaError
from airnub_platform.scaffolding import render
from airnub_platform.testing import (
    department_pyproject,
    importable_departments,
    write_department_project,
)
from hypothesis import given
from hypothesis import strategies as st
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.exceptions import ObjectNotFound
from typer.testing import CliRunner

_made = itertools.count(1)
FILE = "packages/dept_x/pyproject.toml"


def limits_toml(body: str) -> str:
    return f'[project]\nname = "x"\n\n[tool.airnub.limits]\n{body}\n'


# --- reading the declaration: no server ---------------------------------------------------


@given(
    flow=st.one_of(st.none(), st.integers(1, quotas.MAX_LIMIT)),
    task=st.one_of(st.none(), st.integers(1, quotas.MAX_LIMIT)),
)
def test_every_declared_limit_in_range_is_read_as_written(flow, task):
    table = {k: v for k, v in (("flow-runs", flow), ("task-runs", task)) if v is not None}
    read = quotas.parse({"tool": {"airnub": {"limits": table}}}, FILE)
    assert (read.flow_runs, read.task_runs) == (flow, task)


hostile_values = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=quotas.MAX_LIMIT + 1),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@given(key=st.sampled_from(["flow-runs", "task-runs"]), value=hostile_values)
def test_a_value_that_is_not_a_bounded_whole_number_is_refused_in_one_line(key, value):
    with pytest.raises(QuotaError) as caught:
        quotas.parse({"tool": {"airnub": {"limits": {key: value}}}}, FILE)
    message = str(caught.value)
    assert message.startswith(f"{FILE}: [tool.airnub.limits] '{key}': "), message
    assert "\n" not in message


@given(key=st.text(min_size=1, max_size=200).filter(lambda k: k not in ("flow-runs", "task-runs")))
def test_an_unknown_key_is_refused_and_named_in_one_line(key):
    with pytest.raises(QuotaError) as caught:
        quotas.parse({"tool": {"airnub": {"limits": {key: 1}}}}, FILE)
    message = str(caught.value)
    assert "unknown key" in message and "\n" not in message and len(message) < 300


@pytest.mark.parametrize("table", [[1, 2], "flow-runs=4", 4])
def test_limits_that_are_not_a_table_are_refused(table):
    with pytest.raises(QuotaError, match=r"\[tool.airnub.limits\]: must be a table"):
        quotas.parse({"tool": {"airnub": {"limits": table}}}, FILE)


@pytest.mark.parametrize("data", [{}, {"tool": {}}, {"tool": {"airnub": {"environments": []}}}])
def test_no_table_means_no_limits(data):
    assert quotas.parse(data, FILE) == Limits()


# --- against the session's server ---------------------------------------------------------


@pytest.fixture
def department(make_department):
    """A fresh department per test (dept_quota_<n>) with a pyproject.toml of its own."""
    name = f"dept_quota_{next(_made)}"
    folder = make_department(name, {"ingestion": ["feed"]})
    (folder / "pyproject.toml").write_text(limits_toml(""))
    return name


def declare(department, body):
    quotas.pyproject_of(department).write_text(limits_toml(body))


def cli(*args):
    return CliRunner().invoke(app, ["deploy", *args], terminal_width=400)


def rows(result, department):
    """The limit rows of a deploy table: (action, kind)."""
    found = []
    for line in result.output.splitlines():
        cells = [cell.strip() for cell in line.split("│") if cell.strip()]
        if (
            len(cells) == 2
            and cells[0].endswith(" limit")
            and (f"tag:{department}:" in cells[1] or f"{work_pool_name(department)}:" in cells[1])
        ):
            kind = "flow-runs" if "work pool" in cells[1] else "task-runs"
            found.append((cells[0].removesuffix(" limit"), kind))
    return sorted(found)


def server_limits(department):
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(work_pool_name(department)).concurrency_limit
        except ObjectNotFound:
            pool = "no pool"
        try:
            found = client.read_global_concurrency_limit_by_name(f"tag:{department}")
            tag = (found.limit, found.active)
        except ObjectNotFound:
            tag = None
    return pool, tag


@pytest.mark.usefixtures("prefect_api")
def test_deploy_creates_updates_keeps_and_removes_the_declared_limits(department):
    declare(department, "flow-runs = 3\ntask-runs = 2")
    dry = cli(department, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert rows(dry, department) == [("create", "flow-runs"), ("create", "task-runs")]
    assert server_limits(department) == ("no pool", None)  # the dry run wrote nothing

    first = cli(department)
    assert first.exit_code == 0, first.output
    assert rows(first, department) == [("create", "flow-runs"), ("create", "task-runs")]
    assert server_limits(department) == (3, (2, True))

    again = cli(department)
    assert rows(again, department) == [("unchanged", "flow-runs"), ("unchanged", "task-runs")]

    declare(department, "flow-runs = 5\ntask-runs = 2")
    changed = cli(department)
    assert rows(changed, department) == [("unchanged", "task-runs"), ("update", "flow-runs")]
    assert "flow-runs 5 (was 3)" in changed.output
    assert server_limits(department) == (5, (2, True))

    declare(department, "")  # the table emptied: both limits leave the server
    removed = cli(department)
    assert rows(removed, department) == [("delete", "flow-runs"), ("delete", "task-runs")]
    assert server_limits(department) == (None, None)
    assert rows(cli(department), department) == []  # nothing left to say


@pytest.mark.usefixtures("prefect_api")
def test_a_tag_limit_switched_off_by_hand_is_switched_on_again(department):
    declare(department, "task-runs = 4")
    assert cli(department).exit_code == 0
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(
            f"tag:{department}", GlobalConcurrencyLimitUpdate(active=False)
        )
        assert [c.action for c in quotas.changes(client, [department])] == ["create"]
    assert rows(cli(department), department) == [("create", "task-runs")]
    assert server_limits(department)[1] == (4, True)


@pytest.mark.usefixtures("prefect_api")
def test_only_the_departments_own_pool_and_tag_are_touched(department):
    """Another department's limits, and a limit on another tag, are never airnub's to
    remove: deploying a department without limits leaves them all."""
    with get_client(sync_client=True) as client:
        for name in (f"tag:{department}_other", f"tag:{department}-stage", "airnub-hand-made"):
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        assert quotas.changes(client, [department]) == []
    result = cli(department)
    assert result.exit_code == 0, result.output
    with get_client(sync_client=True) as client:
        for name in (f"tag:{department}_other", f"tag:{department}-stage", "airnub-hand-made"):
            assert client.read_global_concurrency_limit_by_name(name).limit == 1
            client.delete_global_concurrency_limit_by_name(name)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("flow-runs = 0", "'flow-runs': Input should be greater than or equal to 1"),
        ("task-runs = true", "'task-runs': must be a whole number from 1 to 10000"),
        ("task-runs = 2.0", "'task-runs': must be a whole number from 1 to 10000"),
        ('flow-runs = "4"', "'flow-runs': must be a whole number from 1 to 10000"),
        ("flow-runs = 99999999999999999999", "Input should be less than or equal to 10000"),
        ("flows = 4", "'flows': unknown key; the keys are flow-runs and task-runs"),
        ("flow-runs = [", "invalid TOML"),
    ],
)
@pytest.mark.usefixtures("prefect_api")
def test_hostile_limits_stop_deploy_before_any_write(department, body, expected):
    declare(department, body)
    result = cli(department)  # no dry run: a write would happen if it were not refused
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "pyproject.toml" in lines[0] and expected in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert server_limits(department) == ("no pool", None)  # not even its pool was made


def test_a_fifo_or_folder_at_pyproject_toml_is_refused_without_waiting(department):
    path = quotas.pyproject_of(department)
    path.unlink()
    os.mkfifo(path)  # nothing writes to it: a reader that opened it would wait for ever
    with pytest.raises(QuotaError, match=r"pyproject\.toml: not a regular file"):
        quotas.read(department)
    path.unlink()
    path.mkdir()
    with pytest.raises(QuotaError, match=r"pyproject\.toml: not a regular file"):
        quotas.read(department)


def test_a_department_without_a_pyproject_has_no_limits(department):
    quotas.pyproject_of(department).unlink()
    assert quotas.read(department) == Limits()


def test_an_undecodable_pyproject_is_named(department):
    quotas.pyproject_of(department).write_bytes(b"[tool.airnub.limits]\nflow-runs = 4 # \xff\n")
    with pytest.raises(QuotaError, match=r"pyproject\.toml: cannot be read: UnicodeDecodeError"):
        quotas.read(department)


def test_airnub_check_flags_limits_deploy_would_refuse(tmp_path):
    department = "dept_quota_check"
    folder = write_department_project(tmp_path, department, "Quota Check", {"ingestion": ["a"]})
    limits = "\n[tool.airnub.limits]\nflow-runs = 4\ntask-runs = -1\n"
    (folder / "pyproject.toml").write_text(department_pyproject(department, "Quota Check") + limits)
    with importable_departments(folder / "src", {department: "Quota Check"}):
        report = check_repository(tmp_path, [department])
    shown = [violation.show(tmp_path) for violation in report.violations]
    expected = (
        f"packages/{department}/pyproject.toml: [tool.airnub.limits] 'task-runs':"
        " Input should be greater than or equal to 1"
    )
    assert expected in shown, shown


def test_a_new_departments_pyproject_shows_the_limits_commented_out():
    """add_department writes the table as a comment: no limits until someone means one."""
    text = render("department/pyproject.toml.j2", department="dept_new", distribution="dept-new",
                  display_name="New Team", owners="@acme/new", alerts="#new")  # fmt: skip
    assert quotas.parse(tomllib.loads(text), FILE) == Limits()
    uncommented = text
    for line in ("[tool.airnub.limits]", "flow-runs", "task-runs"):
        uncommented = uncommented.replace(f"# {line}", line)
    read = quotas.parse(tomllib.loads(uncommented), FILE)
    assert (read.flow_runs, read.task_runs) == (4, 8)


@pytest.mark.usefixtures("prefect_api")
def test_retire_removes_a_removed_departments_tag_limit_only():
    gone = "dept_quota_retired"  # never installed: retire is for removed departments
    with get_client(sync_client=True) as client:
        for name in (f"tag:{gone}", f"tag:{gone}_kept"):
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=3))
    dry = CliRunner().invoke(app, ["retire", gone, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"delete limit tag:{gone}" in dry.output
    assert server_limits(gone)[1] == (3, True)
    done = CliRunner().invoke(app, ["retire", gone])
    assert done.exit_code == 0, done.output
    assert f"delete limit tag:{gone}" in done.output
    assert server_limits(gone)[1] is None
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(f"tag:{gone}_kept").limit == 3
        client.delete_global_concurrency_limit_by_name(f"tag:{gone}_kept")


@pytest.mark.usefixtures("prefect_api")
def test_a_flow_run_limit_with_no_deployment_on_the_own_pool_is_refused(make_department):
    """prefect.yaml puts every deployment on an operator's pool: a flow-runs limit would
    hold nothing (airnub never limits another's pool), so deploy refuses before writing."""
    from airnub_platform.prefect_yaml import render as render_prefect_yaml

    name = f"dept_quota_{next(_made)}"
    own = work_pool_name(name)
    pool = f"work_pool:\n      name: {own}\n"
    text = render_prefect_yaml(name, None)
    assert pool in text
    text = text.replace(pool, "work_pool:\n      name: operators-pool\n")
    folder = make_department(name, {"ingestion": ["feed"]}, prefect_yaml=text)
    (folder / "pyproject.toml").write_text(limits_toml("flow-runs = 2"))
    result = cli(name)
    assert result.exit_code == 1, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert f"'flow-runs': no deployment runs on the department's own work pool '{own}'" in (
        " ".join(result.output.split())
    )
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_work_pool("operators-pool")  # nothing was written
    (folder / "pyproject.toml").write_text(limits_toml("task-runs = 2"))  # a tag limit holds
    assert rows(cli(name), name) == [("create", "task-runs")]
    with get_client(sync_client=True) as client:
        client.delete_work_pool("operators-pool")
        client.delete_global_concurrency_limit_by_name(f"tag:{name}")
