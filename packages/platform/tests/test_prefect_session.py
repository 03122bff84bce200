"""Every command talking to the Prefect API has a deadline on each request.

A hung API here is a loopback socket that completes TCP handshakes (the kernel does, on
`listen`) but never reads or answers: the case that used to hold `airnub retire` for
minutes. The tests give a small timeout through the environment and assert only the exit
code and the message, never a duration.
"""

import socket
from collections.abc import Iterator

import pytest
from airnub_platform import runner
from airnub_platform.cli import app
from prefect.settings import (
    PREFECT_API_REQUEST_TIMEOUT,
    PREFECT_API_URL,
    PREFECT_CLIENT_MAX_RETRIES,
    temporary_settings,
)
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def hung_api(monkeypatch) -> Iterator[str]:
    """The URL of an API that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)  # never accepted: connections queue, nothing is read or sent
        url = f"http://127.0.0.1:{server.getsockname()[1]}/api"
        monkeypatch.setenv("PREFECT_API_URL", url)
        monkeypatch.setenv("PREFECT_API_REQUEST_TIMEOUT", "0.5")
        monkeypatch.setenv("PREFECT_CLIENT_MAX_RETRIES", "0")
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url


def invoke(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(arguments))
    return result.exit_code, " ".join(result.output.split())


def assert_timed_out(code: int, output: str, url: str) -> None:
    assert code == 1, output
    assert f"error: the Prefect API at {url} did not answer (no answer within 0.5 s)" in output
    assert "Traceback" not in output


def test_retire_on_a_hung_api_ends_in_one_line(hung_api):
    assert_timed_out(*invoke("retire", "dept_hung_gone"), hung_api)


def test_a_deploy_dry_run_on_a_hung_api_ends_in_one_line(hung_api, make_department):
    make_department("dept_hung", {"ingestion": ["feed"]})
    assert_timed_out(*invoke("deploy", "dept_hung", "--dry-run"), hung_api)


def test_requests_are_bounded_unless_the_user_chose_otherwise(monkeypatch):
    monkeypatch.delenv("PREFECT_API_REQUEST_TIMEOUT", raising=False)
    monkeypatch.delenv("PREFECT_CLIENT_MAX_RETRIES", raising=False)
    with temporary_settings(), runner.bounded_requests() as timeout:
        assert timeout == PREFECT_API_REQUEST_TIMEOUT.value() == runner.REQUEST_TIMEOUT_SECONDS
        assert PREFECT_CLIENT_MAX_RETRIES.value() == runner.CLIENT_MAX_RETRIES
    monkeypatch.setenv("PREFECT_API_REQUEST_TIMEOUT", "120")
    monkeypatch.setenv("PREFECT_CLIENT_MAX_RETRIES", "7")
    with temporary_settings(), runner.bounded_requests() as timeout:
        assert (timeout, PREFECT_CLIENT_MAX_RETRIES.value()) == (120, 7)
