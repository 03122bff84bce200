"""`airnub deploy` of many departments at once (``--concurrency``): the same rows in the
same order as one after another, idempotent, and a department failing mid-way leaves
every other one whole or untouched. Against the session's real Prefect server, and a
loopback proxy in front of it that refuses one department's writes."""

import http.client
import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest
from airnub_platform import deploy
from airnub_platform.cli import app
from airnub_platform.testing import api_at, loopback_http
from hypothesis import given
from hypothesis import strategies as st
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

_made = itertools.count(1)
# Departments of different sizes, so they finish in another order than they are listed.
SHAPES = [
    {"ingestion": ["feed", "mail", "scan"], "processing": ["tidy"], "analysis": ["sums"]},
    {"ingestion": ["feed"]},
    {"ingestion": ["feed"], "analysis": ["sums", "means"]},
    {"processing": ["tidy", "join"]},
    {"ingestion": ["feed"], "processing": ["tidy"]},
]
ECHOED = "pnu_echoed_back_0123456789"  # what a careless server repeats in its body


@pytest.fixture
def departments(make_department) -> list[str]:
    """Fresh departments (dept_wave_<n>), not yet deployed, listed out of name order."""
    names = [f"dept_wave_{next(_made)}" for _ in SHAPES]
    for name, categories in zip(names, SHAPES, strict=True):
        make_department(name, categories)
    return names[::-1]


def airnub_deploy(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["deploy", *args], terminal_width=400)
    return result.exit_code, result.output.splitlines()


def rows(lines: list[str]) -> list[str]:
    """The table's rows (change and deployment), without the title and rules."""
    return [line for line in lines if line.startswith("│")]


def deployed(department: str) -> int:
    with get_client(sync_client=True) as client:
        return len(deploy.existing_deployments(client, department))


def expected_count(department: str) -> int:
    return len(deploy.planned(department, "local"))


@pytest.mark.usefixtures("prefect_api")
def test_many_departments_deploy_as_one_after_another_would(departments):
    sequential = airnub_deploy("--dry-run", "--concurrency", "1", *departments)
    assert sequential[0] == 0, sequential[1]
    for at_once in ("3", "64"):
        assert airnub_deploy("--dry-run", "--concurrency", at_once, *departments) == sequential
    assert airnub_deploy("--dry-run", *departments) == sequential  # the default, 2

    code, first = airnub_deploy(*departments)
    assert code == 0, first
    assert rows(first) == rows(sequential[1])  # what the dry run said, in its order
    assert [deployed(name) for name in departments] == [expected_count(n) for n in departments]

    code, again = airnub_deploy(*departments)
    assert code == 0, again
    changes = {line.split("│")[1].strip() for line in rows(again)[1:]}
    assert changes == {"unchanged", "automation"}
    assert airnub_deploy("--concurrency", "1", *departments) == (0, again)


class _RefusingProxy(BaseHTTPRequestHandler):
    """Forwards every request to the real API, except that creating or updating a
    deployment of ``refused`` answers 500, with a body echoing a secret."""

    upstream: str  # host:port of the real API
    refused: str  # a department id
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:
        return None

    def handle(self) -> None:
        # a command that ends drops its pooled connections: nothing left to answer, and no
        # traceback on the stderr it shares with this thread
        try:
            super().handle()
        except (OSError, http.client.HTTPException):
            self.close_connection = True

    def _refuses(self, body: bytes) -> bool:
        writes = self.command in {"POST", "PATCH"} and "/deployments/" in self.path
        is_filter = self.path.rstrip("/").endswith("/filter")
        return writes and not is_filter and f'"{self.refused}"'.encode() in body

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self._refuses(body):
            return self._send(500, json.dumps({"detail": ECHOED}).encode(), "application/json")
        upstream = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            # answers come back plain, so they are forwarded as they are
            dropped = {"host", "accept-encoding"}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self._send(answer.status, data, answer.getheader("Content-Type") or "")
        finally:
            upstream.close()

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _forward


@pytest.fixture
def refusing_api(prefect_api, monkeypatch) -> Iterator[type[_RefusingProxy]]:
    """The session's API behind a proxy; set ``refused`` on the yielded handler class."""
    real = urlsplit(prefect_api)
    handler = type("Proxy", (_RefusingProxy,), {"upstream": real.netloc, "refused": ""})
    with loopback_http(handler) as root, api_at(f"{root}{real.path}", monkeypatch):
        yield handler


