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


def counted(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


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
    department: Annotated[
        str | None, typer.Argument(help="Department id, e.g. dept_project_alpha; all if omitted.")
    ] = None,
    stage: Annotated[str | None, typer.Argument(help=f"One of {', '.join(STAGES)}.")] = None,
    category: Annotated[str | None, typer.Option(help="Run only this category.")] = None,
    keep_going: Annotated[
        bool, typer.Option(help="Run later stages even after a stage fails.")
    ] = False,
) -> None:
    """Run departments' stages in order: ingestion -> processing -> analysis."""
    from airnub_core import runner, storage

    if department is not None and department not in departments():
        raise fail(unknown("department", department, departments()))
    chosen = [department] if department else list(departments())
    if not chosen:
        raise fail("no departments are installed; run `uv sync --all-packages`")

    def announce(url: str) -> None:
        console.print(f"Prefect API: {url}")
        console.print(f"Data root:   {storage.data_root()}")

    local = runner.start_local_api()
    failed: list[str] = []
    try:
        try:
            plans = {d: runner.plan(d, stage, category) for d in chosen}
        except (ValueError, ConventionError) as error:
            raise fail(str(error)) from None
        for index, (name, stages) in enumerate(plans.items()):
            outcomes = runner.run_department(
                name,
                stages,
                local,
                keep_going=keep_going,
                on_stage=_report,
                on_api=announce if index == 0 else lambda url: None,
            )
            if all(o.completed for o in outcomes):
                console.print(f"[green]{departments()[name]}: all stages completed[/green]")
                continue
            failed.append(name)
            skipped = [s for s in stages if s not in {o.stage for o in outcomes}]
            if skipped:
                errors.print(
                    f"{name}: skipped {', '.join(skipped)} (use --keep-going to run them anyway)"
                )
    finally:
        if local is not None:
            local.stop()
    if failed:
        errors.print(f"[red]failed:[/red] {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)


@app.command("check")
def check_command(
    department: Annotated[list[str] | None, typer.Argument(help="Only these departments.")] = None,
) -> None:
    """Check that every department follows the conventions; exit 1 on any violation."""
    from airnub_core.check import check_repository
    from airnub_core.storage import repository_root

    root = repository_root()
    if root is None:
        raise fail("not inside the workspace: no uv.lock here or above")
    report = check_repository(root, department or None)
    for violation in report.violations:
        console.print(violation.show(root), highlight=False, soft_wrap=True)
    summary = (
        f"{counted(report.departments, 'department', 'departments')},"
        f" {counted(report.categories, 'category', 'categories')}"
    )
    if report.violations:
        console.print(f"[red]{len(report.violations)} violations[/red] in {summary}")
        raise typer.Exit(1)
    console.print(f"[green]conventions followed[/green]: {summary}")


def main() -> None:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    app()
