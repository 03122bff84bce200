"""``airnub retire``: remove what removed departments left on the Prefect API."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated

import typer
from airnub_core import conventions
from airnub_core.conventions import ConventionError
from airnub_core.storage import repository_root

from airnub_platform.affected import read_workspace
from airnub_platform.cli._session import answers_read, prefect_session
from airnub_platform.cli._shared import DryRun, console, fail, say, say_removed


def retire_command(
    department: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="DEPARTMENT", help="Ids of removed departments, e.g. dept_project_gamma."
        ),
    ] = None,
    absent: Annotated[
        bool,
        typer.Option(
            "--absent",
            help="Retire every department with managed objects on the server that is not a"
            " member of this workspace (per uv.lock).",
        ),
    ] = False,
    dry_run: DryRun = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Retire a department that is still in the workspace."),
    ] = False,
    preview: Annotated[
        str | None,
        typer.Option(
            "--preview",
            metavar="pr-<N>",
            help="Instead: delete a closed pull request's previews (deployments tagged"
            " preview:pr-<N> and airnub-managed, in every department) and their unused pools.",
        ),
    ] = None,
) -> None:
    """Delete removed departments' airnub-managed deployments and Variables, and their own
    work pools when nothing else uses them; or, with --preview, a pull request's previews."""
    # here, not above: deploy imports prefect, which --help never needs
    from prefect.client.orchestration import get_client

    from airnub_platform import automation_sync, deploy, quotas

    if preview is not None:
        if department or absent or force:
            raise fail("--preview: alone; not with DEPARTMENT, --absent or --force")
        retire_preview(preview, dry_run)
        return
    if absent and department:
        raise fail("DEPARTMENT: give departments or --absent, not both")
    if not absent and not department:
        raise fail(
            "DEPARTMENT: missing; name the removed departments, or give --absent (or"
            " --preview pr-<N> for a closed pull request's previews)"
        )
    if absent and force:
        raise fail("--force: not with --absent, which never retires a workspace member")
    members = workspace_members() if absent else set()
    department = department or []
    for name in department:
        try:
            conventions.check_department(name)
        except ConventionError as error:
            raise fail(f"DEPARTMENT: {error}") from None
        # Retiring a live department would delete deployments its next deploy needs.
        if not force and (where := still_in_workspace(name)):
            raise fail(
                f"DEPARTMENT: {name!r} is still in the workspace ({where}); retire is for"
                " removed departments (--force retires it anyway)"
            )
    # Works with the department's package gone: nothing here imports it.
    with prefect_session(writes_to="" if dry_run else "retire") as url, answers_read(url):
        say(f"Prefect API: {url}")
        with get_client(sync_client=True) as client:
            if absent:
                department = []
                for name in sorted(deploy.managed_departments(client) - members):
                    # belt and braces: a folder or an installed package also counts
                    if where := still_in_workspace(name):
                        say(f"keep {name}: still in the workspace ({where})")
                    else:
                        department.append(name)
                say(f"absent from the workspace: {' '.join(department) or 'none'}")
            for name in dict.fromkeys(department):
                results = deploy.retire(client, name, dry_run=dry_run)
                results += quotas.retire(client, name, dry_run=dry_run)
                results += automation_sync.retire(client, name, dry_run=dry_run)
                say_removed(results, name)
    if dry_run:
        console.print("dry run: nothing written")


def retire_preview(preview: str, dry_run: bool) -> None:
    """A closed pull request's previews go: found by tag, none imported (its code may be
    gone); a second run has nothing to remove."""
    from prefect.client.orchestration import get_client

    from airnub_platform import deploy

    try:
        conventions.check_preview(preview)
    except ConventionError as error:
        raise fail(f"--preview: {error}") from None
    with prefect_session(writes_to="" if dry_run else "retire") as url, answers_read(url):
        say(f"Prefect API: {url}")
        with get_client(sync_client=True) as client:
            say_removed(deploy.retire_preview(client, preview, dry_run=dry_run), preview)
    if dry_run:
        console.print("dry run: nothing written")


def workspace_members() -> set[str]:
    """Department ids of the workspace's members, read from ``uv.lock`` (nothing imported:
    CI runs this with only airnub-core installed)."""
    root = repository_root()
    if root is None:
        raise fail("--absent: not inside the workspace: no uv.lock here or above")
    lock = root / "uv.lock"
    try:
        workspace = read_workspace(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # tomllib.TOMLDecodeError is a ValueError
        raise fail(f"--absent: cannot read {lock}: {error}", 1) from None
    return {PurePosixPath(folder).name for folder in workspace.departments.values()}


def still_in_workspace(department: str) -> str | None:
    """Why ``department`` counts as present (its folder, or installed), or None."""
    root = repository_root()
    project = root / "packages" / department / "pyproject.toml" if root else None
    if project is not None and project.is_file():
        return f"{project} exists"
    if department in conventions.departments():
        return "it is installed"
    return None
