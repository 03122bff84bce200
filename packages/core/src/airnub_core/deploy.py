"""``airnub deploy``: register a department's ``prefect.yaml`` deployments with Prefect.

Each entry's entrypoint is imported and turned into a deployment with a module
entrypoint, so a worker anywhere the package is installed can run it; nothing is
built or pushed. Names, tags and descriptions come from the conventions (``airnub
check`` enforces that ``prefect.yaml`` agrees). Missing work pools are created
(process pools; production pools of other types are made once by an operator).
``AIRNUB_ENV`` goes to every run through the job variables, choosing the config
overlays. ``prune`` deletes the department's deployments no longer listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from airnub_core.check import entrypoint_flow
from airnub_core.config import ENV_VAR, ConfigError, package_dir
from airnub_core.conventions import ConventionError, Identity

MANAGED_TAG = "airnub-managed"


@dataclass
class Planned:
    identity: Identity
    flow: Any
    name: str
    work_pool: str
    entry: dict[str, Any]
    env: str  # AIRNUB_ENV for the runs


def prefect_yaml(department: str) -> Path:
    """``packages/dept_x/prefect.yaml``, beside the package's pyproject.toml."""
    return package_dir(department).parent.parent / "prefect.yaml"


def planned(department: str, env: str) -> list[Planned]:
    path = prefect_yaml(department)
    if not path.is_file():
        raise ConfigError(f"{path}: missing; `airnub check` explains what it should hold")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    found = []
    for index, entry in enumerate(data.get("deployments") or []):
        where = f"{path}: deployments[{index}]"
        try:
            flow = entrypoint_flow(department, str(entry.get("entrypoint", "")))
        except ConventionError as error:
            raise ConfigError(f"{where}.entrypoint {error}") from None
        identity: Identity = flow.airnub_identity
        pool = (entry.get("work_pool") or {}).get("name")
        if not pool:
            raise ConfigError(f"{where}.work_pool.name: missing")
        found.append(Planned(identity, flow, identity.deployment_name, pool, entry, env))
    return found


def _deployment(item: Planned) -> Any:
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    job_variables = dict((item.entry.get("work_pool") or {}).get("job_variables") or {})
    job_variables["env"] = {**(job_variables.get("env") or {}), ENV_VAR: item.env}
    schedules = [
        Cron(s["cron"], timezone=s.get("timezone", "UTC"), active=bool(s.get("active", True)))
        for s in item.entry.get("schedules") or []
    ]
    return item.flow.to_deployment(
        name=item.name,
        tags=[*item.identity.tags, MANAGED_TAG],
        description=item.entry.get("description") or item.flow.description,
        work_pool_name=item.work_pool,
        job_variables=job_variables,
        schedules=schedules or None,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def existing_deployments(client: Any, department: str) -> dict[str, Any]:
    """The department's airnub-managed deployments: 'flow name/deployment name' -> deployment."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    found = client.read_deployments(
        deployment_filter=DeploymentFilter(
            tags=DeploymentFilterTags(all_=[department, MANAGED_TAG])
        ),
        limit=200,
    )
    flows = {f.id: f.name for f in client.read_flows(limit=200)} if found else {}
    return {f"{flows.get(d.flow_id, '?')}/{d.name}": d for d in found}


def ensure_work_pools(client: Any, names: set[str], dry_run: bool) -> list[str]:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    created = []
    for name in sorted(names):
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            if not dry_run:
                client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            created.append(name)
    return created


def deploy(
    client: Any, department: str, env: str, *, dry_run: bool = False, prune: bool = False
) -> list[tuple[str, str]]:
    """(action, 'flow/deployment') for every deployment of the department and every pool."""
    items = planned(department, env)
    results = [
        ("create pool", name)
        for name in ensure_work_pools(client, {i.work_pool for i in items}, dry_run)
    ]
    before = existing_deployments(client, department)
    wanted = set()
    for item in items:
        key = f"{item.flow.name}/{item.name}"
        wanted.add(key)
        if not dry_run:
            _deployment(item).apply()
        results.append(("update" if key in before else "create", key))
    for key, deployment in sorted(before.items()):
        if key in wanted:
            continue
        if prune:
            if not dry_run:
                client.delete_deployment(deployment.id)
            results.append(("delete", key))
        else:
            results.append(("stale", key))
    return results
