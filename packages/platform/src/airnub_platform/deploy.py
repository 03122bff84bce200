"""``airnub deploy``: register a department's ``prefect.yaml`` deployments with Prefect.

Each entry becomes the same deployment ``prefect --no-prompt deploy --all`` makes from
that file: the entrypoint as written (a module path, so a worker anywhere the package is
installed can run it), the file's ``pull`` steps, no path, and the same schedules,
parameters and job variables; nothing is built or pushed. Names and tags come from the
conventions (the file is generated from them by :mod:`airnub_platform.prefect_yaml`, and
``airnub check`` fails while it differs). ``AIRNUB_ENV`` goes to every run through the
job variables, choosing the config overlays. A deployment whose server object already
matches is left alone ("unchanged"); ``prune`` deletes the department's deployments no
longer listed.

The :class:`Target` says which type of work pool the runs go to. Process pools run the
module entrypoints wherever the package is installed; for Docker and Kubernetes pools
every deployment pins the department's image (``REGISTRY/<distribution>:TAG``, see
:func:`airnub_core.conventions.image_reference`). A missing pool is created with the
requested type (:mod:`airnub_platform.work_pools` renders its base job template); a
pool of another type is an error, never retyped. The template of the department's own
Kubernetes pool is kept in step with its ``work-pool.yaml``; any other existing pool (a
process or Docker pool, or one an operator named in ``prefect.yaml``) is left as its
operator made it (volumes, networks). Another department's own pool is refused.

A preview (``preview="pr-7"``, see :func:`airnub_core.conventions.check_preview`) registers
the same deployments named ``<name>--pr-7``, tagged ``preview:pr-7`` besides their usual
tags, with every schedule inactive, on the pool ``<pool>--pr-7`` (created like the others
and marked as the preview's own in its description): production workers never poll it,
so a preview run can only be picked up by a worker started for the preview. Every
selection of existing deployments is split by preview: a production deploy, prune or
retire never sees a preview, and a preview's deploy or prune sees only its own.
:func:`retire_preview` deletes a closed pull request's previews and own pools.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from airnub_core import conventions
from airnub_core.config import ENV_VAR, ConfigError
from airnub_core.conventions import (
    MANAGED_TAG,
    ConventionError,
    Identity,
    check_department,
    check_preview,
    check_registry,
    check_tag,
    distribution_name,
    image_reference,
    preview_name,
    preview_tag,
    preview_tags,
    work_pool_name,
)
from airnub_core.environments import check_name
from airnub_core.variables import read_all

from airnub_platform import lost_runs, prefect_patches, prefect_yaml, work_pools
from airnub_platform.check import entrypoint_flow
from airnub_platform.work_pools import IMAGE_POOL_TYPES, KUBERNETES, POOL_TYPES, PROCESS

T = TypeVar("T")

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.responses import DeploymentResponse

# Fields compared to decide "unchanged". The version is left out: prefect sets it to the
# git commit, and a new commit alone changes nothing a run does.
COMPARED = (
    "entrypoint", "tags", "description", "work_pool_name", "work_queue_name",
    "job_variables", "parameters", "pull_steps", "path", "enforce_parameter_schema",
    "parameter_openapi_schema",
)  # fmt: skip


@dataclass(frozen=True)
class Target:
    """The type of work pool the runs go to, and the registry and tag of the image the
    deployments pin (Docker and Kubernetes pools only)."""

    pool_type: str = PROCESS
    registry: str | None = None
    tag: str | None = None

    def __post_init__(self) -> None:
        if self.pool_type not in POOL_TYPES:
            raise ConfigError(
                f"--pool-type: {self.pool_type!r} is not one of {', '.join(POOL_TYPES)}"
            )
        given = [name for name in ("registry", "tag") if getattr(self, name) is not None]
        if self.pool_type == PROCESS and given:
            raise ConfigError(
                f"--{given[0]}: only for docker and kubernetes pools; a process pool runs the"
                " installed package, no image"
            )
        missing = [name for name in ("registry", "tag") if getattr(self, name) is None]
        if self.pool_type != PROCESS and missing:
            raise ConfigError(
                f"--{missing[0]}: required with --pool-type {self.pool_type}, so the"
                " deployments pin the department's image"
            )
        for name, check in (("registry", check_registry), ("tag", check_tag)):
            if (value := getattr(self, name)) is not None:
                try:
                    check(value)
                except ConventionError as error:
                    raise ConfigError(f"--{name}: {error}") from None

    def image(self, department: str) -> str | None:
        """The image the department's deployments pin; None for a process pool."""
        if self.pool_type not in IMAGE_POOL_TYPES:
            return None
        assert self.registry is not None and self.tag is not None  # checked above
        try:
            return image_reference(department, self.registry, self.tag)
        except ConventionError as error:
            raise ConfigError(f"--registry: {error}") from None


