"""`airnub plan` reads the server once per report, not once per department: its rows are
still exactly what each department's `airnub deploy --dry-run --prune` reports, and the
number of reads does not grow with the departments (counted by a real forwarding proxy on
loopback in front of this module's own Prefect server)."""

import http.client
import itertools
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest
from airnub_core.conventions import work_pool_name
from airnub_platform import deploy, plan, quotas
from airnub_platform.testing import loopback_http, server_objects
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.types.entrypoint import EntrypointType

pytestmark = pytest.mark.usefixtures("own_prefect_api")
CATEGORIES = {"ingestion": ["feed"]}
ENV = "local"
_made = itertools.count(1)
# Reads that once were made per department (or per deployment, or per pool)
BATCHED = ("/deployments/filter", "/flows/filter", "/work_pools/filter",
           "/v2/concurrency_limits/filter", "/automations/filter")  # fmt: skip


@pytest.fixture
def departments(make_department):
    def made(count: int) -> list[str]:
        names = [f"dept_batched_{next(_made)}" for _ in range(count)]
        for name in names:
            make_department(name, CATEGORIES)
        return names

    return made


def scope(client, names):
    return plan.Scope(client, ENV, names)


def one_by_one(client, names):
    """What `airnub deploy --dry-run --prune` reports, department by department."""
    return [
        plan.Row("deployments", name, action, what)
        for name in names
        for action, what in deploy.deploy(client, name, ENV, dry_run=True, prune=True)
    ]


def test_one_read_reports_what_each_departments_deploy_dry_run_reports(departments):
    applied, edited, adopted, pruned, previewed = departments(5)
    with get_client(sync_client=True) as client:
        for name in (applied, edited, pruned, previewed):
            deploy.deploy(client, name, ENV)
        deploy.deploy(client, previewed, ENV, preview="pr-9")  # never a production row
        key, target = sorted(deploy.existing_deployments(client, edited).items())[0]
        client.update_deployment(target.id, DeploymentUpdate(description="made in the UI"))
        item = deploy.planned(adopted, ENV)[0]  # a hand-made one holding a wanted name
        deploy.ensure_work_pools(client, [deploy.PoolPlan(work_pool_name(adopted))], False)
        item.flow.to_deployment(
            name=item.name, tags=[adopted], work_pool_name=work_pool_name(adopted),
            entrypoint_type=EntrypointType.MODULE_PATH,
        ).apply()  # fmt: skip
        yaml_file = deploy.prefect_yaml.location(pruned)
        kept = yaml_file.read_text().split(f"  - name: {work_pool_name(pruned)}-analysis")[0]
        yaml_file.write_text(kept)
        names = [applied, edited, adopted, pruned, previewed]
        before = server_objects(client)
        batched = plan.deployment_rows(scope(client, names))
        assert server_objects(client) == before  # read-only
        assert batched == one_by_one(client, names)
    actions = {(row.department, row.action, row.name) for row in batched}
    assert (edited, "update", key) in actions
    assert (adopted, "update", item.key) in actions
    assert any(d == pruned and a == "delete" for d, a, _ in actions)
    assert {a for d, a, _ in actions if d in (applied, previewed)} == {"unchanged"}
    assert not any("--pr-9" in name for _, _, name in actions)


