"""``airnub variables``: Prefect Variables from the departments' YAML configs."""

from __future__ import annotations

from typing import Annotated

import typer

from airnub_platform.cli._session import prefect_session
from airnub_platform.cli._shared import (
    Departments,
    DryRun,
    Env,
    chosen_departments,
    chosen_env,
    fail,
    print_sync,
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
    print_sync(f"Variables ({env}) at {url}", "variable", changes, dry_run,
               "stale Variables have no file any more; --prune deletes them")  # fmt: skip