@dataclass
class Planned:
    identity: Identity
    flow: Any
    name: str
    work_pool: str
    entry: dict[str, Any]
    env: str  # AIRNUB_ENV for the runs
    pull: list[dict[str, Any]]
    image: str | None = None  # pinned for Docker and Kubernetes pools
    preview: str | None = None  # "pr-7": a pull request's preview of this deployment

    @property
    def key(self) -> str:
        return f"{self.flow.name}/{self.name}"


def planned(
    department: str, env: str, target: Target | None = None, preview: str | None = None
) -> list[Planned]:
    check_name(env, "environment")  # written into every run's AIRNUB_ENV: never a path
    check_preview_option(preview)
    image = (target or Target()).image(department)
    path = prefect_yaml.location(department)
    if not path.is_file():
        raise ConfigError(f"{path}: missing; `airnub check` explains what it should hold")
    try:
        data = prefect_yaml.load(prefect_yaml.read(path))
    except prefect_yaml.PrefectYamlError as error:
        raise error.at(path) from None
    pull = data.get("pull") or []  # none at all is flagged by `airnub check`
    if not isinstance(pull, list):
        raise ConfigError(f"{path}: pull must be a list of steps, e.g. pull: []")
    found = []
    for index, entry in enumerate(data.get("deployments") or []):
        where = f"{path}: deployments[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a mapping")
        try:
            flow = entrypoint_flow(department, str(entry.get("entrypoint", "")))
        except ConventionError as error:
            raise ConfigError(f"{where}.entrypoint {error}") from None
        identity: Identity = flow.airnub_identity
        pool = (entry.get("work_pool") or {}).get("name")
        if not pool:
            raise ConfigError(f"{where}.work_pool.name: missing")
        _refuse_anothers_pool(department, str(pool), where)
        _refuse_literal_key(entry, where)
        name = preview_name(identity.deployment_name, preview)
        pool = preview_name(str(pool), preview)
        item = Planned(identity, flow, name, pool, entry, env, pull, image, preview)
        _refuse_listed_twice(item, found, where)
        found.append(item)
    return found


def _refuse_listed_twice(item: Planned, found: list[Planned], where: str) -> None:
    """Each deployment is compared with the server as read once, before any write: one
    listed twice would be created twice, the second time over the first."""
    first = next((index for index, other in enumerate(found) if other.key == item.key), None)
    if first is not None:
        raise ConfigError(
            f"{where}.entrypoint: deploys {item.key!r} again, as deployments[{first}] does;"
            " list each deployment once"
        )


def check_preview_option(preview: str | None) -> None:
    """Refuse an invalid ``--preview`` (ConfigError naming the option)."""
    if preview is not None:
        try:
            check_preview(preview)
        except ConventionError as error:
            raise ConfigError(f"--preview: {error}") from None


def _refuse_anothers_pool(department: str, pool: str, where: str) -> None:
    """Another department's own pool runs that department's image (or package) and gets
    its work-pool.yaml: runs sent there would fail, or reshape it."""
    others = set(conventions.departments()) - {department}
    owners = {work_pool_name(other): other for other in others}
    if pool in owners:
        raise ConfigError(
            f"{where}.work_pool.name: {pool!r} is {owners[pool]}'s own work pool; a"
            f" department deploys to its own ({work_pool_name(department)!r}) or to one"
            " named by no department"
        )


def _refuse_literal_key(entry: dict[str, Any], where: str) -> None:
    """An API key written into prefect.yaml would be stored on every deployment: refused,
    without showing it."""
    job_variables = (entry.get("work_pool") or {}).get("job_variables") or {}
    env = job_variables.get("env") if isinstance(job_variables, dict) else None
    if isinstance(env, dict) and work_pools.API_KEY in env:
        raise ConfigError(
            f"{where}.work_pool.job_variables.env.{work_pools.API_KEY}: an API key may not be"
            " written here; runs get it from the worker, or on Kubernetes from the Secret"
            " that work-pool.yaml names"
        )


def _job_variables(item: Planned) -> dict[str, Any]:
    job_variables = dict((item.entry.get("work_pool") or {}).get("job_variables") or {})
    job_variables["env"] = {**(job_variables.get("env") or {}), ENV_VAR: item.env}
    if item.image is not None:
        job_variables["image"] = item.image  # the commit's image, never a moving tag
    return job_variables


