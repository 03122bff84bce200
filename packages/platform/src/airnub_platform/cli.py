"""The ``airnub`` command line."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from airnub_core import conventions
from airnub_core.conventions import STAGES, ConventionError, unknown
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from airnub_platform.prefect_patches import PrefectPatchError

if TYPE_CHECKING:
    from airnub_platform.local_api import LocalAPI
    from airnub_platform.runner import ApiUnreachable

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    # messages quote user-controlled names ("[x]", "$(id)"): never read them as markup
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def counted(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


# --env: which config overlays apply; AIRNUB_ENV, else local, when not given
Env = Annotated[
    str | None,
    typer.Option(
        "--env",
        help="Environment: its <name>.<env>.yaml overlays apply. Default: $AIRNUB_ENV, else"
        " local. Must be declared in [tool.airnub] environments of the root pyproject.toml.",
    ),
]


def chosen_env(env: str | None) -> str:
    """The environment ``--env`` names, else ``AIRNUB_ENV``'s, checked against the
    workspace's declared environments; a one-line error naming which one is wrong."""
    from airnub_core.config import current_env
    from airnub_core.environments import EnvironmentsError, check_environment
    from airnub_core.storage import repository_root

    try:
        return current_env() if env is None else check_environment(env, "--env", repository_root())
    except EnvironmentsError as error:
        raise fail(str(error)) from None


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


@app.command("list")
def list_command(
    department: Annotated[list[str] | None, typer.Argument(help="Only these departments.")] = None,
) -> None:
    """Show every department's stages and categories with their flow names."""
    for name in department or []:
        if name not in conventions.departments():
            raise fail(unknown("department", name, conventions.departments()))
    console.print(inventory(department or []))


def _shown(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _report(outcome) -> None:
    colour = "green" if outcome.completed else "red"
    title = escape(outcome.flow_name)
    table = Table(title=f"[{colour}]{title}[/{colour}]", title_justify="left")
    table.add_column("category")
    table.add_column("state")
    table.add_column("outputs", overflow="fold")
    for category, result in outcome.results.items():
        outputs = "\n".join(_shown(p) for p in result.get("outputs", []))
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
    env: Env = None,
) -> None:
    """Run departments' stages in order: ingestion -> processing -> analysis."""
    from airnub_core import storage
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

    def announce(url: str) -> None:
        console.print(f"Prefect API: {url}")
        console.print(f"Data root:   {storage.data_root(use_block=True)}")

    local = runner.start_local_api()
    failed: list[str] = []
    try:
        on_dead = api_gone(local)
        try:
            plans = {d: runner.plan(d, stage, category) for d in chosen}
        except (ValueError, ConventionError) as error:
            raise fail(str(error)) from None
        for index, (name, stages) in enumerate(plans.items()):
            with bounded_requests():
                outcomes = runner.run_department(
                    name,
                    stages,
                    local,
                    keep_going=keep_going,
                    on_stage=_report,
                    on_api=announce if index == 0 else lambda url: None,
                    on_dead=on_dead,
                )
            if all(o.completed for o in outcomes):
                console.print(
                    f"[green]{conventions.departments()[name]}: all stages completed[/green]"
                )
                continue
            failed.append(name)
            skipped = [s for s in stages if s not in {o.stage for o in outcomes}]
            if skipped:
                errors.print(
                    f"{name}: skipped {', '.join(skipped)} (use --keep-going to run them anyway)"
                )
    except runner.ApiUnreachable as error:  # before anything ran: see runner.watched
        raise fail(str(error), 1) from None
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
    from airnub_core.storage import repository_root

    from airnub_platform.check import check_repository

    root = repository_root()
    if root is None:
        raise fail("not inside the workspace: no uv.lock here or above")
    report = check_repository(root, department or None)
    for violation in report.violations:
        console.print(violation.show(root), highlight=False, markup=False, soft_wrap=True)
    summary = (
        f"{counted(report.departments, 'department', 'departments')},"
        f" {counted(report.categories, 'category', 'categories')}"
    )
    if report.violations:
        console.print(f"[red]{len(report.violations)} violations[/red] in {summary}")
        raise typer.Exit(1)
    console.print(f"[green]conventions followed[/green]: {summary}")


@app.command("affected")
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
    import json

    from airnub_core.storage import repository_root

    from airnub_platform.affected import affected

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
        console.print(f"affected: {' '.join(departments) or 'none'}", highlight=False)
        if result.deleted:
            console.print(f"deleted:  {' '.join(result.deleted)}", highlight=False)
        kinds = [kind for kind, needed in result.kinds.items() if needed]
        console.print(f"checks:   {' '.join(kinds) or 'none'}", highlight=False)
        console.print(f"why:      {result.reason}", highlight=False)