class _Forward(BaseHTTPRequestHandler):
    """Sends each request on to the real API and counts it by method and path."""

    upstream: tuple[str, int]
    seen: Counter[str]

    def log_message(self, *_: object) -> None:
        return None

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen[f"{self.command} {self.path}"] += 1
        upstream = http.client.HTTPConnection(*self.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_POST = do_PATCH = do_DELETE = _forward


@contextmanager
def counted(api_url: str) -> Iterator[Counter[str]]:
    """A client session whose every request passes a counting proxy on loopback."""
    real = urlsplit(api_url)
    seen: Counter[str] = Counter()
    handler = type("Handler", (_Forward,), {"upstream": (real.hostname, real.port),
                                            "seen": seen})  # fmt: skip
    with (
        loopback_http(handler) as proxy,
        temporary_settings(updates={PREFECT_API_URL: f"{proxy}{real.path}"}),
    ):
        yield seen


def reads(own_prefect_api: str, names: list[str]) -> tuple[Counter[str], list[plan.Row]]:
    """The requests the deployments, quotas and automations sections send for ``names``."""
    with counted(own_prefect_api) as seen, get_client(sync_client=True) as client:
        seen.clear()  # the client's own start-up requests are not the report's
        found = scope(client, names)
        rows = [
            row
            for section in (plan.deployment_rows, plan.quota_rows, plan.automation_rows)
            for row in section(found)
        ]
        return Counter(seen), rows


def test_the_reads_do_not_grow_with_the_departments(departments, own_prefect_api):
    names = departments(5)
    with get_client(sync_client=True) as client:
        for name in names:
            deploy.deploy(client, name, ENV)
    few, few_rows = reads(own_prefect_api, names[:2])
    many, many_rows = reads(own_prefect_api, names)
    assert {r.department for r in many_rows} >= set(names)
    assert {r.department for r in few_rows} >= set(names[:2])
    for path in BATCHED:
        assert many[f"POST /api{path}"] == few[f"POST /api{path}"], path
    assert many["POST /api/automations/filter"] == 1  # once, though every one is blocked
    # nothing is read one deployment, pool or tag limit at a time
    one_at_a_time = ("GET /api/deployments/name/", "GET /api/work_pools/",
                     "GET /api/v2/concurrency_limits/")  # fmt: skip
    assert not [seen for seen in many if seen.startswith(one_at_a_time)]


def test_an_answer_ignoring_the_tag_filter_never_makes_a_hand_made_deployment_managed(
    departments,
):
    """Were a server (or a proxy) to answer the managed read with every deployment, one
    made by hand under the department's tag would still be nobody's to prune."""
    [name] = departments(1)
    with get_client(sync_client=True) as client:
        item = deploy.planned(name, ENV)[0]
        deploy.ensure_work_pools(client, [deploy.PoolPlan(work_pool_name(name))], False)
        item.flow.to_deployment(
            name="by-hand", tags=[name], work_pool_name=work_pool_name(name),
            entrypoint_type=EntrypointType.MODULE_PATH,
        ).apply()  # fmt: skip
        everything = client.read_deployments()  # what a filter-ignoring answer holds
        names = deploy.flow_names(client, {d.flow_id for d in everything})
        keyed = {f"{names[d.flow_id]}/{d.name}": d for d in everything}
        server = deploy.Server(managed=keyed, named={}, pools={})
        assert server.existing(name) == {}
        results = deploy.deploy(client, name, ENV, prune=True, dry_run=True, server=server)
    assert not [what for action, what in results if action == "delete"]


def test_tag_limits_are_found_among_more_than_a_page_of_others(departments, own_prefect_api):
    """Prefect's client reads global concurrency limits 10 at a time; the quotas section
    reads pages of the server's own size and still finds each department's limit, whether
    in force, switched off by hand, or missing."""
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )

    held, off, unset = departments(3)
    for name in (held, off, unset):
        quotas.pyproject_of(name).write_text(f"{quotas.TABLE}\ntask-runs = 3\n")
    with get_client(sync_client=True) as client:
        for number in range(25):  # sorted before every "tag:" limit
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=f"filler-{number:02d}", limit=1)
            )
        for name in (held, off):
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=f"tag:{name}", limit=3)
            )
        client.update_global_concurrency_limit(
            f"tag:{off}", GlobalConcurrencyLimitUpdate(active=False)
        )
    with counted(own_prefect_api) as seen, get_client(sync_client=True) as client:
        seen.clear()
        found = plan.quota_rows(scope(client, [held, off, unset]))
    tags = {row.department: row.action for row in found if row.name.startswith("tag:")}
    assert tags == {held: "unchanged", off: "create", unset: "create"}
    assert seen["POST /api/v2/concurrency_limits/filter"] == 2  # a page, then an empty one


def test_a_deployment_listed_twice_is_refused_before_anything_is_read(departments):
    """Compared with the server as read once, a second listing would be created over the
    first: `airnub deploy` and `airnub plan` refuse it in one line naming the entry."""
    from airnub_platform.cli import app
    from typer.testing import CliRunner

    [name] = departments(1)
    yaml_file = deploy.prefect_yaml.location(name)
    text = yaml_file.read_text()
    first = text.index("  - name: ")
    second = text.index("  - name: ", first + 1)
    yaml_file.write_text(text + text[first:second])  # the first entry again, at the end
    with get_client(sync_client=True) as client:
        before = server_objects(client)
        done = CliRunner().invoke(app, ["deploy", name], terminal_width=400)
        assert server_objects(client) == before
    lines = done.output.splitlines()
    assert done.exit_code == 1 and len(lines) == 1, done.output
    assert str(yaml_file) in lines[0] and "deploys" in lines[0] and "deployments[0]" in lines[0]
    assert "Traceback" not in done.output
