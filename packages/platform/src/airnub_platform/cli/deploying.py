"""``airnub deploy``: register departments' deployments on the Prefect API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from airnub_core.storage import repository_root
from rich.table import Table
from rich.text import Text

from airnub_platform.affected import affected as find_affected
from airnub_platform.cli._session import prefect_session, unreadable
from airnub_platform.cli._shared import (
    Departments,
    DryRun,
    Env,
    chosen_departments,
    chosen_env,
    console,
    fail,
)


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
    pool_type: Annotated[
        str,
        typer.Option(
            "--pool-type",
            metavar="process|docker|kubernetes",
            help="Type of the departments' work pools. docker and kubernetes pin each"
            " deployment to the image REGISTRY/<distribution>:TAG.",
        ),
    ] = "process",
    registry: Annotated[
        str | None,
        typer.Option(help="Registry of the images, host\\[:port]\\[/path], e.g. ghcr.io/acme."),
    ] = None,
    tag: Annotated[str | None, typer.Option(help="Tag of the images, e.g. the commit SHA.")] = None,
    preview: Annotated[
        str | None,
        typer.Option(
            "--preview",
            metavar="pr-<N>",
            help="A pull request's preview: deployments named <name>--pr-<N>, tagged"
            " preview:pr-<N>, schedules inactive, on the pools <pool>--pr-<N>; --prune deletes"
            " only this preview's. Removed by `airnub retire --preview pr-<N>`.",
        ),
    ] = None,
    concurrency: Annotated[
        str | None,
        typer.Option(
            metavar="1-64",
            help="Departments registered at once. Default: $AIRNUB_DEPLOY_CONCURRENCY, else 2.",
        ),
    ] = None,
) -> None:
    """Register departments' prefect.yaml deployments, creating missing work pools (and
    keeping a Kubernetes pool's template in step with work-pool.yaml)."""
    # here, not above: deploy imports prefect and config imports yaml, neither for --help
    import json

    from airnub_core.config import ConfigError
    from prefect.client.orchestration import get_client
    from pydantic import ValidationError

    from airnub_platform import deploy, lost_runs, quotas

    if affected and department:
        raise fail("give departments or --affected, not both")
    try:
        target = deploy.Target(pool_type, registry, tag)
        deploy.check_preview_option(preview)  # refused before any department is read
        at_once = deploy.concurrency(concurrency)
        lost_runs.heartbeat_seconds()  # the deployments' heartbeat: refused here if unusable
    except (ConfigError, lost_runs.LostRunSettingError) as error:
        raise fail(str(error)) from None
    env = chosen_env(env)  # written into the deployments as their runs' AIRNUB_ENV
    if affected:
        result = find_affected(repository_root() or Path.cwd(), base)
        chosen = [entry["department"] for entry in result.matrix()["include"]]
        console.print(
            f"affected: {' '.join(chosen) or 'none'} ({result.reason})",
            highlight=False,
            markup=False,
        )
    else:
        chosen = chosen_departments(department)
    # A preview pruned after a push: departments it no longer affects lose their previews.
    prunes_previews = preview is not None and affected and prune
    if not chosen and not prunes_previews:
        return
    items, pools = {}, {}
    for name in chosen:
        try:
            # every entrypoint imports, and every work-pool.yaml reads, before anything
            # is written
            items[name] = deploy.planned(name, env, target, preview)
            named = {i.work_pool for i in items[name]}
            pools[name] = deploy.pool_plans(name, env, target, named, preview)
            if preview is None:  # [tool.airnub.limits]: refused before any write
                quotas.check(name, pools[name])
        except ConfigError as error:
            raise fail(str(error), 1) from None
    with prefect_session(writes_to="" if dry_run else "deploy") as url:
        # flow, deployment and pool names are the user's: shown as plain text, not markup
        what = env if preview is None else f"{env}, preview {preview}"
        table = Table(title=Text(f"Deployments ({what}) at {url}"), title_justify="left")
        table.add_column("change")
        table.add_column("deployment", overflow="fold")
        with get_client(sync_client=True) as client:
            try:
                # no department is deployed to a wrong pool: all checked in one read
                deploy.check_pools(client, [plan for plans in pools.values() for plan in plans])
                rows = []
                if preview is not None and prunes_previews:
                    rows += deploy.retire_preview(client, preview, keep=set(chosen),
                                                  dry_run=dry_run)  # fmt: skip
                rows += deploy.deploy_departments(
                    client, items, pools, target=target, dry_run=dry_run, prune=prune,
                    preview=preview, at_once=at_once,
                )  # fmt: skip
                # a preview runs on its own pool, under the department's tag limit
                for change in [] if preview else quotas.apply(client, chosen, dry_run=dry_run):
                    rows.append((f"{change.action} limit", change.described))
                rows.append(deploy.apply_lost_run_automation(client, dry_run=dry_run))
            except ConfigError as error:
                raise fail(str(error), 1) from None
            except (json.JSONDecodeError, ValidationError) as error:
                # how the client reads an answer: our own objects are valid by then
                raise fail(unreadable(url, error), 1) from None
    for action, what in rows:
        table.add_row(action, Text(what))
    console.print(table)
    if dry_run:
        console.print("dry run: nothing written")