@app.command("deploy")
def deploy_command(
    department: Departments = None,
    affected: Annotated[
        bool, typer.Option("--affected", help="Deploy the departments `--base` affects.")
    ] = False,
    base: Annotated[str | None, typer.Option(help="Base commit for --affected.")] = None,
    env: Env = None,
    dry_run: DryRun = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete its deployments gone from prefect.yaml.")
    ] = False,
) -> None:
    """Register departments' prefect.yaml deployments, creating missing work pools."""
    from airnub_core.config import ConfigError

    from airnub_platform import deploy

    if affected and department:
        raise fail("give departments or --affected, not both")
    env = chosen_env(env)  # written into the deployments as their runs' AIRNUB_ENV
    if affected:
        from airnub_core.storage import repository_root

        from airnub_platform.affected import affected as find_affected

        result = find_affected(repository_root() or Path.cwd(), base)
        chosen = [entry["department"] for entry in result.matrix()["include"]]
        console.print(
            f"affected: {' '.join(chosen) or 'none'} ({result.reason})",
            highlight=False,
            markup=False,
        )
    else:
        chosen = chosen_departments(department)
    if not chosen:
        return
    for name in chosen:
        try:
            deploy.planned(name, env)  # every entrypoint imports before anything is written
        except ConfigError as error:
            raise fail(str(error), 1) from None
    with prefect_session() as url:
        from prefect.client.orchestration import get_client

        # flow, deployment and pool names are the user's: shown as plain text, not markup
        title = Text(f"Deployments ({env}) at {url}")
        table = Table(title=title, title_justify="left")
        table.add_column("change")
        table.add_column("deployment", overflow="fold")
        with get_client(sync_client=True) as client:
            for name in chosen:
                for action, what in deploy.deploy(client, name, env, dry_run=dry_run, prune=prune):
                    table.add_row(action, Text(what))
    console.print(table)
    if dry_run:
        console.print("dry run: nothing written")


@app.command("retire")
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
) -> None:
    """Delete removed departments' airnub-managed deployments and Variables, and their own
    work pools when nothing else uses them."""
    from airnub_platform import deploy

    if absent and department:
        raise fail("DEPARTMENT: give departments or --absent, not both")
    if not absent and not department:
        raise fail("DEPARTMENT: missing; name the removed departments, or give --absent")
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
    with prefect_session() as url:
        from prefect.client.orchestration import get_client

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
                for action, what in results:
                    say(f"{action} {what}")
                if not any(action.startswith("delete") for action, _ in results):
                    say(f"{name}: nothing to remove")
    if dry_run:
        console.print("dry run: nothing written")


def say(line: str) -> None:
    """One line holding server-side or user-controlled names, printed verbatim."""
    console.print(line, highlight=False, markup=False, soft_wrap=True)


def workspace_members() -> set[str]:
    """Department ids of the workspace's members, read from ``uv.lock`` (nothing imported:
    CI runs this with only airnub-core installed)."""
    from airnub_core.storage import repository_root

    from airnub_platform.affected import read_workspace

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
    from airnub_core.storage import repository_root

    root = repository_root()
    project = root / "packages" / department / "pyproject.toml" if root else None
    if project is not None and project.is_file():
        return f"{project} exists"
    if department in conventions.departments():
        return "it is installed"
    return None


variables_app = typer.Typer(no_args_is_help=True, help="Prefect Variables from the YAML configs.")
blocks_app = typer.Typer(no_args_is_help=True, help="Prefect Blocks the departments declare.")
app.add_typer(variables_app, name="variables")
app.add_typer(blocks_app, name="blocks")

