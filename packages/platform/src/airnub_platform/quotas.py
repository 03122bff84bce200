"""Quotas: how much of the shared Prefect server one department may hold at once.

A department declares its limits in its own ``pyproject.toml``, beside its owners::

    [tool.airnub.limits]
    flow-runs = 4   # flow runs at once on its own work pool (the pool's concurrency limit)
    task-runs = 8   # task runs at once carrying its tag (Prefect's tag concurrency limit)

A ``[tool.airnub]`` table, not an entry point: only ``airnub deploy`` reads the limits
(from the checkout, as it reads ``prefect.yaml``); workers never need them, and an integer
has no place in an entry point's string. An absent table, or an absent key, means no limit.

``airnub deploy`` applies them. The server is then held to the file: a limit removed from
the file is removed from the server. Only what airnub owns is touched: the concurrency limit
of the department's own pool (:func:`conventions.work_pool_name`) and the tag limit on its
own tag, which Prefect keeps as the global concurrency limit ``tag:<department>``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from airnub_core.config import ConfigError
from airnub_core.conventions import work_pool_name
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airnub_platform import prefect_yaml

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

    from airnub_platform.deploy import PoolPlan

TABLE = "[tool.airnub.limits]"
MAX_LIMIT = 10_000  # more runs at once than any one server schedules: a typo, not a plan
Action = Literal["create", "update", "unchanged", "delete"]
Kind = Literal["flow-runs", "task-runs"]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]


class QuotaError(ConfigError):
    """A department's limits that cannot be applied; one line naming the file and field."""


class Limits(BaseModel):
    """What a department declares; None: no limit."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)

    flow_runs: Limit | None = Field(default=None, alias="flow-runs")
    task_runs: Limit | None = Field(default=None, alias="task-runs")


def pyproject_of(department: str) -> Path:
    """The department's ``pyproject.toml``: beside its ``prefect.yaml``."""
    return prefect_yaml.location(department).parent / "pyproject.toml"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read(department: str) -> Limits:
    """The limits ``department`` declares (none when it has no pyproject.toml or no table);
    raises QuotaError naming the file and the field."""
    path = pyproject_of(department)
    return parse(_load(path), _shown(path))


def check(department: str, pools: Iterable[PoolPlan]) -> Limits:
    """:func:`read`, and refuse a flow-runs limit when none of the department's
    deployments runs on its own pool (prefect.yaml names other pools): the limit would
    hold nothing, and airnub never limits an operator's pool."""
    limits = read(department)
    if limits.flow_runs is not None and not any(plan.own for plan in pools):
        raise QuotaError(
            f"{_shown(pyproject_of(department))}: {TABLE} 'flow-runs': no deployment runs on"
            f" the department's own work pool {work_pool_name(department)!r} (prefect.yaml"
            " names other pools), so there is nothing for it to limit"
        )
    return limits


def _load(path: Path) -> dict:
    if not path.exists():
        return {}
    if not path.is_file():  # a FIFO would block the read for ever
        raise QuotaError(f"{_shown(path)}: not a regular file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        why = getattr(error, "strerror", None) or type(error).__name__
        raise QuotaError(f"{_shown(path)}: cannot be read: {why}") from None
    except tomllib.TOMLDecodeError as error:
        raise QuotaError(f"{_shown(path)}: invalid TOML: {error}") from None


def parse(data: dict, file: str) -> Limits:
    """The limits in a parsed ``pyproject.toml``; raises QuotaError naming ``file``."""
    tool = data.get("tool", {})
    airnub = tool.get("airnub", {}) if isinstance(tool, dict) else {}
    table = airnub.get("limits") if isinstance(airnub, dict) else None
    if table is None:
        return Limits()
    if not isinstance(table, dict):
        raise QuotaError(f"{file}: {TABLE}: must be a table (flow-runs = 4, task-runs = 8)")
    try:
        return Limits.model_validate(table)
    except ValidationError as error:
        problem = error.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in problem["loc"])
        why = problem["msg"]
        if problem["type"] == "extra_forbidden":
            why = "unknown key; the keys are flow-runs and task-runs"
        elif problem["type"] in ("int_type", "int_parsing"):
            why = f"must be a whole number from 1 to {MAX_LIMIT}"
        raise QuotaError(f"{file}: {TABLE} {field[:60]!r}: {why}") from None


@dataclass(frozen=True)
class Change:
    """What applying one limit does on the server. ``name`` is the object holding it:
    the work pool, or the tag limit's ``tag:<department>``."""

    action: Action
    department: str
    kind: Kind
    name: str
    wanted: int | None
    current: int | None

    @property
    def described(self) -> str:
        """One row of the deploy table, e.g. ``work pool dept-x: flow-runs 4 (was 2)``."""
        where = "work pool" if self.kind == "flow-runs" else "tag limit"
        if self.action == "delete":
            return f"{where} {self.name}: {self.kind} removed (was {self.current})"
        was = f" (was {self.current})" if self.action == "update" else ""
        return f"{where} {self.name}: {self.kind} {self.wanted}{was}"


