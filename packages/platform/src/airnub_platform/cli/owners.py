"""``airnub owners``: .github/CODEOWNERS, generated from what each department declares."""

from __future__ import annotations

from typing import Annotated

import typer

from airnub_platform.cli._shared import console, fail, say

app = typer.Typer(no_args_is_help=True, help="Who owns each department: .github/CODEOWNERS.")


@app.command("write")
def owners_write(
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if CODEOWNERS is not as generated."),
    ] = False,
) -> None:
    """Rewrite .github/CODEOWNERS from each department's owners and the platform's."""
    # here, not above: pydantic and the inventory, which --help never needs
    from airnub_core.storage import repository_root

    from airnub_platform import codeowners

    root = repository_root()
    if root is None:
        raise fail("not inside the workspace: no uv.lock here or above")
    try:
        if check:
            problem = codeowners.difference(root)
            if problem:
                say(f"{codeowners.FILE}: {problem}")
                raise typer.Exit(1)
            console.print(f"{codeowners.FILE} is as generated")
            return
        changed = codeowners.write(root)
    except codeowners.CodeownersError as error:
        raise fail(str(error)) from None
    say(f"{'wrote' if changed else 'unchanged'}: {codeowners.FILE}")