Departments = Annotated[
    list[str] | None, typer.Argument(help="Departments to sync; all if omitted.")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the changes; write nothing.")]


def chosen_departments(names: list[str] | None) -> list[str]:
    for name in names or []:
        if name not in conventions.departments():
            raise fail(unknown("department", name, conventions.departments()))
    return list(names or conventions.departments())


# Prefect's defaults (60 s a request, 5 retries with backoff) hold a command on an API
# that accepts connections but never answers for over 6 minutes; these end one request in
# about 1.5, and runner.watched ends the whole command after AIRNUB_API_DEADLINE_SECONDS
# of silence. A user's own PREFECT_API_REQUEST_TIMEOUT or PREFECT_CLIENT_MAX_RETRIES wins.
REQUEST_TIMEOUT_SECONDS = 30.0
CLIENT_MAX_RETRIES = 2


@contextlib.contextmanager
def bounded_requests() -> Iterator[float]:
    """Prefect settings giving every API request a deadline; yields the timeout in s."""
    from prefect.settings import (
        PREFECT_API_REQUEST_TIMEOUT,
        PREFECT_CLIENT_MAX_RETRIES,
        get_current_settings,
        temporary_settings,
    )

    # fields set from the environment, a profile, prefect.toml or by code count as the user's
    current = get_current_settings()
    updates: dict = {}
    if "request_timeout" not in current.api.model_fields_set:
        updates[PREFECT_API_REQUEST_TIMEOUT] = REQUEST_TIMEOUT_SECONDS
    if "max_retries" not in current.client.model_fields_set:
        updates[PREFECT_CLIENT_MAX_RETRIES] = CLIENT_MAX_RETRIES
    with temporary_settings(updates=updates):
        yield PREFECT_API_REQUEST_TIMEOUT.value()


_GIVING_UP = threading.Lock()


def api_gone(local: LocalAPI | None) -> Callable[[ApiUnreachable], NoReturn]:
    """What a command does when its Prefect API stops answering (see ``runner.watched``):
    one line naming the API, exit 1, at once."""
    from airnub_platform import runner

    try:
        runner.api_deadline()  # a bad AIRNUB_API_DEADLINE_SECONDS is refused up front
    except ValueError as error:
        raise fail(str(error)) from None

    def give_up(error: ApiUnreachable) -> NoReturn:
        with _GIVING_UP:  # the watching thread and the command may both get here: one line
            errors.print(f"[red]error:[/red] {escape(str(error))}", highlight=False,
                         soft_wrap=True)  # fmt: skip
            sys.stdout.flush()
            sys.stderr.flush()
            if local is not None:
                local.process.kill()
            # A hard exit: at interpreter exit Prefect's log and event workers would retry
            # the silent API for minutes, printing as they go.
            os._exit(1)

    return give_up


@contextlib.contextmanager
def prefect_session() -> Iterator[str]:
    """The configured Prefect API, or the embedded local one started for the command,
    with a deadline on every request: a hung API fails like an unreachable one."""
    import httpx

    from airnub_platform import runner

    local = runner.start_local_api()
    url = "the Prefect API"
    timeout = REQUEST_TIMEOUT_SECONDS
    try:
        on_dead = api_gone(local)
        with (
            runner.prefect_api(local) as url,
            bounded_requests() as timeout,
            runner.watched(url, on_dead),
        ):
            yield url
    except runner.ApiUnreachable as error:  # before anything was sent: see runner.watched
        raise fail(str(error), 1) from None
    except httpx.TimeoutException:  # the API answered the probes, not this request
        reason = f"no answer within {timeout:g} s, PREFECT_API_REQUEST_TIMEOUT"
        raise fail(str(runner.ApiUnreachable(url, reason)), 1) from None
    except (OSError, httpx.TransportError) as error:
        raise fail(str(runner.ApiUnreachable(url, runner.reason_of(error))), 1) from None
    finally:
        if local is not None:
            local.stop()


@variables_app.command("sync")
def variables_sync(
    department: Departments = None,
    env: Env = None,
    dry_run: DryRun = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete managed Variables whose file is gone.")
    ] = False,
) -> None:
    """Validate every config file, then create or update one Prefect Variable per file."""
    from airnub_core.config import ConfigError

    from airnub_platform import variable_sync

    chosen = chosen_departments(department)
    env = chosen_env(env)
    try:
        wanted = variable_sync.desired_values(chosen, env)
    except ConfigError as error:
        raise fail(f"nothing written; fix these first:\n{error}", 1) from None
    with prefect_session() as url:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            try:
                changes = variable_sync.sync(client, wanted, chosen, dry_run=dry_run, prune=prune)
            except variable_sync.UnmanagedVariable as error:
                raise fail(str(error), 1) from None
    table = Table(title=f"Variables ({env}) at {url}", title_justify="left")
    for column in ("change", "variable", "from"):
        table.add_column(column, overflow="fold")
    colours = {"create": "green", "update": "yellow", "delete": "red", "stale": "magenta"}
    for change in changes:
        if change.action != "unchanged":
            colour = colours[change.action]
            table.add_row(
                f"[{colour}]{change.action}[/{colour}]", change.name, _shown(change.source)
            )
    counts = {a: sum(c.action == a for c in changes) for a in (*colours, "unchanged")}
    console.print(table)
    summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
    console.print(f"{'would apply' if dry_run else 'applied'}: {summary or 'nothing to do'}")
    if counts["stale"]:
        console.print("stale Variables have no file any more; --prune deletes them")


