"""``airnub list``: departments, their stages and categories, with their flow names;
``--graph`` draws each department's data contracts as Mermaid instead."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from airnub_core import conventions, inventory
from airnub_core.conventions import ConventionError, unknown
from rich.markup import escape
from rich.tree import Tree

from airnub_platform.cli._shared import console, fail

if TYPE_CHECKING:
    from airnub_core.inventory import Department, Node


def _flow_name(node: Node) -> str:
    """The node's flow name, or why it has none (importing it fails, or it breaks a rule)."""
    try:
        return escape(node.flow().name)
    except ConventionError as error:
        return f"[red]{escape(str(error))}[/red]"
    except Exception as error:  # the listing goes on; `airnub check` says more
        return f"[red]does not import: {escape(type(error).__name__)}: {escape(str(error))}[/red]"


def tree_of(departments: list[Department]) -> Tree:
    """Departments -> stages -> categories, with their flow names (this imports the flows)."""
    tree = Tree("[bold]departments[/bold]")
    for department in departments:
        # display names (and the flow names holding them) may hold "[x]": not markup
        node = tree.add(f"[bold]{department.id}[/bold] ({escape(department.display_name)})")
        for stage in department.stages:
            stage_node = node.add(f"{stage.name}: {_flow_name(stage)}")
            for category in stage.categories:
                stage_node.add(f"{category.name}: {_flow_name(category)}")
    return tree


def list_command(
    department: Annotated[list[str] | None, typer.Argument(help="Only these departments.")] = None,
    graph: Annotated[
        bool, typer.Option("--graph", help="Print each department's data contracts as Mermaid.")
    ] = False,
) -> None:
    """Show every department's stages and categories with their flow names."""
    for name in department or []:
        if name not in conventions.departments():
            raise fail(unknown("department", name, conventions.departments()))
    chosen = inventory.departments(department)
    if graph:
        from airnub_platform.graph import markdown  # imports each flow module, so prefect

        typer.echo(markdown(chosen), nl=False)
        return
    console.print(tree_of(chosen))
