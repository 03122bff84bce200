"""`airnub automations sync` (and the alert block lookup of `airnub blocks sync`) against a
hostile Prefect API on loopback, each in a process of its own: an answer Prefect never
sends is one line, never a traceback; a server repeating a page of automations cannot keep
the read going, and the read never asks for a page larger than the server's own; a real
SIGTERM in the middle of the writes leaves the server as it was; a PREFECT_API_URL holding a
user, password or query token never shows them in a report or an error line."""

import functools
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from airnub_core import conventions
from airnub_core.config import ConfigError
from airnub_platform import automation_sync, block_sync
from airnub_platform.block_sync import declared_secrets as declared
from airnub_platform.runner import shown_url
from airnub_platform.testing import clean_env
from hypothesis import given
from hypothesis import strategies as st

DEADLINE = 120.0  # seconds: every wait here has one
# An answer: (status, body), or None to hold the request until the test ends.
Answer = tuple[int, bytes] | None
Route = Callable[[str, str, dict], Answer]


@contextmanager
def fake_api(route: Route) -> Iterator[tuple[str, list[tuple[str, str, dict]]]]:
    """A loopback server that passes for a Prefect API: healthy, and every other request
    answered by ``route(method, path, body)``. Yields its URL and the requests it got."""
    asked: list[tuple[str, str, dict]] = []
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None: ...

        def handle_any(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.endswith("/health"):
                return self.send(200, b"true")
            body = json.loads(raw) if raw else {}
            asked.append((self.command, self.path, body))
            answer = route(self.command, self.path, body)
            if answer is None:
                release.wait(timeout=DEADLINE)  # the server thread never outlives the test
                return None
            return self.send(*answer)

        def send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", asked
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def notification_block(body: dict) -> bytes:
    """The answer to a block lookup: one webhook notification block of the asked name."""
    name = body["block_documents"]["name"]["any_"][0]
    found = {"id": str(uuid4()), "name": name, "block_type": {"slug": "custom-webhook"},
             "block_schema": {"capabilities": ["notify"]}}  # fmt: skip
    return json.dumps([found]).encode()


def hand_made_automation(name: str) -> dict:
    """An automation as the API lists it, made by someone by hand (no managed tag)."""
    from prefect.events.schemas.automations import AutomationCore, EventTrigger

    core = AutomationCore(name=name, trigger=EventTrigger(expect={"x"}), actions=[])
    return {**core.model_dump(mode="json"), "id": str(uuid4())}


@functools.cache
def installed_departments() -> list[str]:
    """The departments a command started here knows: those installed, read in a process
    of its own (this one may know the departments other tests made meanwhile)."""
    command = "from airnub_core import conventions; print(*sorted(conventions.departments()))"
    found = subprocess.run([sys.executable, "-c", command], env=clean_env(), check=True,
                           capture_output=True, text=True, timeout=DEADLINE)  # fmt: skip
    return found.stdout.split()


def cli(url: str, tmp_path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = clean_env(PREFECT_API_URL=url, PREFECT_HOME=str(tmp_path / "home"),
                    AIRNUB_API_DEADLINE_SECONDS="120", **(env or {}))  # fmt: skip
    command = "from airnub_platform.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", command, *args], env=env, cwd=tmp_path,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=30)
        pytest.fail(f"the command never ended:\n{output}")
    return process.returncode, output


def one_error_line(output: str) -> str:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


JUNK = {
    "not JSON": b"<html>proxy error</html>",
    "an object": b'{"automations": []}',
    "strings": b'["a", "b"]',
    "no ids": b'[{"name": "x"}]',
}


@pytest.mark.parametrize("junk", JUNK.values(), ids=JUNK.keys())
def test_junk_automations_list_is_one_line(tmp_path, junk):
    def route(method: str, path: str, body: dict) -> Answer:
        if path.endswith("/automations/filter"):
            return 200, junk
        if path.endswith("/block_documents/filter"):
            return 200, notification_block(body)
        return 404, b'{"detail": "no"}'

    with fake_api(route) as (url, _):
        code, output = finish(cli(url, tmp_path, "automations", "sync", "--dry-run"))
    assert code == 1, output
    assert "sent an answer Prefect does not send" in one_error_line(output)


