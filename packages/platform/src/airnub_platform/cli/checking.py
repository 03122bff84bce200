"""``airnub check``: every department against the conventions."""

from __future__ import annotations

from typing import Annotated

import typer
from airnub_core.conventions import unknown
from airnub_core.storage import repository_root

from airnub_platform.cli._shared import console, counted, fail, printable, say


def check_command(
    department: Annotated[list[str] | None, typer.Argument(help="Only these departments.")] = None,
) -> None:
    """Check that every department follows the conventions; exit 1 on any violation."""
    # here, not above: the checker imports prefect, which --help never needs
    from airnub_core.inventory import folders as department_folders

    from airnub_platform.check import check_repository

    root = repository_root()
    if root is None:
        raise fail("not inside the workspace: no uv.lock here or above")
    folders = list(department_folders(root))
    for name in department or []:
        if name not in folders:  # checking nothing would print "conventions followed"
            raise fail(unknown("department", name, folders))
    report = check_repository(root, department or None)
    for violation in report.violations:
        say(printable(violation.show(root)))
    summary = (
        f"{counted(report.departments, 'department', 'departments')},"
        f" {counted(report.categories, 'category', 'categories')}"
    )
    if report.violations:
        console.print(
            f"[red]{counted(len(report.violations), 'violation', 'violations')}[/red] in {summary}"
        )
        raise typer.Exit(1)
    console.print(f"[green]conventions followed[/green]: {summary}")
