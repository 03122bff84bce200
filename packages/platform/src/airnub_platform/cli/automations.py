"""``airnub automations``: each department's alerts, as Prefect automations."""

from __future__ import annotations

from typing import Annotated

import typer

from airnub_platform.cli._session import answers_read, prefect_session
from airnub_platform.cli._shared import (
    Departments,
    DryRun,
    chosen_departments,
    fail,
    print_sync,
)

app = typer.Typer(no_args_is_help=True, help="Alerts as code: Prefect automations per department.")


@app.command("sync")
def automations_sync(
    department: Departments = None,
    dry_run: DryRun = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete managed automations whose rule is gone.")
    ] = False,
) -> None:
    """Validate every department's alert rules, then create or update their automations."""
    # here, not above: pydantic, yaml and httpx, which --help never needs
    from airnub_core.config import ConfigError

    from airnub_platform import automation_sync

    chosen = chosen_departments(department)
    try:
        wanted = automation_sync.desired(chosen)
    except ConfigError as error:
        raise fail(f"nothing written; fix these first:\n{error}", 1) from None
    with prefect_session() as url:
        # here: prefect is imported only once the embedded API is starting
        from prefect.client.orchestration import get_client

        with (
            get_client(sync_client=True) as client,
            answers_read(url),
            automation_sync.sigterm_unwinds(),
        ):
            try:
                changes = automation_sync.sync(
                    client, chosen, dry_run=dry_run, prune=prune, wanted=wanted
                )
            except automation_sync.SyncRefused as error:
                raise fail(str(error), 1) from None
            except automation_sync.Stopped as error:  # its writes were undone on the way
                raise fail(f"stopped by {error}: nothing written", error.code) from None
    print_sync(f"Automations at {url}", "automation", changes, dry_run,
               "stale automations have no rule any more; --prune deletes them")  # fmt: skip