@pytest.mark.parametrize("at_once", ["1", "3"])
def test_a_failing_department_leaves_the_others_whole_or_untouched(
    departments, refusing_api, prefect_api, at_once
):
    failing = departments[2]
    refusing_api.refused = failing
    code, lines = airnub_deploy("--concurrency", at_once, *departments)
    assert code == 1, lines
    assert len(lines) == 1, lines
    [line] = lines
    assert line.startswith("error: the Prefect API at http://127.0.0.1:"), line
    assert "answered 500 Internal Server Error to POST /api/deployments/" in line
    assert ECHOED not in line

    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        found = {name: deployed(name) for name in departments}
        wanted = {name: expected_count(name) for name in departments}
    assert found[failing] == 0  # its every write was refused
    for name in departments:
        assert found[name] in {0, wanted[name]}, (name, found)
    if at_once == "1":  # one after another: those before it whole, those after untouched
        assert [found[name] for name in departments[:2]] == [wanted[n] for n in departments[:2]]
        assert [found[name] for name in departments[3:]] == [0, 0]

    refusing_api.refused = ""  # the API accepts again: a rerun completes every department
    code, lines = airnub_deploy("--concurrency", at_once, *departments)
    assert code == 0, lines
    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        assert {name: deployed(name) for name in departments} == wanted


@pytest.mark.parametrize("text", ["0", "65", "-1", "1.5", "eight", "", "8\x1b[31m", "9" * 40])
def test_a_concurrency_out_of_range_is_one_line_naming_the_option(text):
    code, lines = airnub_deploy("--dry-run", "--concurrency", text, "dept_nowhere")
    assert code == 2, lines
    assert len(lines) == 1, lines
    [line] = lines
    assert line.startswith("error: --concurrency: "), line
    assert line.endswith("is not a whole number from 1 to 64"), line
    assert "\x1b" not in line


@pytest.mark.parametrize("text", ["0", "many", "100"])
def test_a_concurrency_setting_out_of_range_names_the_variable(text, monkeypatch):
    monkeypatch.setenv(deploy.CONCURRENCY_ENV, text)
    code, lines = airnub_deploy("--dry-run", "dept_nowhere")
    assert code == 2, lines
    why = "is not a whole number from 1 to 64"
    assert lines == [f"error: {deploy.CONCURRENCY_ENV}: {text!r} {why}"]


def test_the_option_wins_over_the_setting(monkeypatch):
    monkeypatch.setenv(deploy.CONCURRENCY_ENV, "3")
    assert deploy.concurrency(None) == 3
    assert deploy.concurrency(" 12 ") == 12
    monkeypatch.setenv(deploy.CONCURRENCY_ENV, " ")
    assert deploy.concurrency(None) == deploy.DEFAULT_CONCURRENCY


class Boom(Exception):
    pass


@given(
    outcomes=st.lists(st.booleans(), max_size=10),
    at_once=st.integers(min_value=1, max_value=8),
)
def test_each_bounded_keeps_order_bound_and_whole_departments(outcomes, at_once):
    """Each name's work either ran to its end or never started; no more than ``at_once``
    ran together; results come in the order given; the first failure in that order is
    the one raised."""
    names = [f"n{index}" for index in range(len(outcomes))]
    lock, running, most = threading.Lock(), [0], [0]
    started, finished = [], []
    release = threading.Event()

    def work(name: str) -> str:
        with lock:
            started.append(name)
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(0.0002 * (len(names) - names.index(name)))  # later names finish first
        with lock:
            running[0] -= 1
            finished.append(name)
        if not outcomes[names.index(name)]:
            raise Boom(name)
        return name.upper()

    failing = [name for name, ok in zip(names, outcomes, strict=True) if not ok]
    if not failing:
        result = deploy.each_bounded(work, names, at_once)
        assert list(result.items()) == [(name, name.upper()) for name in names]
    else:
        with pytest.raises(Boom) as raised:
            deploy.each_bounded(work, names, at_once)
        assert raised.value.args[0] == min(set(failing) & set(started), key=names.index)
        if at_once == 1:  # one after another: nothing after the first failure starts
            assert started == names[: names.index(failing[0]) + 1]
    assert sorted(started) == sorted(finished)
    assert most[0] <= at_once
