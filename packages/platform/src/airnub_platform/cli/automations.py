"""``airnub automations``: each department's alerts, as Prefect automations."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from airnub_platform.cli._session import answers_read, prefect_session
from airnub_platform.cli._shared import (
    Departments,
    DryRun,
    chosen_departments,
    console,
    fail,
    shown,
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
    table = Table(title=f"Automations at {url}", title_justify="left")
    for column in ("change", "automation", "from"):
        table.add_column(column, overflow="fold")
    colours = {"create": "green", "update": "yellow", "delete": "red", "stale": "magenta"}
    for change in changes:
        if change.action != "unchanged":
            colour = colours[change.action]
            table.add_row(
                f"[{colour}]{change.action}[/{colour}]", change.name, shown(change.source)
            )
    counts = {a: sum(c.action == a for c in changes) for a in (*colours, "unchanged")}
    console.print(table)
    summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
    console.print(f"{'would apply' if dry_run else 'applied'}: {summary or 'nothing to do'}")
    if counts["stale"]:
        console.print("stale automations have no rule any more; --prune deletes them")