@pytest.mark.parametrize("junk", JUNK.values(), ids=JUNK.keys())
def test_junk_block_lookup_is_one_line(tmp_path, junk):
    """The notification block lookup is airnub's own read, shaped by airnub: junk there
    was an AttributeError or KeyError traceback."""

    def route(method: str, path: str, body: dict) -> Answer:
        if path.endswith("/automations/filter"):
            return 200, b"[]"
        if path.endswith("/block_documents/filter"):
            return 200, junk
        return 404, b'{"detail": "no"}'

    with fake_api(route) as (url, _):
        code, output = finish(cli(url, tmp_path, "automations", "sync", "--dry-run"))
    assert code == 1, output
    assert "sent an answer Prefect does not send" in one_error_line(output)


def test_junk_alert_block_lookup_in_blocks_sync_is_one_line(tmp_path):
    def route(method: str, path: str, body: dict) -> Answer:
        if path.endswith("/block_documents/filter"):
            return 200, b'[{"id": "not a uuid", "name": 7}]'
        return 404, b'{"detail": "no"}'

    department = installed_departments()[0]
    webhook = {conventions.alert_webhook_env(department): "https://hooks.example.com/T0KEN"}
    secrets = {block_sync.secret_env_var(name): "s3cret" for name, _ in declared(department)}
    args = ("blocks", "sync", "--dry-run", department)
    with fake_api(route) as (url, _):
        code, output = finish(cli(url, tmp_path, *args, env=webhook | secrets))
    assert code == 1, output
    assert "sent an answer Prefect does not send" in one_error_line(output)
    assert "T0KEN" not in output
    assert "s3cret" not in output


FULL_PAGE = 200  # Prefect's default page size


def test_a_repeated_page_of_automations_ends_the_read(tmp_path):
    """A server that ignores the offset answers every page alike, each one full: the read
    stops at the first page that brings nothing new, instead of asking for ever (after 20
    pages this server gives up with a 500, which the read must never get to)."""
    page = json.dumps([hand_made_automation(f"someone's {i}") for i in range(FULL_PAGE)])

    def route(method: str, path: str, body: dict) -> Answer:
        if path.endswith("/automations/filter"):
            listed = sum(p.endswith("/automations/filter") for _, p, _ in asked)
            return (200, page.encode()) if listed <= 20 else (500, b'{"detail": "enough"}')
        if path.endswith("/block_documents/filter"):
            return 200, notification_block(body)
        return 404, b'{"detail": "no"}'

    with fake_api(route) as (url, asked):
        code, output = finish(cli(url, tmp_path, "automations", "sync", "--dry-run"))
    assert code == 0, output
    lists = [body for _, path, body in asked if path.endswith("/automations/filter")]
    assert len(lists) == 2, len(lists)  # the page, then the same page again: the end
    # the server's own page size: one set lower than 200 refuses limit=200 with a 422
    assert all(body.get("limit") is None for body in lists), lists


