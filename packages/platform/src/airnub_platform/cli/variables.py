"""``airnub variables``: Prefect Variables from the departments' YAML configs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from airnub_platform.cli._session import prefect_session
from airnub_platform.cli._shared import (
    Departments,
    DryRun,
    Env,
    chosen_departments,
    chosen_env,
    console,
    fail,
    shown,
)

app = typer.Typer(no_args_is_help=True, help="Prefect Variables from the YAML configs.")


@app.command("sync")
def variables_sync(
    department: Departments = None,
    env: Env = None,
    dry_run: DryRun = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete managed Variables whose file is gone.")
    ] = False,
) -> None:
    """Validate every config file, then create or update one Prefect Variable per file."""
    # here, not above: both import yaml and httpx, which --help never needs
    from airnub_core.config import ConfigError

    from airnub_platform import variable_sync

    chosen = chosen_departments(department)
    env = chosen_env(env)
    try:
        wanted = variable_sync.desired_values(chosen, env)
    except ConfigError as error:
        raise fail(f"nothing written; fix these first:\n{error}", 1) from None
    with prefect_session() as url:
        # here: prefect is imported only once the embedded API is starting
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            try:
                changes = variable_sync.sync(client, wanted, chosen, dry_run=dry_run, prune=prune)
            except variable_sync.UnmanagedVariable as error:
                raise fail(str(error), 1) from None
    table = Table(title=f"Variables ({env}) at {url}", title_justify="left")
    for column in ("change", "variable", "from"):
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
        console.print("stale Variables have no file any more; --prune deletes them")