def _schedules(item: Planned) -> list[dict[str, Any]]:
    # Prefect's own reading of a prefect.yaml schedule, so both commands agree on it.
    schedule_from_config = prefect_patches.SCHEDULE_FROM_CONFIG.get()
    schedules = [schedule_from_config(s) for s in item.entry.get("schedules") or []]
    if item.preview is not None:
        # shown as production has them, but a preview never runs on a schedule
        schedules = [{**schedule, "active": False} for schedule in schedules]
    return schedules


def _tags(item: Planned) -> list[str]:
    preview = [preview_tag(item.preview)] if item.preview is not None else []
    return [*item.identity.tags, MANAGED_TAG, *preview]


def wanted(item: Planned) -> dict[str, Any]:
    """The compared fields of the deployment ``item`` should be on the server."""
    fields = {
        "entrypoint": item.entry["entrypoint"],
        "tags": _tags(item),
        "description": item.entry.get("description") or item.flow.description,
        "work_pool_name": item.work_pool,
        "work_queue_name": (item.entry.get("work_pool") or {}).get("work_queue_name") or "default",
        "job_variables": _job_variables(item),
        "parameters": item.entry.get("parameters") or {},
        "pull_steps": item.pull,
        "path": None,
        "enforce_parameter_schema": True,
        # what Prefect's parameter_schema(flow) gives, computed once when the flow was made
        "parameter_openapi_schema": item.flow.parameters.model_dump(exclude_unset=True),
    }
    # An empty or missing list leaves a deployment's schedules as they are, in both commands.
    if schedules := _schedules(item):
        from prefect.client.schemas.actions import DeploymentScheduleCreate

        fields["schedules"] = [_schedule_fields(DeploymentScheduleCreate(**s)) for s in schedules]
    return fields


def _schedule_fields(schedule: Any) -> dict[str, Any]:
    return {
        "schedule": schedule.schedule.model_dump(mode="json"),
        "active": schedule.active,
        "parameters": schedule.parameters,
        "slug": schedule.slug,
    }


def current(deployment: DeploymentResponse) -> dict[str, Any]:
    fields = {name: getattr(deployment, name) for name in COMPARED}
    fields["schedules"] = [_schedule_fields(s) for s in deployment.schedules]
    return fields


def differences(item: Planned, deployment: DeploymentResponse) -> list[str]:
    """The compared fields where the server's deployment differs from ``item``."""
    have = current(deployment)
    if have["description"] == "None":  # how Prefect's create stores a missing description
        have["description"] = None
    return [name for name, value in wanted(item).items() if have.get(name) != value]


class _PullSteps:
    """Storage that only carries pull steps, as ``prefect deploy`` passes them."""

    def __init__(self, steps: list[dict[str, Any]]) -> None:
        self.steps = steps
        self._base = Path(".")

    def set_base_path(self, path: Path) -> None:
        self._base = path

    @property
    def destination(self) -> Path:
        return self._base

    @property
    def pull_interval(self) -> int | None:
        return None

    async def pull_code(self) -> None:
        return None

    def to_pull_step(self) -> list[dict[str, Any]]:
        return self.steps

    def __eq__(self, other: object) -> bool:
        return self.steps == getattr(other, "steps", None)


