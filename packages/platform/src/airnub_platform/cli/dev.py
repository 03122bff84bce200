"""``airnub dev``: the whole platform on this machine (see :mod:`airnub_platform.dev`)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Annotated

import typer

from airnub_platform.cli._shared import console, fail, refuse_unusable_data_root

if TYPE_CHECKING:
    from airnub_platform.dev import DevState


def dev_command(
    db: Annotated[
        str, typer.Option(help="sqlite, or postgres (URL in $AIRNUB_DEV_DATABASE_URL).")
    ] = ("sqlite"),
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of the Prefect server and UI.")
    ] = 4200,
    status: Annotated[bool, typer.Option("--status", help="Say whether it is running.")] = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop a running airnub dev.")] = False,
) -> None:
    """Run the platform locally: Prefect server and UI, a worker per department, deployments."""
    # here, not above: the dev module is not needed by --help and the cheap commands
    from airnub_platform import dev

    current = dev.running()
    if status or stop:
        if current is None:
            console.print("airnub dev is not running")
            raise typer.Exit(1 if status else 0)
        if stop:
            dev.stop_running(current)
            console.print(
                f"stopped airnub dev (pid {current.pid}) and its {len(current.children)} processes"
            )
        else:
            show(current, dev.unanswered(current) if current.ready else None)
        return
    if current is not None:
        raise fail(f"airnub dev is already running (pid {current.pid}, UI {current.ui_url});"
                   " `airnub dev --stop` stops it", 1)  # fmt: skip
    if db not in ("sqlite", "postgres"):
        raise fail(f"--db: unknown database {db!r}; valid: sqlite, postgres")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise fail(f"--port: 127.0.0.1:{port} is already in use", 1)
    refuse_unusable_data_root()  # the workers' runs would refuse it
    tell = dev.Narration(say=progress, skipped=skipped, ready=ready, failed=failed)
    try:
        code = dev.serve(port, db, tell)
    except RuntimeError as error:  # no database to use: nothing was started
        raise fail(str(error), 1) from None
    raise typer.Exit(code)


def show(current: DevState, unanswered: str | None) -> None:
    """``--status`` of a running one: how far it got; exit 1 if its server is silent."""
    workers = [name for name in current.children if name.startswith("worker-")]
    phase = "starting" if not current.ready else "not answering" if unanswered else "ready"
    console.print(
        f"airnub dev (pid {current.pid}) {phase}: UI {current.ui_url},"
        f" {current.database}, {len(workers)} workers",
        highlight=False,
    )
    if unanswered:
        raise fail(f"its Prefect server at {current.api_url} does not answer ({unanswered})", 1)


def progress(line: str) -> None:
    console.print(line, highlight=False)


def skipped(why: str) -> None:
    console.print(f"[yellow]skipped a block:[/yellow] {why}", highlight=False)


def ready(state: DevState) -> None:
    console.print(
        f"[green]ready[/green]: the Prefect UI is at {state.ui_url} (Ctrl-C stops everything)"
    )


def failed(error: BaseException) -> None:
    fail(str(error), 1)  # prints the one line; serve returns the exit code