def test_sigterm_during_the_writes_undoes_them(tmp_path):
    """A CI job cancelled mid-sync (a real SIGTERM while the second automation is being
    created): the first one made is deleted again, the process exits 143 with one line."""
    if len(installed_departments()) < 2:
        pytest.skip("needs two installed departments: two automations to create")
    stored: dict[str, dict] = {}
    holding = threading.Event()

    def route(method: str, path: str, body: dict) -> Answer:
        if path.endswith("/automations/filter"):
            return 200, json.dumps(list(stored.values())).encode()
        if path.endswith("/block_documents/filter"):
            return 200, notification_block(body)
        if method == "POST" and path.endswith("/automations/"):
            if stored:  # the second create: held until the test ends
                holding.set()
                return None
            made = {**body, "id": str(uuid4())}
            stored[made["id"]] = made
            return 201, json.dumps(made).encode()
        if method == "DELETE" and (found := re.search(r"/automations/([0-9a-f-]+)$", path)):
            stored.pop(found[1], None)
            return 204, b""
        return 404, b'{"detail": "no"}'

    with fake_api(route) as (url, _):
        process = cli(url, tmp_path, "automations", "sync")
        if not holding.wait(timeout=DEADLINE):
            process.kill()
            pytest.fail(f"the second automation was never written:\n{finish(process)[1]}")
        assert len(stored) == 1
        os.kill(process.pid, signal.SIGTERM)
        code, output = finish(process)
    assert code == 128 + signal.SIGTERM, output
    assert "stopped by SIGTERM" in one_error_line(output)
    assert stored == {}, "the automation written before the signal is still there"


@pytest.mark.parametrize("junk", [b"{}", b'{"id": "not a uuid"}', b"[]", b"ok"])
def test_junk_answer_to_a_create_is_one_line_and_undone(tmp_path, junk):
    """The second create is answered with junk: one line, and the first one made is
    deleted again (Prefect's own create_automation raised a KeyError traceback)."""
    if len(installed_departments()) < 2:
        pytest.skip("needs two installed departments: two automations to create")
    stored: dict[str, dict] = {}

    def route(method: str, path: str, body: dict) -> Answer:
        if path.endswith("/automations/filter"):
            return 200, json.dumps(list(stored.values())).encode()
        if path.endswith("/block_documents/filter"):
            return 200, notification_block(body)
        if method == "POST" and path.endswith("/automations/"):
            if stored:
                return 201, junk
            made = {**body, "id": str(uuid4())}
            stored[made["id"]] = made
            return 201, json.dumps(made).encode()
        if method == "DELETE" and (found := re.search(r"/automations/([0-9a-f-]+)$", path)):
            stored.pop(found[1], None)
            return 204, b""
        return 404, b'{"detail": "no"}'

    with fake_api(route) as (url, _):
        code, output = finish(cli(url, tmp_path, "automations", "sync"))
    assert code == 1, output
    assert "sent an answer Prefect does not send" in one_error_line(output)
    assert stored == {}, "the automation written before the junk answer is still there"


# --- a PREFECT_API_URL carrying a credential (https://user:token@host/api) --------------

PASSWORD = "s3cretpw"
# what a user name, password or query may hold in a URL (percent-escapes included)
URL_TEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;="


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://admin:{PASSWORD}@") + f"?token={PASSWORD}"


def empty_server(method: str, path: str, body: dict) -> Answer:
    if path.endswith("/block_documents/filter"):
        return 200, notification_block(body)
    if path.endswith(("/automations/filter", "/flow_runs/filter")):
        return 200, b"[]"
    return 404, b'{"detail": "no"}'


@pytest.mark.parametrize(
    "args",
    [("usage", "--since", "1d"), ("automations", "sync", "--dry-run")],
    ids=["usage", "automations"],
)
def test_a_report_never_shows_the_url_credentials(tmp_path, args):
    with fake_api(empty_server) as (url, asked):
        code, output = finish(cli(with_credentials(url), tmp_path, *args))
    assert code == 0, output
    assert asked, "the command never reached the server"
    assert PASSWORD not in output
    assert url in output  # the server is still named


def test_an_error_status_never_shows_the_url_credentials(tmp_path):
    def failing(method: str, path: str, body: dict) -> Answer:
        return 500, b'{"detail": "down"}'

    with fake_api(failing) as (url, _):
        code, output = finish(cli(with_credentials(url), tmp_path, "usage"))
    assert code == 1, output
    line = one_error_line(output)
    assert "answered 500" in line
    assert PASSWORD not in output
    assert url in line


