"""The airnub command line: departments, stages and categories on Prefect."""

from __future__ import annotations

import os

import typer

from airnub_platform.cli import automations, blocks, deployments, owners, variables
from airnub_platform.cli._shared import fail
from airnub_platform.cli.affected import affected_command
from airnub_platform.cli.checking import check_command
from airnub_platform.cli.deploying import deploy_command
from airnub_platform.cli.dev import dev_command
from airnub_platform.cli.listing import list_command
from airnub_platform.cli.planning import drift_command, plan_command
from airnub_platform.cli.retiring import retire_command
from airnub_platform.cli.running import run_command
from airnub_platform.cli.usage import usage_command

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# in the order `airnub --help` lists them
app.command("list")(list_command)
app.command("run")(run_command)
app.command("check")(check_command)
app.command("affected")(affected_command)
app.command("deploy")(deploy_command)
app.command("plan")(plan_command)
app.command("drift")(drift_command)
app.command("retire")(retire_command)
app.command("dev")(dev_command)
app.command("usage")(usage_command)
app.add_typer(variables.app, name="variables")
app.add_typer(blocks.app, name="blocks")
app.add_typer(deployments.app, name="deployments")
app.add_typer(owners.app, name="owners")
app.add_typer(automations.app, name="automations")


def main() -> None:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        app()
    except Exception as error:
        # here, not above: prefect_patches imports packaging, 20 ms that --help need not spend
        from airnub_platform.prefect_patches import PrefectPatchError

        if not isinstance(error, PrefectPatchError):
            raise
        # an installed Prefect its patches were not written for
        fail(str(error))  # prints the one line; typer's Exit needs a running command
        raise SystemExit(1) from None
