"""What every command shares: its consoles, its one-line errors, and the arguments and
choices that mean the same in every command."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Protocol

import typer
from airnub_core import conventions
from airnub_core.conventions import unknown
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    # messages quote user-controlled names ("[x]", "$(id)"): never read them as markup
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def refuse_unusable_data_root() -> None:
    """Refuse, in one line and before anything starts, an ``AIRNUB_DATA_ROOT`` that runs
    would refuse (a block's root is checked once the API is up)."""
    from airnub_core import storage  # its imports are not for --help

    try:
        storage.data_root(use_block=False)
    except storage.UnsupportedDataRoot as error:
        raise fail(str(error)) from None


def counted(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def say(line: str) -> None:
    """One line holding server-side or user-controlled names, printed verbatim."""
    console.print(line, highlight=False, markup=False, soft_wrap=True)


def printable(text: str) -> str:
    """``text`` with every control character (a newline, ESC) written as its escape, so a
    hostile file or folder name stays one line and cannot drive the terminal."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def shown(path: str) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


# --env: which config overlays apply; AIRNUB_ENV, else local, when not given
Env = Annotated[
    str | None,
    typer.Option(
        "--env",
        help="Environment: its <name>.<env>.yaml overlays apply. Default: $AIRNUB_ENV, else"
        " local. Must be declared in \\[tool.airnub] environments of the root pyproject.toml.",
    ),
]
Departments = Annotated[
    list[str] | None, typer.Argument(help="Departments to sync; all if omitted.")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the changes; write nothing.")]


def chosen_env(env: str | None) -> str:
    """The environment ``--env`` names, else ``AIRNUB_ENV``'s, checked against the
    workspace's declared environments; a one-line error naming which one is wrong."""
    # here, not above: airnub_core.config imports yaml and httpx, which --help never needs
    from airnub_core.config import current_env
    from airnub_core.environments import EnvironmentsError, check_environment
    from airnub_core.storage import repository_root

    try:
        return current_env() if env is None else check_environment(env, "--env", repository_root())
    except EnvironmentsError as error:
        raise fail(str(error)) from None


def chosen_departments(names: list[str] | None) -> list[str]:
    for name in names or []:
        if name not in conventions.departments():
            raise fail(unknown("department", name, conventions.departments()))
    return list(names or conventions.departments())


def say_removed(results: list[tuple[str, str]], subject: str) -> None:
    """``retire``'s (action, what) rows, or that ``subject`` had nothing to remove."""
    for action, what in results:
        say(f"{action} {what}")
    if not any(action.startswith("delete") for action, _ in results):
        say(f"{subject}: nothing to remove")


class SyncedChange(Protocol):
    action: str  # create, update, delete, stale or unchanged
    name: str
    source: str


SYNC_COLOURS = {"create": "green", "update": "yellow", "delete": "red", "stale": "magenta"}


def print_sync(
    title: str, what: str, changes: Sequence[SyncedChange], dry_run: bool, stale_hint: str
) -> None:
    """A sync's table of changes (names shown as text) and its one-line summary."""
    table = Table(title=Text(title), title_justify="left")
    for column in ("change", what, "from"):
        table.add_column(column, overflow="fold")
    for change in changes:
        if change.action != "unchanged":
            colour = SYNC_COLOURS[change.action]
            action = Text(change.action, style=colour)
            table.add_row(action, Text(change.name), Text(shown(change.source)))
    counts = {a: sum(c.action == a for c in changes) for a in (*SYNC_COLOURS, "unchanged")}
    console.print(table)
    summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
    console.print(f"{'would apply' if dry_run else 'applied'}: {summary or 'nothing to do'}")
    if counts["stale"]:
        console.print(stale_hint)
