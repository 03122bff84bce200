"""How a command talks to the Prefect API: a deadline on every request, and one line
naming the API when it stops answering."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NoReturn

from rich.markup import escape

from airnub_platform.cli._shared import errors, fail

if TYPE_CHECKING:
    import httpx

    from airnub_platform.local_api import LocalAPI
    from airnub_platform.runner import ApiUnreachable

_GIVING_UP = threading.Lock()


def api_gone(local: LocalAPI | None, code: int = 1) -> Callable[[ApiUnreachable], NoReturn]:
    """What a command does when its Prefect API stops answering (see ``runner.watched``):
    one line naming the API, exit ``code``, at once."""
    # here, not above: the runner module is not needed by --help and the cheap commands
    from airnub_platform import runner

    try:
        runner.api_deadline()  # a bad AIRNUB_API_DEADLINE_SECONDS is refused up front
    except ValueError as error:
        raise fail(str(error)) from None

    def give_up(error: ApiUnreachable) -> NoReturn:
        with _GIVING_UP:  # the watching thread and the command may both get here: one line
            errors.print(f"[red]error:[/red] {escape(str(error))}", highlight=False,
                         soft_wrap=True)  # fmt: skip
            sys.stdout.flush()
            sys.stderr.flush()
            if local is not None:
                local.process.kill()
            # A hard exit: at interpreter exit Prefect's log and event workers would retry
            # the silent API for minutes, printing as they go.
            os._exit(code)

    return give_up


@contextlib.contextmanager
def prefect_session(writes_to: str = "", failure_code: int = 1) -> Iterator[str]:
    """The configured Prefect API, or the embedded local one started for the command,
    with a deadline on every request: a hung API fails like an unreachable one.

    ``writes_to`` names a command whose writes must reach a real server (``deploy``,
    ``retire``): with no API configured it is refused, rather than writing to an embedded
    API that is thrown away when the command ends (a CI job missing its secret).
    ``failure_code`` is the exit code when the API fails (``airnub drift`` keeps 1 for
    drift)."""
    # here, not above: httpx and the runner module are not needed by --help
    import httpx

    from airnub_platform import runner

    if writes_to and not runner.configured_api_url():
        raise fail(
            f"no Prefect API configured: set PREFECT_API_URL (or start `airnub dev`);"
            f" {writes_to} writes to a server, and the embedded one ends with the command"
            " (--dry-run works without one)"
        )
    try:
        local = runner.start_local_api()
    except runner.PlanError as error:  # a PREFECT_HOME it cannot use: one line
        raise fail(str(error)) from None
    url = "the Prefect API"
    timeout = runner.REQUEST_TIMEOUT_SECONDS
    try:
        on_dead = api_gone(local, failure_code)
        with (
            runner.prefect_api(local) as url,
            runner.bounded_requests() as timeout,
            runner.watched(url, on_dead),
        ):
            url = runner.shown_url(url)  # what the command prints: never a credential
            yield url
    except runner.ApiUnreachable as error:  # before anything was sent: see runner.watched
        raise fail(str(error), failure_code) from None
    except httpx.TimeoutException:  # the API answered the probes, not this request
        reason = f"no answer within {timeout:g} s, PREFECT_API_REQUEST_TIMEOUT"
        raise fail(str(runner.ApiUnreachable(url, reason)), failure_code) from None
    except (OSError, httpx.TransportError) as error:
        raise fail(str(runner.ApiUnreachable(url, runner.reason_of(error))), failure_code) from None
    except httpx.HTTPStatusError as error:  # one the command does not handle itself
        raise fail(refused(url, error), failure_code) from None
    finally:
        if local is not None:
            local.stop()


def refused(url: str, error: httpx.HTTPStatusError) -> str:
    """One line for an error status: the request, never the answer's body, which may
    repeat what was sent (Prefect's 422 answers hold the request body)."""
    response, request = error.response, error.request
    status = f"{response.status_code} {response.reason_phrase}".strip()
    from airnub_platform.runner import shown_url

    where = shown_url(url)
    return f"the Prefect API at {where} answered {status} to {request.method} {request.url.path}"


@contextlib.contextmanager
def answers_read(url: str, code: int = 1) -> Iterator[None]:
    """An answer Prefect never sends (not JSON, or not the shape its client reads) met in
    the block is one line naming the API (see :func:`unreadable`), exit ``code``."""
    import json

    from pydantic import ValidationError

    try:
        yield
    except (json.JSONDecodeError, ValidationError) as error:
        raise fail(unreadable(url, error), code) from None


def unreadable(url: str, error: ValueError) -> str:
    """One line for an answer that is not what Prefect sends: the first problem, never the
    answer itself."""
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        problem = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in problem["loc"])
        why = f"not a {error.title}: {where}: {problem['msg']}" if where else problem["msg"]
    else:
        why = f"not JSON ({str(error).splitlines()[0][:80]})"
    return f"the Prefect API at {url} sent an answer Prefect does not send: {why}"
