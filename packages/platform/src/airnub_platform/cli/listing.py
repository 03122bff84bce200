"""``airnub list``: departments, their stages and categories, with their flow names."""

from __future__ import annotations

from typing import Annotated

import typer
from airnub_core import conventions
from airnub_core.conventions import STAGES, unknown
from rich.markup import escape
from rich.tree import Tree

from airnub_platform.cli._shared import console, fail


# imports inside: airnub_core.flows imports prefect, which --help never needs
def inventory(chosen: list[str]) -> Tree:
    """Departments -> stages -> categories, with their flow names."""
    from airnub_core.flows import discover_categories

    from airnub_platform.runner import stage_flow_for

    tree = Tree("[bold]departments[/bold]")
    for department, name in conventions.departments().items():
        if chosen and department not in chosen:
            continue
        # display names (and the flow names holding them) may hold "[x]": not markup
        node = tree.add(f"[bold]{department}[/bold] ({escape(name)})")
        for stage in STAGES:
            stage_node = node.add(f"{stage}: {escape(stage_flow_for(department, stage).name)}")
            for category, flow in discover_categories(department, stage).items():
                stage_node.add(f"{category}: {escape(flow.name)}")
    return tree


def list_command(
    department: Annotated[list[str] | None, typer.Argument(help="Only these departments.")] = None,
) -> None:
    """Show every department's stages and categories with their flow names."""
    for name in department or []:
        if name not in conventions.departments():
            raise fail(unknown("department", name, conventions.departments()))
    console.print(inventory(department or []))
