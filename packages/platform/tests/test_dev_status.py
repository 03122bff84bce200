"""`airnub dev --status` reads dev's state file and asks the server's /health, with a
deadline, without importing prefect: real `airnub` processes, a real process standing in
for dev's own, and real loopback servers that answer, refuse, or never answer."""

import json
import socket
import subprocess
import sys
from http.server import BaseHTTPRequestHandler

import pytest
from airnub_platform import local_api
from airnub_platform.dev import STATUS_TIMEOUT_SECONDS
from airnub_platform.testing import (
    CLI_SAYING_IF_PREFECT_WAS_IMPORTED,
    clean_env,
    loopback_http,
)

CODE = CLI_SAYING_IF_PREFECT_WAS_IMPORTED


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dev_process():
    """A live process whose pid the state file names, as a running dev's would."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process.pid
    process.kill()
    process.wait(timeout=30)


def status(tmp_path, state: dict | str | None):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    if state is not None:
        text = state if isinstance(state, str) else json.dumps(state)
        (home / "airnub-dev.json").write_text(text)
    env = {k: v for k, v in clean_env(PREFECT_HOME=str(home)).items() if k != "PREFECT_API_URL"}
    done = subprocess.run([sys.executable, "-c", CODE, "dev", "--status"], env=env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
    assert "imported prefect: False" in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if not line.startswith("imported")]
    return done.returncode, done.stdout.strip(), errors


def state(pid: int, port: int, ready: bool = True) -> dict:
    children = {"server": pid, "worker-dept_a": pid, "worker-dept_b": pid}
    return {"pid": pid, "port": port, "database": "sqlite", "children": children, "ready": ready}


def test_not_running_says_so_and_exits_1(tmp_path):
    assert status(tmp_path, None) == (1, "airnub dev is not running", [])


@pytest.mark.parametrize("garbage", ["{not json", "[]", '{"pid": "x"}', ""])
def test_an_unreadable_state_file_is_not_running(tmp_path, garbage):
    assert status(tmp_path, garbage) == (1, "airnub dev is not running", [])


def test_a_state_file_of_a_process_that_is_gone_is_removed(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    assert status(tmp_path, state(gone.pid, 4200))[:2] == (1, "airnub dev is not running")
    assert not (tmp_path / "home" / "airnub-dev.json").exists()


def test_a_ready_dev_whose_server_answers_is_ready(tmp_path, dev_process):
    with loopback_http(Health) as url:
        port = int(url.rsplit(":", 1)[1])
        code, out, errors = status(tmp_path, state(dev_process, port))
    assert code == 0 and not errors
    assert out == (
        f"airnub dev (pid {dev_process}) ready: UI http://127.0.0.1:{port}, sqlite, 2 workers"
    )


def test_a_starting_dev_is_starting_without_asking_its_server(tmp_path, dev_process):
    port = local_api.free_port()  # nothing listens yet, as while dev boots
    code, out, errors = status(tmp_path, state(dev_process, port, ready=False))
    assert (code, errors) == (0, []) and " starting: " in out


def test_a_ready_dev_whose_server_refuses_is_one_error_line_exit_1(tmp_path, dev_process):
    port = local_api.free_port()  # bound, then closed: refused
    code, out, errors = status(tmp_path, state(dev_process, port))
    assert code == 1 and " not answering: " in out
    assert errors == [
        f"error: its Prefect server at http://127.0.0.1:{port}/api does not answer"
        " (connection refused)"
    ]


def test_a_server_that_accepts_and_never_answers_meets_the_deadline(tmp_path, dev_process):
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts into its backlog
        port = listener.getsockname()[1]
        code, out, errors = status(tmp_path, state(dev_process, port))
    assert code == 1 and " not answering: " in out
    assert errors == [
        f"error: its Prefect server at http://127.0.0.1:{port}/api does not answer"
        f" (no answer within {STATUS_TIMEOUT_SECONDS:g} s)"
    ]