class Versions:
    """The version info Prefect infers for a deployment it writes (the CI's or git's commit
    and branch), inferred at a deploy's first write and shared by its others: the same for
    every deployment of one command, where Prefect runs five git processes for each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inferred: list[Any] = []  # empty until inferred; [None]: nothing to infer from

    def of(self, deployment: Any) -> Any:
        """The VersionInfo ``deployment.apply`` would infer, its version set on it as
        Prefect sets it (airnub's deployments never carry their own)."""
        from prefect.client.schemas.objects import VersionInfo
        from prefect.utilities.asyncutils import run_coro_as_sync

        with self._lock:
            if not self._inferred:
                infer = prefect_patches.INFERRED_VERSION.get()
                self._inferred.append(run_coro_as_sync(infer(None)))
            inferred = self._inferred[0]
        if inferred is None:
            return VersionInfo(version=deployment.version or "", type="prefect:simple")
        deployment.version = inferred.version
        return inferred.model_copy()


def _apply(
    client: SyncPrefectClient,
    item: Planned,
    existing: DeploymentResponse | None,
    versions: Versions,
) -> None:
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.deployments.runner import DeploymentApplyError, RunnerDeployment

    fields = wanted(item)
    deployment = RunnerDeployment(
        name=item.name,
        flow_name=item.flow.name,
        entrypoint=fields["entrypoint"],
        work_pool_name=item.work_pool,
        work_queue_name=(item.entry.get("work_pool") or {}).get("work_queue_name"),
        parameters=fields["parameters"],
        description=fields["description"],
        tags=fields["tags"],
        storage=_PullSteps(item.pull),  # so the path is None and the pull steps are the file's
        job_variables=fields["job_variables"],
    )
    # parameter schema and version, as prefect does
    prefect_patches.DEFAULTS_FROM_FLOW.get()(deployment, item.flow)
    try:
        version_info = versions.of(deployment)
        deployment.apply(schedules=_schedules(item) or None, version_info=version_info)
    except DeploymentApplyError as error:
        # Prefect wraps its client's error in a message holding the answer's body, which
        # may repeat what was sent: the request's own error is reported, as for any write
        raise (error.__cause__ or error) from None
    if existing is not None and existing.path is not None:
        # a path some other tool left; an update through `apply` never clears it
        client.update_deployment(existing.id, DeploymentUpdate(path=None))


def existing_deployments(
    client: SyncPrefectClient, department: str, preview: str | None = None
) -> dict[str, DeploymentResponse]:
    """The department's airnub-managed deployments: 'flow name/deployment name' -> deployment.

    Production ones (no preview tag) when ``preview`` is None, else exactly the preview's
    own: a deployment is in one of these sets at most, so no deploy, prune or retire of
    one ever reaches another's.

    Every one is read, however many the server holds, and named by its own flow (looked
    up by id), so a deployment just updated is never mistaken for a stale one.
    """
    return Server.read(client, {department: []}).existing(department, preview)


@dataclass(frozen=True)
class Server:
    """What :func:`deploy` compares with, read in a few paged requests however many
    departments it covers (``airnub plan`` and ``drift`` read it once per report, a deploy
    once per department before writing): the departments' managed deployments, previews
    included; the deployments holding a name one of them wants (a hand-made one is
    adopted); the work pools they name. Each deployment is keyed by its own flow's name."""

    managed: dict[str, DeploymentResponse]  # "flow/deployment" -> a department's managed one
    named: dict[str, DeploymentResponse]  # "flow/deployment" -> one holding a wanted name
    pools: dict[str, Any]  # pool name -> the pool, None when missing

    @classmethod
    def read(
        cls, client: SyncPrefectClient, items: dict[str, list[Planned]], *, pools: bool = True
    ) -> Server:
        """The server as ``items`` (department -> its planned deployments) need it; the
        pools too unless ``pools`` is False (a deploy reads them before writing them)."""
        from prefect.client.schemas.filters import (
            DeploymentFilter,
            DeploymentFilterName,
            DeploymentFilterTags,
        )

        if not items:  # a report of no department reads nothing
            return cls({}, {}, {})
        tags = DeploymentFilterTags(all_=[MANAGED_TAG], any_=sorted(items))
        managed = _keyed(client, DeploymentFilter(tags=tags))
        wanted = {item.key: item.name for found in items.values() for item in found}
        missing = sorted({name for key, name in wanted.items() if key not in managed})
        named = {}
        if missing:  # the applied case, every name managed already, needs no read
            named = _keyed(client, DeploymentFilter(name=DeploymentFilterName(any_=missing)))
        named_pools = {item.work_pool for found in items.values() for item in found}
        return cls(managed, named, read_pools(client, named_pools) if pools else {})

    def existing(
        self, department: str, preview: str | None = None
    ) -> dict[str, DeploymentResponse]:
        """:func:`existing_deployments` of ``department``, from what was read."""
        # The server filters by tags held, not by tags absent: the split is made here, and
        # both tags are checked again, so no answer can put another's deployment in it.
        previews = {preview_tag(preview)} if preview is not None else set()
        return {
            key: deployment
            for key, deployment in self.managed.items()
            if {department, MANAGED_TAG} <= set(deployment.tags)
            and preview_tags(deployment.tags) == previews
        }

    def holding(self, key: str) -> DeploymentResponse | None:
        """The deployment named ``key`` ('flow/deployment'), managed or not."""
        return self.managed.get(key) or self.named.get(key)


def _keyed(client: SyncPrefectClient, selection: Any) -> dict[str, DeploymentResponse]:
    """Every deployment ``selection`` (a DeploymentFilter) finds, as 'flow/deployment'."""
    found = read_all(client.read_deployments, deployment_filter=selection)
    names = flow_names(client, {d.flow_id for d in found})
    # Prefect deletes a flow's deployments with it; one whose flow the server does not
    # name is left out, so it is never pruned.
    return {f"{names[d.flow_id]}/{d.name}": d for d in found if d.flow_id in names}


def flow_names(client: SyncPrefectClient, ids: set[UUID]) -> dict[UUID, str]:
    """Flow id -> name for exactly ``ids``."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterId

    if not ids:
        return {}
    flows = read_all(client.read_flows, flow_filter=FlowFilter(id=FlowFilterId(any_=sorted(ids))))
    return {flow.id: flow.name for flow in flows}


@dataclass(frozen=True)
class PoolPlan:
    """A work pool the deployments name: its type, and the base job template a new one
    gets (None: the type's own default, for a process pool)."""

    name: str
    type: str = PROCESS
    template: dict[str, Any] | None = None
    own: bool = True  # the department's pool by convention, not one an operator named
    description: str | None = None  # a preview's own pool is marked, so its removal knows it

    @property
    def kept_in_step(self) -> bool:
        """The template of a department's own Kubernetes pool is code; other existing
        pools are the operator's (a pool several departments share would otherwise take
        each one's work-pool.yaml in turn)."""
        return self.type == KUBERNETES and self.own


def pool_plans(
    department: str, env: str, target: Target, names: set[str], preview: str | None = None
) -> list[PoolPlan]:
    """The pools ``names`` as ``target`` wants them; reads the department's
    ``work-pool.yaml`` for a Kubernetes pool (WorkPoolError names what is wrong). A
    preview's pools (``names`` as :func:`planned` derived them) are all its own."""
    settings = work_pools.read(department) if target.pool_type == KUBERNETES else None
    template = work_pools.base_job_template(target.pool_type, department, env, settings)
    own = preview_name(work_pool_name(department), preview)
    description = preview_pool_description(preview) if preview is not None else None
    return [
        PoolPlan(name, target.pool_type, template, name == own, description)
        for name in sorted(names)
    ]


def preview_pool_description(preview: str) -> str:
    """What marks a work pool as made for ``preview``: only such a pool is ever deleted
    with it."""
    return f"airnub preview pool of {check_preview(preview)}; deleted when it closes"


def read_pools(client: SyncPrefectClient, names: set[str]) -> dict[str, Any]:
    """Each pool of ``names`` as the server holds it (None: missing). Several are one paged
    read; a single one (a department's deploy) is its own read by name, one request where
    a paged read takes two."""
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    if len(names) <= 1:
        return {name: _existing_pool(client, name) for name in names}
    pool_filter = WorkPoolFilter(name=WorkPoolFilterName(any_=sorted(names)))
    found = {p.name: p for p in read_all(client.read_work_pools, work_pool_filter=pool_filter)}
    return {name: found.get(name) for name in names}


def _existing_pool(client: SyncPrefectClient, name: str) -> Any:
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_work_pool(name)
    except ObjectNotFound:
        return None


def check_pools(
    client: SyncPrefectClient, plans: list[PoolPlan], pools: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Each planned pool as the server holds it (None: missing), from ``pools`` when they
    were read already. A pool of another type than wanted is an error: deployments of one
    type would run on a worker of another, so a pool is never retyped."""
    if pools is None:
        pools = read_pools(client, {plan.name for plan in plans})
    existing = {plan.name: pools.get(plan.name) for plan in plans}
    for plan in plans:
        pool = existing[plan.name]
        if pool is not None and pool.type != plan.type:
            raise ConfigError(
                f"work pool {plan.name!r} is a {pool.type} pool, not {plan.type}: airnub never"
                f" retypes a pool; deploy with --pool-type {pool.type}, or delete the pool"
                " (and its worker) first"
            )
    return existing


def ensure_work_pools(
    client: SyncPrefectClient,
    plans: list[PoolPlan],
    dry_run: bool,
    pools: dict[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """Create missing pools and update a Kubernetes pool whose template is not the
    rendered one: ("create pool" or "update pool", name). Checks every type first.
    ``pools``: the pools as read already (:class:`Server`, :func:`read_pools`), else read
    here; a pool created here is added to it, so a department deployed next that names
    the same pool finds it, as a read after this write would."""
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate

    existing = check_pools(client, plans, pools)
    results = []
    for plan in plans:
        pool = existing[plan.name]
        if pool is None:
            if not dry_run:
                template = plan.template or {}  # {}: the server's default for the type
                create = WorkPoolCreate(
                    name=plan.name,
                    type=plan.type,
                    base_job_template=template,
                    description=plan.description,
                )
                made = client.create_work_pool(create)
                if pools is not None:
                    pools[plan.name] = made
            results.append(("create pool", plan.name))
        elif plan.kept_in_step and not work_pools.same_template(
            pool.base_job_template, plan.template
        ):
            if not dry_run:
                update = WorkPoolUpdate(base_job_template=plan.template)
                client.update_work_pool(plan.name, update)
            results.append(("update pool", plan.name))
    return results


def deploy(
    client: SyncPrefectClient,
    department: str,
    env: str,
    *,
    target: Target | None = None,
    dry_run: bool = False,
    prune: bool = False,
    preview: str | None = None,
    items: list[Planned] | None = None,
    server: Server | None = None,
) -> list[tuple[str, str]]:
    """(action, 'flow/deployment') for every deployment of the department and every pool.

    Actions: create pool, update pool, image, create, update, unchanged, stale, delete.
    With ``preview``, the preview's deployments and pools only (pruned among its own).
    ``items`` (:func:`planned`, same env, target and preview) and ``server``
    (:meth:`Server.read` with them) are what was planned and read already for many
    departments; a write needs ``server`` read since the last one.
    """
    target = target or Target()
    items = planned(department, env, target, preview) if items is None else items
    plans = pool_plans(department, env, target, {i.work_pool for i in items}, preview)
    results = ensure_work_pools(client, plans, dry_run, server.pools if server else None)
    if (image := target.image(department)) is not None:
        results.append(("image", image))
    if server is None:  # read after the pools are made, as each write comes in order
        server = Server.read(client, {department: items}, pools=False)
    found = _deploy_deployments(client, department, items, server, dry_run, prune, preview)
    return results + found


def _deploy_deployments(
    client: SyncPrefectClient,
    department: str,
    items: list[Planned],
    server: Server,
    dry_run: bool,
    prune: bool,
    preview: str | None,
    versions: Versions | None = None,
) -> list[tuple[str, str]]:
    """The deployment rows of :func:`deploy`: each item created, updated or unchanged,
    then the department's managed ones no longer listed, stale or deleted."""
    versions = versions or Versions()
    results = []
    before = server.existing(department, preview)
    wanted_keys = set()
    for item in items:
        wanted_keys.add(item.key)
        # one `prefect deploy` made from a file without the managed tag is adopted
        existing = before.get(item.key) or server.holding(item.key)
        if existing is not None and not differences(item, existing):
            results.append(("unchanged", item.key))
            continue
        if not dry_run:
            _apply(client, item, existing, versions)
        results.append(("create" if existing is None else "update", item.key))
    for key, deployment in sorted(before.items()):
        if key in wanted_keys:
            continue
        if prune:
            if not dry_run:
                client.delete_deployment(deployment.id)
            results.append(("delete", key))
        else:
            results.append(("stale", key))
    return results


# Departments registered at once by `airnub deploy`: the API's answers, not this
# process, are what one department's deploy waits for. 2 by default: a bare `prefect server
# start` on SQLite (a pool of connections) answered 503 to some of 8 departments' writes
# at once, never to 2; airnub's own servers use one connection, and Postgres takes more.
CONCURRENCY_ENV = "AIRNUB_DEPLOY_CONCURRENCY"
DEFAULT_CONCURRENCY = 2
MAX_CONCURRENCY = 64


def concurrency(option: str | None) -> int:
    """Departments deployed at once: ``--concurrency``, else ``AIRNUB_DEPLOY_CONCURRENCY``,
    else 2; ConfigError naming the one given unless a whole number from 1 to 64."""
    name, text = "--concurrency", option
    if text is None:
        name, text = CONCURRENCY_ENV, os.environ.get(CONCURRENCY_ENV, "").strip()
        if not text:
            return DEFAULT_CONCURRENCY
    try:
        value = int(text.strip(), 10)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_CONCURRENCY:
        # repr: a control character in the text stays an escape, on one line
        raise ConfigError(
            f"{name}: {text[:20]!r} is not a whole number from 1 to {MAX_CONCURRENCY}"
        )
    return value


def deploy_departments(
    client: SyncPrefectClient,
    items: dict[str, list[Planned]],
    pools: dict[str, list[PoolPlan]],
    *,
    target: Target,
    dry_run: bool = False,
    prune: bool = False,
    preview: str | None = None,
    at_once: int = DEFAULT_CONCURRENCY,
) -> list[tuple[str, str]]:
    """:func:`deploy` of each department of ``items`` (:func:`planned`) with its ``pools``
    (:func:`pool_plans`): the same rows, in the order of ``items``, whatever order the
    departments finish in.

    The pools come first, department after department (a pool two departments name is
    created once, by the first), from one read of them all; then one read of every
    department's deployments; then the deployments, ``at_once`` departments at a time.
    A failure stops departments from starting; those started finish, so no department but
    a failing one is left with some of its deployments written (one after another, as
    with ``at_once=1``, the departments after it are not started either)."""
    names = list(items)
    existing = read_pools(client, {plan.name for found in pools.values() for plan in found})
    rows = {}
    for name in names:
        rows[name] = ensure_work_pools(client, pools[name], dry_run, existing)
        if (image := target.image(name)) is not None:
            rows[name].append(("image", image))
    server = Server.read(client, items, pools=False)  # after the pools, as deploy reads
    versions = Versions()

    def deployments(name: str) -> list[tuple[str, str]]:
        found = items[name]
        return _deploy_deployments(client, name, found, server, dry_run, prune, preview, versions)

    done = each_bounded(deployments, names, at_once)
    return [row for name in names for row in rows[name] + done[name]]


def each_bounded(work: Callable[[str], T], names: list[str], at_once: int) -> dict[str, T]:
    """``work(name)`` for every name, at most ``at_once`` at a time, each in a copy of this
    thread's context (Prefect's settings, among them the request deadline). After a
    failure (or Ctrl-C here) no name starts; those started finish; the first failure in
    the order of ``names`` is raised."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    workers = min(at_once, len(names))
    if workers <= 1:
        return {name: work(name) for name in names}
    executor = ThreadPoolExecutor(workers, thread_name_prefix="airnub-deploy")
    try:
        futures = {
            name: executor.submit(contextvars.copy_context().run, work, name) for name in names
        }
        wait(futures.values(), return_when=FIRST_EXCEPTION)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    for future in futures.values():
        if not future.cancelled() and (error := future.exception()) is not None:
            raise error
    return {name: future.result() for name, future in futures.items()}


def retire(
    client: SyncPrefectClient, department: str, *, dry_run: bool = False
) -> list[tuple[str, str]]:
    """Delete a removed department's managed deployments and managed Variables, then its
    own work pool if nothing else uses it.

    Never imports the department: its package is usually gone. Its previews are not
    its deployments here: they go when their pull request closes (:func:`retire_preview`).
    Returns (action, what) with actions delete, delete variable, delete pool and keep pool.
    """
    from prefect.exceptions import ObjectNotFound

    from airnub_platform.variable_sync import managed_variables

    results = []
    doomed = existing_deployments(client, department)
    for key, deployment in sorted(doomed.items()):
        if not dry_run:
            client.delete_deployment(deployment.id)
        results.append(("delete", key))
    # Only Variables `airnub variables sync` wrote for this department: both tags.
    for name in sorted(managed_variables(client, department)):
        if not dry_run:
            client.delete_variable_by_name(name)
        results.append(("delete variable", name))
    gone = {d.id for d in doomed.values()}
    own = work_pool_name(department)
    # A pool the department's deployments named but did not get by convention may be an
    # operator's (a production pool made by hand): never deleted here.
    named = {d.work_pool_name for d in doomed.values() if d.work_pool_name is not None}
    for pool in sorted(named - {own}):
        results.append(("keep pool", f"{pool}: not the department's own pool"))
    try:
        client.read_work_pool(own)
    except ObjectNotFound:
        return results
    results.append(_delete_pool_if_unused(client, own, gone, dry_run))
    return results


def _delete_pool_if_unused(
    client: SyncPrefectClient, pool: str, gone: set[UUID], dry_run: bool
) -> tuple[str, str]:
    """("delete pool", pool) when no deployment but those ``gone`` uses it, else
    ("keep pool", why)."""
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    users = [
        d
        for d in read_all(
            client.read_deployments,
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
        )
        if d.id not in gone
    ]
    if users:
        return "keep pool", f"{pool}: used by {_described(users)}"
    if not dry_run:
        client.delete_work_pool(pool)
    return "delete pool", pool


def managed_departments(client: SyncPrefectClient) -> set[str]:
    """Departments owning airnub-managed deployments or Variables on the server.

    A department is a tag that is a valid department id and that the object's name
    starts with as the conventions name it, so a stage or category tag never counts.
    """
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    from airnub_platform.variable_sync import managed_variables

    found = set()
    deployments = read_all(
        client.read_deployments,
        deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[MANAGED_TAG])),
    )
    # A pull request's preview outlives nothing: it is removed when the PR closes.
    named = [(d.name, d.tags, distribution_name) for d in deployments if not preview_tags(d.tags)]
    named += [
        (name, variable.tags, lambda tag: tag)
        for name, variable in managed_variables(client).items()
    ]
    for name, tags, prefix in named:
        found |= {tag for tag in tags if _names_department(name, tag, prefix(tag))}
    return found


def _names_department(name: str, tag: str, prefix: str) -> bool:
    return _is_department(tag) and name.startswith(f"{prefix}-")


def _department_of(deployment: Any) -> str | None:
    """The department a deployment belongs to by the conventions: a tag that is a
    department id and that its name starts with."""
    tags = deployment.tags
    found = [t for t in tags if _names_department(deployment.name, t, distribution_name(t))]
    return found[0] if found else None


def retire_preview(
    client: SyncPrefectClient,
    preview: str,
    *,
    keep: set[str] | None = None,
    dry_run: bool = False,
) -> list[tuple[str, str]]:
    """Delete every deployment tagged both ``preview:<preview>`` and managed, then each
    pool marked as the preview's own that no other deployment uses.

    ``keep``: departments whose previews stay (a new push's affected ones, deployed next);
    then only the pools of the deleted deployments are considered.
    Imports no department (a closed PR's code may be gone). Repeating it finds nothing
    more to delete. Returns (action, what): delete, delete pool and keep pool.
    """
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    check_preview_option(preview)
    found = read_all(
        client.read_deployments,
        deployment_filter=DeploymentFilter(
            tags=DeploymentFilterTags(all_=[preview_tag(preview), MANAGED_TAG])
        ),
    )
    doomed = [d for d in found if keep is None or _department_of(d) not in keep]
    names = flow_names(client, {d.flow_id for d in doomed})
    results = []
    for deployment in sorted(doomed, key=lambda d: d.name):
        if not dry_run:
            client.delete_deployment(deployment.id)
        results.append(("delete", f"{names.get(deployment.flow_id, '?')}/{deployment.name}"))
    named = {d.work_pool_name for d in doomed if d.work_pool_name is not None}
    gone = {d.id for d in doomed}
    results += _retire_preview_pools(client, preview, named, gone, keep is None, dry_run)
    return results


def _retire_preview_pools(
    client: SyncPrefectClient,
    preview: str,
    named: set[str],
    gone: set[UUID],
    every_marked: bool,
    dry_run: bool,
) -> list[tuple[str, str]]:
    """A pool goes only when it is the preview's own (made by a preview deploy, marked so)
    and unused; pools the deleted deployments named but it did not make stay. With
    ``every_marked``, marked pools nothing names any more (a run that stopped half-way)
    are found by their mark too."""
    mark = preview_pool_description(preview)
    pools = {pool.name: pool for pool in read_all(client.read_work_pools)}
    own = {name for name, pool in pools.items() if _is_previews_pool(pool, preview, mark)}
    if not every_marked:
        own &= named
    results = [("keep pool", f"{name}: not {preview}'s own pool") for name in sorted(named - own)]
    return results + [_delete_pool_if_unused(client, name, gone, dry_run) for name in sorted(own)]


def _is_previews_pool(pool: Any, preview: str, mark: str) -> bool:
    return pool.name.endswith(preview_name("", preview)) and pool.description == mark


def _is_department(tag: str) -> bool:
    try:
        check_department(tag)
    except ConventionError:
        return False
    return True


def _described(deployments: list[Any]) -> str:
    unmanaged = sum(MANAGED_TAG not in d.tags for d in deployments)
    previews = sum(MANAGED_TAG in d.tags and bool(preview_tags(d.tags)) for d in deployments)
    managed = len(deployments) - unmanaged - previews
    parts = [
        f"{count} {'deployment' if count == 1 else 'deployments'} {what}"
        for count, what in (
            (unmanaged, "not managed by airnub"),
            (managed, "of other departments"),
            (previews, "of previews"),
        )
        if count
    ]
    return " and ".join(parts)


def apply_lost_run_automation(client: SyncPrefectClient, *, dry_run: bool) -> tuple[str, str]:
    """The server-wide automation that marks Crashed a run whose host was lost, made for
    the heartbeat of ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` here (Prefect's 180 s if unset;
    workers must run with the same value): an action row for the deploy table."""
    silence = lost_runs.silence_for(lost_runs.heartbeat_seconds())
    if not dry_run:
        lost_runs.ensure_lost_run_automation(client, silence)
    return "automation", f"{lost_runs.AUTOMATION_NAME} (silent {silence.total_seconds():g} s)"
