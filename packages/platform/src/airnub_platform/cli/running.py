"""``airnub run``: departments' stages in order, from this process."""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated

import typer
from airnub_core import conventions, storage
from airnub_core.conventions import STAGES, unknown
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from airnub_platform.cli._session import api_gone
from airnub_platform.cli._shared import (
    Env,
    chosen_env,
    console,
    errors,
    fail,
    refuse_unusable_data_root,
    say,
    shown,
)

if TYPE_CHECKING:
    from airnub_platform.progress import RunProgress
    from airnub_platform.runner import DepartmentRun, Plans, StageOutcome


def run_command(
    department: Annotated[
        str | None, typer.Argument(help="Department id, e.g. dept_project_alpha; all if omitted.")
    ] = None,
    stage: Annotated[str | None, typer.Argument(help=f"One of {', '.join(STAGES)}.")] = None,
    category: Annotated[str | None, typer.Option(help="Run only this category.")] = None,
    keep_going: Annotated[
        bool, typer.Option(help="Run later stages even after a stage fails.")
    ] = False,
    env: Env = None,
) -> None:
    """Run departments' stages in order: ingestion -> processing -> analysis."""
    # here, not above: config imports yaml and httpx, runner's flows prefect; not for --help
    from airnub_core.config import ENV_VAR

    from airnub_platform import runner

    checked = chosen_env(env)
    if env is not None:
        os.environ[ENV_VAR] = checked  # the flows of this run read it
    if department is not None and department not in conventions.departments():
        raise fail(unknown("department", department, conventions.departments()))
    chosen = [department] if department else list(conventions.departments())
    if not chosen:
        raise fail("no departments are installed; run `uv sync --all-packages`")
    refuse_unusable_data_root()
    try:
        runner.api_deadline()  # a bad AIRNUB_API_DEADLINE_SECONDS, before the plan is shown
    except ValueError as error:
        raise fail(str(error)) from None
    try:
        with Progress() as live:
            runs = runner.run_departments(
                chosen,
                stage,
                category,
                keep_going=keep_going,
                on_stage=live.stage_done,
                on_api=live.announce,
                on_department=conclude,
                on_dead=api_gone,
                on_plan=live.show,
            )
    except runner.ConfigRefused as error:  # as when its stage refused it: exit 1
        raise fail(str(error), 1) from None
    except (runner.PlanError, storage.UnsupportedDataRoot) as error:
        raise fail(str(error)) from None
    except runner.ApiUnreachable as error:  # before anything ran: see runner.watched
        raise fail(str(error), 1) from None
    failed = [run.department for run in runs if not run.completed]
    if failed:
        errors.print(f"[red]failed:[/red] {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)


class Progress(ExitStack):
    """The plan, at once; then each stage's and category's state (see
    :mod:`airnub_platform.progress`) until the block ends; each stage's table as it ends."""

    progress: RunProgress | None = None

    def show(self, planned: Plans) -> None:
        from airnub_platform import progress

        for line in progress.plan_lines(planned):
            say(line)
        self.progress = self.enter_context(progress.RunProgress(planned, console).shown())

    def announce(self, url: str) -> None:
        console.print(f"Prefect API: {url}")
        console.print(f"Data root:   {storage.data_root(use_block=True)}")
        if self.progress is not None:
            self.progress.listen()

    def stage_done(self, outcome: StageOutcome) -> None:
        if self.progress is not None:
            self.progress.stage_done(outcome)
        report(outcome)


def report(outcome: StageOutcome) -> None:
    """A stage's categories with their state and outputs; why it failed, if it did."""
    colour = "green" if outcome.completed else "red"
    title = escape(outcome.flow_name)
    table = Table(title=f"[{colour}]{title}[/{colour}]", title_justify="left")
    table.add_column("category")
    table.add_column("state")
    table.add_column("outputs", overflow="fold")
    for category, result in outcome.results.items():
        outputs = "\n".join(shown(p) for p in result.get("outputs", []))
        table.add_row(category, "[green]Completed[/green]", outputs)
    for category, message in outcome.failed.items():
        table.add_row(category, "[red]Failed[/red]", Text(message))  # not markup: a path, [x]
    console.print(table)
    if not outcome.completed:
        errors.print(
            f"[red]{escape(outcome.flow_name)} failed:[/red] {escape(outcome.message)}",
            highlight=False,
            soft_wrap=True,
        )


def conclude(run: DepartmentRun) -> None:
    """A department's last line: all its stages completed, or which ones never ran."""
    if run.completed:
        name = conventions.departments()[run.department]
        console.print(f"[green]{escape(name)}: all stages completed[/green]")
    elif run.skipped:
        errors.print(
            f"{run.department}: skipped {', '.join(run.skipped)}"
            " (use --keep-going to run them anyway)"
        )
