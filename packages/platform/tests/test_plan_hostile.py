"""`airnub plan` and `airnub drift` against a Prefect API that is not there, or answers
badly: one line naming the API, plan exits 1 and drift 2 (1 means drift), nothing of the
answer shown and nothing written. Real loopback HTTP servers."""

import json
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from airnub_core import conventions
from airnub_platform.cli import app
from airnub_platform.testing import api_at, changed_repository, loopback_http
from typer.testing import CliRunner

DEPARTMENT = "dept_plan_hostile"
ECHOED = "pnu_echoed_back_0123456789"  # what a careless server repeats in its body
ANSWERS = {
    "500": (500, json.dumps({"detail": ECHOED}).encode()),
    "junk": (200, b"<html>" + ECHOED.encode()),
    "wrong shape": (200, json.dumps([{"id": ECHOED, "name": 5}]).encode()),
}


class _Hostile(BaseHTTPRequestHandler):
    answer: tuple[int, bytes] = ANSWERS["500"]
    writes: list[str]

    def log_message(self, *_: object) -> None:
        return None

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.endswith("/health"):
            return self._send(200, b"true")
        return self._send(*self.answer)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.endswith("/filter"):
            self.writes.append(f"POST {self.path}")
        return self._send(*self.answer)

    def do_PATCH(self) -> None:
        self.writes.append(f"PATCH {self.path}")
        return self._send(500, b"{}")

    def do_DELETE(self) -> None:
        self.writes.append(f"DELETE {self.path}")
        return self._send(500, b"{}")


@pytest.fixture
def repository(make_department, monkeypatch):
    root, base = changed_repository(make_department(DEPARTMENT, {"ingestion": ["feed"]}))
    monkeypatch.chdir(root)
    with pytest.MonkeyPatch.context() as patch:  # drift's "every department"
        patch.setattr(conventions, "departments", lambda: {DEPARTMENT: "Hostile"})
        yield base


@pytest.fixture
def hostile_api(monkeypatch) -> Iterator[type[_Hostile]]:
    handler = type("Handler", (_Hostile,), {"writes": []})
    with loopback_http(handler) as url, api_at(f"{url}/api", monkeypatch):
        yield handler


COMMANDS = {"plan": (["plan"], 1), "drift": (["drift"], 2)}


def invoke(command, base):
    args, code = COMMANDS[command]
    if command == "plan":
        args = [*args, "--base", base]
    done = CliRunner().invoke(app, [*args, "--format", "json"], terminal_width=400)
    return code, done


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_a_bad_answer_is_one_line_naming_the_api(repository, hostile_api, command, answer):
    hostile_api.answer = ANSWERS[answer]
    code, done = invoke(command, repository)
    assert done.exit_code == code, done.output
    lines = done.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the Prefect API at http://127.0.0.1:")
    assert ECHOED not in done.output and "Traceback" not in done.output
    assert hostile_api.writes == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_api_that_is_not_there_is_one_line(repository, monkeypatch, command):
    with socket.socket() as taken:  # a port nothing listens on while the command runs
        taken.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{taken.getsockname()[1]}/api"
        with api_at(url, monkeypatch):
            code, done = invoke(command, repository)
    assert done.exit_code == code, done.output
    lines = done.output.splitlines()
    assert len(lines) == 1 and url in lines[0] and "Traceback" not in done.output
