"""``airnub affected``: which departments a git diff affects, for CI."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Annotated

import typer
from airnub_core import conventions
from airnub_core.conventions import unknown
from airnub_core.storage import repository_root

from airnub_platform.affected import Affected, affected
from airnub_platform.cli._shared import fail, printable, say


def affected_command(
    base: Annotated[
        str | None, typer.Option(help="Base commit; missing or all zeros means everything.")
    ] = None,
    head: Annotated[str, typer.Option(help="Head commit.")] = "HEAD",
    output: Annotated[
        str, typer.Option("--format", help="text, json (a matrix plus 'any'), or github.")
    ] = "text",
    doc_ext: Annotated[
        str, typer.Option(help="Comma-separated extensions of files that affect nothing.")
    ] = ",".join(("md", "rst")),
    select: Annotated[
        list[str] | None,
        typer.Option(help="Name departments instead of diffing (a manual deploy's input)."),
    ] = None,
) -> None:
    """Which departments a git diff affects, reverse dependencies included."""
    if output not in ("text", "json", "github"):
        raise fail(f"--format: unknown format {output!r}; valid: text, json, github")
    root = repository_root()
    if root is None:
        raise fail("not inside the workspace: no uv.lock here or above")
    extensions = tuple(e.strip().lstrip(".") for e in doc_ext.split(",") if e.strip())
    try:
        result = affected(root, base, head, extensions)
    except RuntimeError as error:
        raise fail(str(error), 1) from None
    if select:
        selected(result, select)
    if output == "json":
        print(
            json.dumps(
                {
                    **result.matrix(),
                    "any": result.any,
                    "deleted": result.deleted,
                    "deleted_unknown": result.deleted_unknown,
                    **result.kinds,
                }
            )
        )
    elif output == "github":  # lines for $GITHUB_OUTPUT
        print(f"matrix={json.dumps(result.matrix())}")
        print(f"any={str(result.any).lower()}")
        print(f"deleted={json.dumps(result.deleted)}")
        print(f"deleted_unknown={str(result.deleted_unknown).lower()}")
        for kind, needed in result.kinds.items():
            print(f"{kind}={str(needed).lower()}")
    else:
        departments = [entry["department"] for entry in result.matrix()["include"]]
        # names and the reason quote the user's --base and the repository: never markup
        say(f"affected: {' '.join(departments) or 'none'}")
        if result.deleted:
            say(f"deleted:  {' '.join(result.deleted)}")
        kinds = [kind for kind, needed in result.kinds.items() if needed]
        say(f"checks:   {' '.join(kinds) or 'none'}")
        say(f"why:      {printable(result.reason)}")


def selected(result: Affected, select: list[str]) -> None:
    """``result`` narrowed to the departments ``--select`` names, nothing else implied."""
    folders = {name: PurePosixPath(path).name for name, path in result.paths.items()}
    by_id = {
        folder: name
        for name, folder in folders.items()
        if folder.startswith(conventions.DEPARTMENT_PREFIX)
    }
    for name in select:
        if name not in by_id:
            raise fail(f"--select: {unknown('department', name, sorted(by_id))}")
    result.departments = sorted(by_id[name] for name in select)
    # A manual deploy tests the named departments only: no other check is implied.
    result.deleted, result.reason = [], "selected by name"
    result.deleted_unknown = False  # a manual run retires nothing
    result.kinds = dict.fromkeys(result.kinds, False)
