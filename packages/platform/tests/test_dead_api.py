"""A Prefect API that is down, hangs, or dies mid-run: every command that talks to it
ends with one line naming its URL and a non-zero exit, not a pile of retries and
tracebacks. Real loopback servers and a real Prefect server killed by its PID."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from airnub_platform import local_api, runner
from airnub_platform.testing import clean_env, write_department_project

DEPT = "dept_dead_api"
COMMANDS = {
    "run": ["run", DEPT, "ingestion"],
    "variables sync": ["variables", "sync", DEPT],
    "deploy": ["deploy", "--dry-run", DEPT],
    "blocks sync": ["blocks", "sync", "--dry-run", DEPT],
}


@pytest.fixture(scope="module")
def department(tmp_path_factory):
    """A department another process can import: a quick and a slow ingestion category."""
    root = tmp_path_factory.mktemp("dead_api")
    folder = write_department_project(root, DEPT, "Dead Api", {"ingestion": ["quick", "slow"]})
    slow = folder / "src" / DEPT / "configs" / "variables" / "ingestion" / "slow.yaml"
    slow.write_text("message: slow\nsleep_seconds: 600\n")  # in flight until the API dies
    return folder / "src"


def airnub(src, api_url, *args, **env):
    """Start ``airnub *args`` in a process of its own against ``api_url``."""
    code = "from airnub_platform.cli import main; main()"
    variables = clean_env(PREFECT_API_URL=api_url, PYTHONPATH=str(src), **env)
    variables["PREFECT_HOME"] = str(src.parent / "prefect-home")
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=variables, cwd=src,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finish(process):
    """Its exit code and output lines; the run has a hard deadline, then it is killed."""
    try:
        output, _ = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"still running after 90 s:\n{output[-3000:]}")
    # `run` says what it will run before it reaches the API: the lines after that count
    return process.returncode, [
        line for line in output.splitlines() if not line.startswith("will run ")
    ]


def named_in_one_line(code, lines, url, reason):
    assert code == 1, "\n".join(lines)
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, lines
    assert errors[0].startswith(f"error: the Prefect API at {url} did not answer{reason}"), lines
    assert not [line for line in lines if "Traceback" in line or line.startswith("│")], lines


@pytest.mark.parametrize("command", COMMANDS)
def test_an_api_nobody_listens_on_is_named_in_one_line(department, command):
    url = f"http://127.0.0.1:{local_api.free_port()}/api"  # bound, then closed: refused
    code, lines = finish(airnub(department, url, *COMMANDS[command]))
    named_in_one_line(code, lines, url, " (connection refused)")
    assert len(lines) == 1


def silent_server(answer: bytes | None):
    """A loopback server that accepts connections and then says ``answer`` (or nothing)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)
            if answer is not None:
                connection.sendall(answer)
                connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener, held


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(None, " (no answer within 5 s)"), (b"hello\r\n", " (")],
    ids=["never answers", "not http"],
)
def test_an_api_that_accepts_but_does_not_answer_is_named_in_one_line(department, answer, reason):
    listener, held = silent_server(answer)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    try:
        code, lines = finish(airnub(department, url, *COMMANDS["run"]))
    finally:
        listener.close()
        for connection in held:
            connection.close()
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: the Prefect API at {url} did not answer{reason}")


def running_task_runs(url):
    body = json.dumps({"task_runs": {"state": {"type": {"any_": ["RUNNING"]}}}}).encode()
    request = urllib.request.Request(f"{url}/task_runs/count", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.read())


def test_an_api_killed_mid_run_ends_the_run_in_one_line(department, tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    server = local_api.start(db=tmp_path / "home" / "prefect.db")
    try:
        server.wait_healthy()
        run = airnub(department, server.url, *COMMANDS["run"], AIRNUB_API_DEADLINE_SECONDS="10")
        deadline = time.monotonic() + 120  # the slow category's task is in flight by then
        while running_task_runs(server.url) == 0:
            assert run.poll() is None, run.communicate()[0]
            assert time.monotonic() < deadline, "the slow category never started"
            time.sleep(0.2)
        os.kill(server.process.pid, signal.SIGKILL)
        code, lines = finish(run)
    finally:
        server.stop(settle=False)
    named_in_one_line(code, lines, server.url, " for ")
    assert len(lines) < 20, lines
    assert "(connection refused)" in lines[-1]


def test_the_deadline_setting_is_checked(monkeypatch):
    for bad in ("0", "-5", "soon", "nan", "inf", "1e9"):
        monkeypatch.setenv(runner.API_DEADLINE_ENV, bad)
        with pytest.raises(ValueError, match=rf"^{runner.API_DEADLINE_ENV}: .* 1 to 3600$"):
            runner.api_deadline()
    monkeypatch.setenv(runner.API_DEADLINE_ENV, "45")
    assert runner.api_deadline() == 45


def test_a_bad_deadline_setting_is_one_line(department):
    url = f"http://127.0.0.1:{local_api.free_port()}/api"
    run = airnub(department, url, *COMMANDS["run"], AIRNUB_API_DEADLINE_SECONDS="soon")
    code, lines = finish(run)
    assert code != 0 and len(lines) == 1 and "AIRNUB_API_DEADLINE_SECONDS" in lines[0], lines


def test_watched_raises_naming_the_url_without_the_cli():
    url = f"http://127.0.0.1:{local_api.free_port()}/api"
    with pytest.raises(runner.ApiUnreachable, match="did not answer"), runner.watched(url):
        pytest.fail("the block must not run")