@blocks_app.command("sync")
def blocks_sync(
    department: Departments = None,
    data_root: Annotated[
        str | None,
        typer.Option(help="Path or fsspec URL for the data-root block; default: the data root."),
    ] = None,
    dry_run: DryRun = False,
) -> None:
    """Create or update the Secret blocks departments declare, and the data-root block."""
    from airnub_core.config import ConfigError

    from airnub_platform import block_sync as blocks

    chosen = chosen_departments(department)
    with prefect_session() as url:
        try:
            wanted, missing = blocks.wanted_blocks(chosen, data_root)
        except ConfigError as error:
            raise fail(f"nothing written; fix these first:\n{error}", 1) from None
        if missing:
            raise fail("nothing written; fix these first:\n" + "\n".join(missing), 1)
        results = blocks.sync(wanted, dry_run=dry_run)
    table = Table(title=f"Blocks at {url}", title_justify="left")
    for column in ("change", "block", "kind", "from"):
        table.add_column(column, overflow="fold")
    for action, item in results:
        # a Secret's value is never shown; a storage block shows where it points
        shown = item.origin if item.kind == "secret" else f"{item.origin}: {item.value}"
        table.add_row(action, item.name, item.kind, shown)
    console.print(table)
    if dry_run:
        console.print("dry run: nothing written")


@app.command("dev")
def dev_command(
    db: Annotated[
        str, typer.Option(help="sqlite, or postgres (URL in $AIRNUB_DEV_DATABASE_URL).")
    ] = ("sqlite"),
    port: Annotated[int, typer.Option(help="Port of the Prefect server and UI.")] = 4200,
    status: Annotated[bool, typer.Option("--status", help="Say whether it is running.")] = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop a running airnub dev.")] = False,
) -> None:
    """Run the platform locally: Prefect server and UI, a worker per department, deployments."""
    import socket

    from airnub_core.config import ConfigError

    from airnub_platform import block_sync as blocks
    from airnub_platform import deploy, dev, variable_sync

    current = dev.running()
    if status or stop:
        if current is None:
            console.print("airnub dev is not running")
            raise typer.Exit(1 if status else 0)
        if stop:
            dev.stop_running(current)
            console.print(
                f"stopped airnub dev (pid {current.pid}) and its {len(current.children)} processes"
            )
            return
        workers = [name for name in current.children if name.startswith("worker-")]
        phase = "ready" if current.ready else "starting"
        console.print(
            f"airnub dev (pid {current.pid}) {phase}: UI {current.ui_url},"
            f" {current.database}, {len(workers)} workers"
        )
        return
    if current is not None:
        raise fail(f"airnub dev is already running (pid {current.pid}, UI {current.ui_url});"
                   " `airnub dev --stop` stops it", 1)  # fmt: skip
    if db not in ("sqlite", "postgres"):
        raise fail(f"--db: unknown database {db!r}; valid: sqlite, postgres")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise fail(f"--port: 127.0.0.1:{port} is already in use", 1)
    try:
        platform = dev.Platform(port, db, lambda line: console.print(line, highlight=False))
    except RuntimeError as error:
        raise fail(str(error), 1) from None
    code = 0
    try:
        platform.start_server()
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        chosen = list(conventions.departments())
        with temporary_settings(updates={PREFECT_API_URL: platform.state.api_url}):
            with get_client(sync_client=True) as client:
                changes = variable_sync.sync(
                    client, variable_sync.desired_values(chosen, "local"), chosen
                )
                console.print(f"Variables: {sum(c.action != 'unchanged' for c in changes)} written")
                for department in chosen:
                    deploy.deploy(client, department, "local")
            wanted, missing = blocks.wanted_blocks(chosen, None)
            blocks.sync(wanted)
            for message in missing:
                console.print(f"[yellow]skipped a block:[/yellow] {message}", highlight=False)
        console.print(f"Deployed: {', '.join(chosen)}")
        platform.start_workers()
        platform.state.ready = True
        platform.state.save()
        console.print(f"[green]ready[/green]: the Prefect UI is at {platform.state.ui_url}"
                      " (Ctrl-C stops everything)")  # fmt: skip
        code = platform.watch()
    except (RuntimeError, ConfigError, TimeoutError) as error:
        errors.print(f"[red]error:[/red] {error}", highlight=False)
        code = 1
    finally:
        platform.stop()
    raise typer.Exit(code)


def main() -> None:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        app()
    except PrefectPatchError as error:  # an installed Prefect its patches were not written for
        fail(str(error))  # prints the one line; typer's Exit needs a running command
        raise SystemExit(1) from None
