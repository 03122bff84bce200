"""`airnub deploy` against a Prefect API that answers, but badly: an error status, junk,
or JSON of the wrong shape. One line naming the API and the request, exit 1, nothing of
the answer's body shown, and nothing written. A real loopback HTTP server."""

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from airnub_platform.cli import app
from airnub_platform.testing import api_at, loopback_http
from prefect.settings import PREFECT_API_URL
from typer.testing import CliRunner

DEPARTMENT = "dept_hostile_answers"
POOL = "dept-hostile-answers"
ECHOED = "pnu_echoed_back_0123456789"  # what a careless server repeats in its body
POOL_ANSWERS = {
    "500": (500, json.dumps({"detail": ECHOED}).encode()),
    "403": (403, json.dumps({"detail": ECHOED}).encode()),
    "junk": (200, b"<html>" + ECHOED.encode()),
    "wrong shape": (200, json.dumps({"name": 5, "type": {"x": ECHOED}}).encode()),
}


class _Hostile(BaseHTTPRequestHandler):
    pool_answer: tuple[int, bytes] = (404, b'{"detail": "Not found."}')
    writes: list[str]  # a fresh list per server, see hostile_api

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
        if self.path.startswith(f"/api/work_pools/{POOL}"):
            return self._send(*self.pool_answer)
        return self._send(404, b'{"detail": "Not found."}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.endswith("/filter"):
            self.writes.append(f"POST {self.path}")
        return self._send(500, json.dumps({"detail": ECHOED}).encode())

    def do_PATCH(self) -> None:
        self.writes.append(f"PATCH {self.path}")
        return self._send(500, b"{}")


@pytest.fixture
def hostile_api(monkeypatch, make_department) -> Iterator[type[_Hostile]]:
    make_department(DEPARTMENT, {"ingestion": ["feed"]})
    handler = type("Handler", (_Hostile,), {"writes": []})
    with loopback_http(handler) as root, api_at(f"{root}/api", monkeypatch):
        yield handler


def deploy(*options: str) -> tuple[int, list[str]]:
    args = ["deploy", *options, DEPARTMENT]
    result = CliRunner().invoke(app, args, terminal_width=400)
    return result.exit_code, result.output.splitlines()


def one_line(code: int, lines: list[str], url: str) -> str:
    assert code == 1, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: the Prefect API at {url} "), lines
    assert ECHOED not in lines[0]
    return lines[0]


@pytest.mark.parametrize("answer", POOL_ANSWERS)
@pytest.mark.parametrize("pool_type", ["process", "kubernetes"])
def test_a_bad_answer_to_the_pool_read_is_one_line_and_nothing_is_written(
    hostile_api, answer, pool_type
):
    hostile_api.pool_answer = POOL_ANSWERS[answer]
    image = ["--registry", "127.0.0.1:5000/acme", "--tag", "t1"] if pool_type != "process" else []
    code, lines = deploy("--pool-type", pool_type, *image)
    line = one_line(code, lines, PREFECT_API_URL.value())
    if answer in ("500", "403"):
        status = POOL_ANSWERS[answer][0]
        assert f" answered {status} " in line and line.endswith(f"GET /api/work_pools/{POOL}")
    else:
        assert "sent an answer Prefect does not send: not " in line
    assert hostile_api.writes == []


def test_an_error_status_to_a_write_is_one_line_naming_the_request(hostile_api):
    code, lines = deploy()  # the pool is missing: its creation is answered with a 500
    line = one_line(code, lines, PREFECT_API_URL.value())
    assert line.endswith("answered 500 Internal Server Error to POST /api/work_pools/")
    assert hostile_api.writes == ["POST /api/work_pools/"]