def tag_limit_name(department: str) -> str:
    """The global concurrency limit Prefect keeps a tag limit as."""
    return f"tag:{department}"


def _action(wanted: int | None, current: int | None) -> Action | None:
    if wanted == current:
        return None if wanted is None else "unchanged"
    if wanted is None:
        return "delete"
    return "create" if current is None else "update"


def _pool_limits(client: SyncPrefectClient, pools: list[str]) -> dict[str, int | None]:
    """Each pool's concurrency limit, in one read; a missing pool has none (deploy creates
    it first; a dry run reports the limit as new)."""
    from airnub_platform.deploy import read_pools

    found = read_pools(client, set(pools))
    return {name: pool.concurrency_limit for name, pool in found.items() if pool is not None}


def _tag_limits(client: SyncPrefectClient) -> dict[str, int | None]:
    """Every global concurrency limit in force, by name, page by page; one switched off by
    hand counts as none. Prefect filters them by nothing, so all are read: a few pages,
    where a read by name would be one request a department."""
    from airnub_core.variables import read_all
    from prefect.client.schemas.responses import GlobalConcurrencyLimitResponse

    def page(offset: int) -> list[GlobalConcurrencyLimitResponse]:
        # no page size: the server's own, not the client method's fixed 10
        response = client.request("POST", "/v2/concurrency_limits/filter", json={"offset": offset})
        response.raise_for_status()
        return GlobalConcurrencyLimitResponse.model_validate_list(response.json())

    return {found.name: found.limit if found.active else None for found in read_all(page)}


def _tag_limit_exists(client: SyncPrefectClient, department: str) -> bool:
    from prefect.exceptions import ObjectNotFound

    try:
        client.read_global_concurrency_limit_by_name(tag_limit_name(department))
    except ObjectNotFound:
        return False
    return True


def changes(
    client: SyncPrefectClient, departments: list[str], declared: dict[str, Limits] | None = None
) -> list[Change]:
    """Read-only: what applying the departments' limits would change on ``client``'s
    server. ``declared`` (department -> Limits) skips reading their pyproject.toml again."""
    found = []
    pools = _pool_limits(client, [work_pool_name(d) for d in departments]) if departments else {}
    tags = _tag_limits(client) if departments else {}
    for department in departments:
        limits = declared[department] if declared and department in declared else read(department)
        pool, tag = work_pool_name(department), tag_limit_name(department)
        pairs: list[tuple[Kind, str, int | None, int | None]] = [
            ("flow-runs", pool, limits.flow_runs, pools.get(pool)),
            ("task-runs", tag, limits.task_runs, tags.get(tag)),
        ]
        for kind, name, wanted, current in pairs:
            action = _action(wanted, current)
            if action is not None:
                found.append(Change(action, department, kind, name, wanted, current))
    return found


def apply(
    client: SyncPrefectClient, departments: list[str], *, dry_run: bool = False
) -> list[Change]:
    """Hold the server to the departments' declared limits (every file read first);
    returns every change, made unless ``dry_run``."""
    declared = {department: read(department) for department in departments}
    planned = changes(client, departments, declared)
    if not dry_run:
        for change in planned:
            if change.action != "unchanged":
                _write(client, change)
    return planned


def _write(client: SyncPrefectClient, change: Change) -> None:
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
        WorkPoolUpdate,
    )

    if change.kind == "flow-runs":
        from prefect.exceptions import ObjectNotFound

        try:  # None is sent as null: the pool's limit is lifted
            client.update_work_pool(change.name, WorkPoolUpdate(concurrency_limit=change.wanted))
        except ObjectNotFound:  # deleted by hand since deploy made it
            raise QuotaError(f"work pool {change.name!r}: gone from the server") from None
    elif change.wanted is None:
        client.delete_global_concurrency_limit_by_name(change.name)
    elif _tag_limit_exists(client, change.department):  # maybe switched off by hand
        update = GlobalConcurrencyLimitUpdate(limit=change.wanted, active=True)
        client.update_global_concurrency_limit(change.name, update)
    else:
        create = GlobalConcurrencyLimitCreate(name=change.name, limit=change.wanted, active=True)
        client.create_global_concurrency_limit(create)


def retire(
    client: SyncPrefectClient, department: str, *, dry_run: bool = False
) -> list[tuple[str, str]]:
    """A removed department's tag limit leaves with it (its pool's limit goes with its
    pool): ("delete limit", name), or nothing when it had none. Never reads its files."""
    if not _tag_limit_exists(client, department):
        return []
    name = tag_limit_name(department)
    if not dry_run:
        client.delete_global_concurrency_limit_by_name(name)
    return [("delete limit", name)]
