"""The ``airnub`` command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from airnub_core.conventions import STAGES, ConventionError, departments, unknown

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def inventory(chosen: list[str]) -> Tree:
    """Departments -> stages -> categories, with their flow names."""
    from airnub_core.flows import discover_categories
    from airnub_core.runner import stage_flow_for

    tree = Tree("[bold]departments[/bold]")
    for department, name in departments().items():
        if chosen and department not in chosen:
            continue
        node = tree.add(f"[bold]{department}[/bold] ({name})")
        for stage in STAGES:
            stage_node = node.add(f"{stage}: {stage_flow_for(department, stage).name}")
            for category, flow in discover_categories(department, stage).items():
                stage_node.add(f"{category}: {flow.name}")
    return tree


@app.command("list")
def list_command(
    department: Annotated[list[str] | None, typer.Argument(help="Only these departments.")] = None,
) -> None:
    """Show every department's stages and categories with their flow names."""
    for name in department or []:
        if name not in departments():
            raise fail(unknown("department", name, departments()))
    console.print(inventory(department or []))


def _shown(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _report(outcome) -> None:
    colour = "green" if outcome.completed else "red"
    table = Table(title=f"[{colour}]{outcome.flow_name}[/{colour}]", title_justify="left")
    table.add_column("category")
    table.add_column("state")
    table.add_column("outputs", overflow="fold")
    for category, result in outcome.results.items():
        outputs = "\n".join(_shown(p) for p in result.get("outputs", []))
        table.add_row(category, "[green]Completed[/green]", outputs)
    for category, message in outcome.failed.items():
        table.add_row(category, "[red]Failed[/red]", message)
    console.print(table)
    if not outcome.completed:
        errors.print(f"[red]{outcome.flow_name} failed:[/red] {outcome.message}", highlight=False)


@app.command("run")
def run_command(
    department: Annotated[str, typer.Argument(help="Department id, e.g. dept_project_alpha.")],
    stage: Annotated[str | None, typer.Argument(help=f"One of {', '.join(STAGES)}.")] = None,
    category: Annotated[str | None, typer.Option(help="Run only this category.")] = None,
    keep_going: Annotated[
        bool, typer.Option(help="Run later stages even after a stage fails.")
    ] = False,
) -> None:
    """Run a department's stages in order: ingestion -> processing -> analysis."""
    from airnub_core import runner, storage

    if department not in departments():
        raise fail(unknown("department", department, departments()))

    def announce(url: str) -> None:
        console.print(f"Prefect API: {url}")
        console.print(f"Data root:   {storage.data_root()}")

    local = runner.start_local_api()
    try:
        try:
            stages = runner.plan(department, stage, category)
        except (ValueError, ConventionError) as error:
            raise fail(str(error)) from None
        outcomes = runner.run_department(
            department, stages, local, keep_going=keep_going, on_stage=_report, on_api=announce
        )
    finally:
        if local is not None:
            local.stop()
    if not all(o.completed for o in outcomes):
        skipped = [s for s in stages if s not in {o.stage for o in outcomes}]
        if skipped:
            errors.print(f"skipped: {', '.join(skipped)} (use --keep-going to run them anyway)")
        raise typer.Exit(1)
    console.print(f"[green]{departments()[department]}: all stages completed[/green]")


def main() -> None:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    app()
