"""``airnub deployments``: each department's prefect.yaml, generated from the conventions."""

from __future__ import annotations

from typing import Annotated

import typer

from airnub_platform.cli._shared import (
    Departments,
    chosen_departments,
    console,
    fail,
    say,
    shown,
)

app = typer.Typer(no_args_is_help=True, help="The departments' prefect.yaml files.")


@app.command("write")
def deployments_write(
    department: Departments = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a file is not as generated.")
    ] = False,
) -> None:
    """Rewrite each prefect.yaml's derived keys; schedules, parameters and job variables stay."""
    # here, not above: prefect_yaml imports yaml and the conventions' config, which --help
    # never needs
    from airnub_platform import prefect_yaml

    stale: list[str] = []
    for name in chosen_departments(department):
        try:
            if check:
                path = prefect_yaml.location(name)
                problem = prefect_yaml.difference(name, prefect_yaml.read(path))
                if problem:
                    stale.append(f"{shown(str(path))}: {problem}")
                continue
            changed = prefect_yaml.write(name)
        except prefect_yaml.PrefectYamlError as error:  # named as `airnub check` names it
            path = prefect_yaml.location(name)
            raise fail(str(error.at(shown(str(path)))), 1) from None
        say(f"{'wrote' if changed else 'unchanged'}: {shown(str(prefect_yaml.location(name)))}")
    for line in stale:
        say(line)
    if stale:
        raise typer.Exit(1)
    if check:
        console.print("every prefect.yaml is as generated")
