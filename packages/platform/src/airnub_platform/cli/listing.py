"""``airnub list``: departments, their stages and categories, with their flow names;
``--graph`` draws each department's data contracts as Mermaid instead."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from airnub_core import conventions, inventory
from airnub_core.conventions import ConventionError, unknown
from rich.markup import escape
from rich.tree import Tree

from airnub_platform.cli._shared import console, fail, printable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airnub_core.inventory import Department, Node


def _flow_name(node: Node) -> str:
    """The node's flow name, or why it has none (importing it fails, or it breaks a rule)."""
    try:
        return _shown(node.flow().name)
    except ConventionError as error:
        return f"[red]{_shown(_first_line(error))}[/red]"
    except Exception as error:  # the listing goes on; `airnub check` says more
        return f"[red]does not import: {_shown(inventory.error_line(error))}[/red]"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def _shown(name: str) -> str:
    """A name or message from the department's files, as one line of plain text: never
    markup, never a control character or an unencodable byte for the terminal."""
    return escape(printable(name))


def _owners(department: str) -> str:
    """``owners: @a, @b; alerts: #c``: what the department's metadata declares (its flows
    and deployments carry them as owner tags), or why it cannot be read."""
    from airnub_core import owners  # pydantic: not for --help

    try:
        found = owners.declared(department)
    except ConventionError as error:
        return f"owners: [red]{_shown(_first_line(error))}[/red]"
    if found is None:
        return "owners: [yellow]none declared[/yellow]"
    return f"owners: {_shown(', '.join(found.owners))}; alerts: {_shown(found.shown_alerts)}"


def tree_of(departments: list[Department], unreadable: Mapping[str, str] | None = None) -> Tree:
    """Departments -> stages -> categories, with their flow names (this imports the flows);
    a department that could not be read (``unreadable``: id -> why) says why in red."""
    tree = Tree("[bold]departments[/bold]")
    for department in departments:
        # display names (and the flow names holding them) may hold "[x]": not markup
        node = tree.add(f"[bold]{department.id}[/bold] ({_shown(department.display_name)})")
        node.add(_owners(department.id))
        for stage in department.stages:
            stage_node = node.add(f"{stage.name}: {_flow_name(stage)}")
            for category in stage.categories:
                stage_node.add(f"{_shown(category.name)}: {_flow_name(category)}")
    for department_id, why in (unreadable or {}).items():
        tree.add(f"[bold]{department_id}[/bold]: [red]{_shown(why)}[/red]")
    return tree


def list_command(
    department: Annotated[list[str] | None, typer.Argument(help="Only these departments.")] = None,
    graph: Annotated[
        bool, typer.Option("--graph", help="Print each department's data contracts as Mermaid.")
    ] = False,
) -> None:
    """Show every department's stages and categories with their flow names; exit 1 if a
    department's package does not import (the others are still shown)."""
    for name in department or []:
        if name not in conventions.departments():
            raise fail(unknown("department", name, conventions.departments()))
    chosen, unreadable = inventory.readable(department)
    if graph:
        from airnub_platform.graph import markdown  # imports each flow module, so prefect

        typer.echo(markdown(chosen, unreadable), nl=False)
    else:
        console.print(tree_of(chosen, unreadable))
    if unreadable:
        raise typer.Exit(1)
