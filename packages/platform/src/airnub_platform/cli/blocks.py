"""``airnub blocks``: the Prefect Blocks the departments declare."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from airnub_platform.cli._session import answers_read, prefect_session
from airnub_platform.cli._shared import Departments, DryRun, chosen_departments, console, fail

app = typer.Typer(no_args_is_help=True, help="Prefect Blocks the departments declare.")


@app.command("sync")
def blocks_sync(
    department: Departments = None,
    data_root: Annotated[
        str | None,
        typer.Option(help="Path or fsspec URL for the data-root block; default: the data root."),
    ] = None,
    dry_run: DryRun = False,
) -> None:
    """Create or update the Secret blocks departments declare, the data-root block, and the
    alert webhook block of each department whose AIRNUB_ALERT_WEBHOOK_<DEPT_ID> is set."""
    # here, not above: both import yaml and httpx, which --help never needs
    from airnub_core.config import ConfigError
    from airnub_core.object_storage import is_remote_url
    from airnub_core.storage import UnsupportedDataRoot

    from airnub_platform import block_sync, runner

    chosen = chosen_departments(department)
    embedded = not runner.configured_api_url()
    with prefect_session() as url, answers_read(url):
        try:
            wanted, missing = block_sync.wanted_blocks(chosen, data_root)
        except ConfigError as error:
            raise fail(f"nothing written; fix these first:\n{error}", 1) from None
        except UnsupportedDataRoot as error:
            raise fail(f"nothing written: {error}") from None
        if missing:
            raise fail("nothing written; fix these first:\n" + "\n".join(missing), 1)
        try:
            results = block_sync.sync(wanted, dry_run=dry_run)
        except block_sync.ForeignAlertBlock as error:
            raise fail(str(error), 1) from None
    table = Table(title=f"Blocks at {url}", title_justify="left")
    for column in ("change", "block", "kind", "from"):
        table.add_column(column, overflow="fold")
    for action, item in results:
        # a Secret's value is never shown; a storage block shows where it points
        shown = item.origin if item.kind != "storage" else f"{item.origin}: {item.value}"
        table.add_row(action, item.name, item.kind, shown)
    console.print(table)
    if dry_run:
        console.print("dry run: nothing written")
    elif embedded and any(i.kind == "storage" and is_remote_url(i.value) for _, i in results):
        console.print(
            "note: no PREFECT_API_URL, so these went to the embedded API in your Prefect home;"
            " every `airnub run` here without AIRNUB_DATA_ROOT now writes to that object store"
            " (undo: uv run prefect block delete remote-file-system/airnub-data-root)",
            highlight=False, markup=False, soft_wrap=True,
        )  # fmt: skip