def test_a_dead_api_never_shows_the_url_credentials(tmp_path):
    with fake_api(empty_server) as (url, _):
        pass  # its port is closed now: nothing answers there
    code, output = finish(cli(with_credentials(url), tmp_path, "automations", "sync"))
    assert code == 1, output
    line = one_error_line(output)
    assert "did not answer" in line
    assert PASSWORD not in output
    assert url in line


@given(
    user=st.text(alphabet=URL_TEXT, min_size=6),
    password=st.text(alphabet=URL_TEXT, min_size=6),
    query=st.text(alphabet=URL_TEXT, min_size=6),
    host=st.sampled_from(["127.0.0.1:4200", "[::1]:4200", "prefect.example.com"]),
)
def test_shown_url_keeps_the_server_and_drops_the_credentials(user, password, query, host):
    shown = shown_url(f"https://{user}:{password}@{host}/api?key={query}")
    assert shown == f"https://{host}/api"


# --- a pull request's configs/automations.yaml -----------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"rules:\n  - rule: late # caf\xe9\n", b"\xff\xfe\x00r\x00u\x00l\x00e\x00s"],
    ids=["latin-1", "utf-16"],
)
def test_a_rules_file_that_is_not_utf8_is_one_line(tmp_path, content):
    path = tmp_path / "automations.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        automation_sync.rules_in(path)
    assert str(raised.value).startswith(f"{path}: not UTF-8 text")
    assert "\n" not in str(raised.value)


def test_a_rules_path_that_is_a_folder_or_a_fifo_is_one_line(tmp_path):
    folder = tmp_path / "automations.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        automation_sync.rules_in(folder)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # reading it would wait for ever
    with pytest.raises(ConfigError, match="not a regular file"):
        automation_sync.rules_in(fifo)


# --- airnub retire against junk --------------------------------------------------------


@pytest.mark.parametrize(
    "args", [("--preview", "pr-7"), ("dept_long_gone",)], ids=["preview", "department"]
)
@pytest.mark.parametrize("junk", [b"<html>proxy</html>", b'[{"id": 5}]'], ids=["html", "no-ids"])
def test_retire_against_junk_is_one_line(tmp_path, args, junk):
    def route(method: str, path: str, body: dict) -> Answer:
        return (200, junk) if method == "POST" else (404, b'{"detail": "no"}')

    with fake_api(route) as (url, asked):
        code, output = finish(cli(url, tmp_path, "retire", "--dry-run", *args))
    assert asked, output
    assert code == 1, output
    assert "sent an answer Prefect does not send" in one_error_line(output)


# --- airnub usage against a server that ignores the filter -----------------------------


def flow_run(department: str, expected: datetime, parent: bool = False) -> dict:
    from prefect.client.schemas.objects import FlowRun

    # validated from a dict: the field is typed with Prefect's own datetime subclass
    run = FlowRun.model_validate({"flow_id": uuid4(), "tags": [department],
                                  "expected_start_time": expected,
                                  "parent_task_run_id": uuid4() if parent else None})  # fmt: skip
    return run.model_dump(mode="json")


def test_usage_counts_only_the_runs_it_asked_for(tmp_path):
    """The server answers every read with the same runs, whatever the filter: a top-level
    run in the window counts; a subflow and a run of last year do not."""
    department = installed_departments()[0]
    now = datetime.now(UTC)
    runs = [flow_run(department, now - timedelta(hours=1)),
            flow_run(department, now - timedelta(hours=1), parent=True),
            flow_run(department, now - timedelta(days=400))]  # fmt: skip

    def route(method: str, path: str, body: dict) -> Answer:
        if path.endswith("/flow_runs/filter"):
            return 200, json.dumps(runs if not body.get("offset") else []).encode()
        return 404, b'{"detail": "no"}'

    with fake_api(route) as (url, _):
        code, output = finish(cli(url, tmp_path, "usage", "--since", "1d", "--format", "json"))
    assert code == 0, output
    counted = {row["department"]: row["runs"] for row in json.loads(output)}
    assert counted[department] == 1, output
