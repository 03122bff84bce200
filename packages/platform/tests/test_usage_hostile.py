"""`airnub usage` against a hostile Prefect API on loopback, in a process of its own: an
answer Prefect never sends is one line, and Ctrl-C (a real SIGINT) while the runs are
being read leaves the files it was asked to write as they were, with no part-files; runs
are read page by page, and a server repeating a page cannot keep the read going."""

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from airnub_platform.testing import clean_env

# SIGINT gets Python's handler back: a launcher may have started pytest ignoring it
COMMAND = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler);"
    " from airnub_platform.cli import main; main()"
)


@contextmanager
def fake_api(flow_runs: bytes | None) -> Iterator[tuple[str, threading.Event]]:
    """A loopback server that passes for a Prefect API until asked for flow runs; then it
    answers ``flow_runs``, or (None) holds the request until the test ends. Yields its URL
    and an event set once flow runs were asked for."""
    asked, release = threading.Event(), threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None: ...

        def answer(self, body: bytes, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self.answer(b"true" if self.path.endswith("/health") else b'{"detail": "no"}',
                        200 if self.path.endswith("/health") else 404)  # fmt: skip

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.endswith("/flow_runs/filter"):
                return self.answer(b'{"detail": "no"}', 404)
            asked.set()
            if flow_runs is None:
                release.wait(timeout=120)  # a deadline: the server thread never outlives it
                return None
            return self.answer(flow_runs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", asked
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def start_usage(url, tmp_path, *args):
    env = clean_env(PREFECT_API_URL=url, PREFECT_HOME=str(tmp_path / "home"),
                    AIRNUB_API_DEADLINE_SECONDS="120")  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", COMMAND, "usage", *args], env=env, cwd=tmp_path,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finish(process):
    try:
        output, _ = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"still running after 90 s:\n{output[-3000:]}")
    return process.returncode, output.splitlines()


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (b'[{"id": 5}]', "not a FlowRun: id:"),
        (b'{"runs": []}', "Input should be a valid list"),
        (b"<html>down for maintenance</html>", "not JSON"),
    ],
    ids=["wrong field", "not a list", "not json"],
)
def test_an_answer_prefect_never_sends_is_one_line(tmp_path, answer, problem):
    with fake_api(answer) as (url, _):
        code, lines = finish(start_usage(url, tmp_path, "--csv", str(tmp_path / "u.csv")))
    assert code == 1, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: the Prefect API at {url} sent an answer Prefect does not")
    assert problem in lines[0]
    assert not (tmp_path / "u.csv").exists()


def test_ctrl_c_while_reading_leaves_the_reports_as_they_were(tmp_path):
    report, chart = tmp_path / "usage.csv", tmp_path / "usage.png"
    report.write_text("last week's report\n")
    with fake_api(None) as (url, asked):
        usage = start_usage(url, tmp_path, "--csv", str(report), "--png", str(chart))
        if not asked.wait(timeout=90):  # a deadline, not a timing
            usage.kill()
            pytest.fail(f"usage never asked for flow runs: {usage.communicate()[0][-2000:]}")
        os.kill(usage.pid, signal.SIGINT)
        code, lines = finish(usage)
    assert code != 0, lines
    assert not [line for line in lines if "Traceback" in line], lines
    assert report.read_text() == "last week's report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "usage.csv"]


def test_no_configured_api_is_refused_before_anything_starts(tmp_path):
    env = clean_env(PREFECT_HOME=str(tmp_path / "home"))
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, "-c", COMMAND, "usage"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=90)  # fmt: skip
    assert done.returncode == 2, done
    assert done.stderr.strip().startswith("error: no Prefect API configured"), done.stderr
    assert done.stdout == ""


def paging_api(runs: list[dict], page: int, honour_offset: bool = True):
    """A loopback API serving ``runs`` ``page`` at a time, as Prefect pages (by offset),
    or (``honour_offset`` False) the first page again whatever is asked."""
    bodies: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None: ...

        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            bodies.append(body)
            start = body.get("offset", 0) if honour_offset else 0
            data = json.dumps(runs[start : start + page]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, bodies


def a_run(department: str, state: str, minutes_ago: int) -> dict:
    from datetime import UTC, datetime, timedelta
    from uuid import uuid4

    expected = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {"id": str(uuid4()), "flow_id": str(uuid4()), "name": "r", "tags": [department],
            "state_type": state, "state_name": state.title(),
            "expected_start_time": expected.isoformat(), "start_time": expected.isoformat(),
            "total_run_time": 10.0, "estimated_run_time": 10.0}  # fmt: skip


@pytest.mark.parametrize("honour_offset", [True, False], ids=["pages", "ignores offset"])
def test_every_page_is_read_once_and_a_server_repeating_a_page_ends_the_read(
    tmp_path, honour_offset
):
    from datetime import timedelta

    from airnub_platform import usage
    from airnub_platform.testing import importable_departments
    from prefect.client.orchestration import SyncPrefectClient

    department = "dept_paged_usage"
    runs = [a_run(department, "FAILED" if i % 3 == 0 else "COMPLETED", i + 1) for i in range(7)]
    server, bodies = paging_api(runs, page=2, honour_offset=honour_offset)
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        with (
            importable_departments(tmp_path, {department: "Paged Team"}),
            SyncPrefectClient(url) as client,
        ):
            found = {u.department: u for u in usage.read_usage(client, timedelta(hours=1))}
    finally:
        server.shutdown()
        server.server_close()
    read = found[department]
    if honour_offset:
        assert (read.runs, read.failures, read.run_time_seconds) == (7, 3, 70.0)
        assert [body["offset"] for body in bodies] == [0, 2, 4, 6, 7]
    else:  # the second page brought nothing new: the read ended there
        assert (read.runs, len(bodies)) == (2, 2)
    sent = bodies[0]["flow_runs"]
    assert department in sent["tags"]["any_"]
    assert sent["parent_task_run_id"]["is_null_"] is True
