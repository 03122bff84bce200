"""``airnub plan`` and ``airnub drift``: what the repository would change on Prefect."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from airnub_platform.cli._session import prefect_session, unreadable
from airnub_platform.cli._shared import Env, chosen_env, console, fail

if TYPE_CHECKING:
    from collections.abc import Callable

    from prefect.client.orchestration import SyncPrefectClient

    from airnub_platform.deploy import Target
    from airnub_platform.plan import Report

FORMATS = ("table", "markdown", "json")
Format = Annotated[
    str, typer.Option("--format", help="table, markdown (a GitHub job summary) or json.")
]
# The pools the deployments go to, as `airnub deploy` takes them (CI: AIRNUB_WORK_POOL_TYPE).
PoolType = Annotated[
    str,
    typer.Option("--pool-type", metavar="process|docker|kubernetes",
                 help="Type of the departments' work pools, as for `airnub deploy`."),
]  # fmt: skip
Registry = Annotated[str | None, typer.Option(help="Registry of the images (docker, kubernetes).")]
Tag = Annotated[str | None, typer.Option(help="Tag of the images, e.g. the commit SHA.")]
DRIFT, DRIFT_ERROR = 1, 2  # airnub drift's exit codes: drift found; could not tell


def plan_command(
    base: Annotated[
        str | None, typer.Option(help="Base commit; missing or all zeros means everything.")
    ] = None,
    env: Env = None,
    output: Format = "table",
    pool_type: PoolType = "process",
    registry: Registry = None,
    tag: Tag = None,
) -> None:
    """What merging this branch would change on the Prefect API, per affected department:
    deployments, Variables, Blocks, images. Writes nothing."""
    from pathlib import Path

    from airnub_core.storage import repository_root

    from airnub_platform import plan
    from airnub_platform.affected import affected

    checked(output)
    target = chosen_target(pool_type, registry, tag)
    env = chosen_env(env)
    try:
        result = affected(repository_root() or Path.cwd(), base)
    except RuntimeError as error:
        raise fail(str(error), 1) from None
    with prefect_session() as url, _client() as client:

        def report() -> Report:
            scope = plan.plan_scope(client, env, target, result)
            return plan.build(client, "plan", url, scope, plan.PLAN_SECTIONS, result, base)

        found = _built(url, report)
    show(found, output)


def drift_command(
    env: Env = None,
    output: Format = "table",
    pool_type: PoolType = "process",
    registry: Registry = None,
    tag: Tag = None,
) -> None:
    """Whether the Prefect API still holds what the repository says, for every department
    and everything airnub manages. Writes nothing. Exit 0: no drift, 1: drift, 2: an
    error (usage, configuration, or the API)."""
    from airnub_core import conventions

    from airnub_platform import plan

    checked(output)
    target = chosen_target(pool_type, registry, tag)
    env = chosen_env(env)  # usage errors exit 2, as DRIFT_ERROR
    with prefect_session(failure_code=DRIFT_ERROR) as url, _client() as client:

        def report() -> Report:
            scope = plan.drift_scope(client, env, target, list(conventions.departments()))
            return plan.build(client, "drift", url, scope, plan.DRIFT_SECTIONS)

        found = _built(url, report, DRIFT_ERROR)
    show(found, output)
    if found.pending:
        raise typer.Exit(DRIFT)


def checked(output: str) -> None:
    if output not in FORMATS:
        raise fail(f"--format: unknown format {output!r}; valid: {', '.join(FORMATS)}")


def chosen_target(pool_type: str, registry: str | None, tag: str | None) -> Target:
    from airnub_core.config import ConfigError

    from airnub_platform.deploy import Target

    try:
        return Target(pool_type, registry, tag)
    except ConfigError as error:
        raise fail(str(error)) from None


def _client() -> SyncPrefectClient:
    # here, not above: prefect is imported once the embedded API is starting
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _built(url: str, make: Callable[[], Report], code: int = 1) -> Report:
    """``make()``'s report; a repository that cannot be planned, or an answer Prefect
    does not send, is one line and exit ``code``."""
    import json

    from airnub_core.config import ConfigError
    from pydantic import ValidationError

    try:
        return make()
    except ConfigError as error:
        problems = "; ".join(str(error).splitlines())  # every problem, on one line
        raise fail(f"nothing compared: {problems}", code) from None
    except (json.JSONDecodeError, ValidationError) as error:
        raise fail(unreadable(url, error), code) from None


def show(report: Report, output: str) -> None:
    import json

    from airnub_platform import plan

    if output == "json":
        print(json.dumps(report.to_json(), indent=2))
    elif output == "markdown":
        print(plan.markdown(report), end="")
    else:
        console.print(*plan.tables(report))
