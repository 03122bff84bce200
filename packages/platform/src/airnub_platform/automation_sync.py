"""``airnub automations sync``: each department's alerts, as Prefect automations.

By convention every department gets one automation, ``airnub <dept>: failed-or-crashed``:
any flow run tagged with the department that goes Failed or Crashed sends a notification
through the department's notification block (:func:`conventions.alert_block_name`). Its
``configs/automations.yaml`` may add rules::

    rules:
      - rule: late               # a flow run of the department goes Late
      - rule: running-longer     # a flow run stays Running longer than this
        minutes: 30
        stage: ingestion         # optional: only this stage's flow runs

The semantics are those of ``airnub variables sync``: every department's file is validated
(and its notification block found) before anything is written; only changes are written;
automations written here carry the ``airnub-managed`` tag and their department's tag, so
``--prune`` deletes only managed automations of the chosen departments whose rule is gone;
an automation someone made by hand under a managed name is refused, never overwritten;
a write failing part-way undoes the writes already made. Automations without the managed
tag (the lost-run automation among them) are never touched.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

from airnub_core import config, conventions, owners
from airnub_core.conventions import MANAGED_TAG
from airnub_core.variables import read_all
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from airnub_platform.block_sync import notification_blocks

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.schemas.automations import Automation, AutomationCore

AUTOMATIONS_FILE = ("configs", "automations.yaml")
FAILURES_RULE = "failed-or-crashed"
MAX_MINUTES = 7 * 24 * 60  # a week: Prefect's proactive triggers wait in memory that long
FLOW_RUN = "prefect.flow-run"
ENDINGS = ("Completed", "Failed", "Crashed", "Cancelled", "Cancelling", "Paused", "Suspended")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LateRule(_Rule):
    """A flow run of the department goes Late (its scheduled start passed, nobody took it)."""

    rule: Literal["late"]

    @property
    def name(self) -> str:
        return "late"


class RunningLongerRule(_Rule):
    """A flow run of the department (of one stage, if given) stays Running too long."""

    rule: Literal["running-longer"]
    minutes: int = Field(ge=1, le=MAX_MINUTES)
    stage: Annotated[str, AfterValidator(conventions.check_stage)] | None = None

    @property
    def name(self) -> str:
        return f"running-longer-{self.stage or 'any-stage'}-{self.minutes}m"


Rule = Annotated[LateRule | RunningLongerRule, Field(discriminator="rule")]


class RulesFile(_Rule):
    rules: list[Rule] = Field(default_factory=list, max_length=50)


@dataclass(frozen=True)
class Wanted:
    """One automation a department should have, before its notification block is known."""

    name: str
    department: str
    rule: LateRule | RunningLongerRule | None  # None: the conventional failure rule
    source: str  # the file the rule comes from, or "convention"


def rules_path(department: str) -> Path:
    return config.package_dir(department).joinpath(*AUTOMATIONS_FILE)


def declared_rules(department: str) -> tuple[str, list[LateRule | RunningLongerRule]]:
    """(where, rules) from a department's ``configs/automations.yaml``; none if absent."""
    path = rules_path(department)
    return str(path), rules_in(path)


def rules_in(path: Path) -> list[LateRule | RunningLongerRule]:
    """The rules of one ``automations.yaml`` (none if there is no file); raises ConfigError
    in one line naming the file and the field."""
    if not path.exists() and not path.is_symlink():
        return []
    data = config.read_yaml(path)
    try:
        rules = RulesFile.model_validate(data).rules
    except ValidationError as error:
        raise config.ConfigError(config.describe_errors(str(path), error)) from None
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if rule.name in seen:
            raise config.ConfigError(f"{path}: rules.{index}: {rule.name!r} is declared twice")
        seen.add(rule.name)
    return rules


def _origin(wanted: Wanted) -> str:
    if wanted.rule is None:
        return wanted.source  # "convention"
    return "/".join((wanted.department, *AUTOMATIONS_FILE))


def desired(departments: Iterable[str]) -> dict[str, Wanted]:
    """Automation name -> what it is for, validating every department's rules and owners
    first; raises ConfigError listing every problem, one line each."""
    wanted: dict[str, Wanted] = {}
    problems: list[str] = []
    for department in departments:
        try:
            owners.declared(department)  # the message names them: refuse invalid ones now
            where, rules = declared_rules(department)
        except (config.ConfigError, conventions.ConventionError) as error:
            problems.append(str(error))
            continue
        name = conventions.automation_name(department, FAILURES_RULE)
        wanted[name] = Wanted(name, department, None, "convention")
        for rule in rules:
            name = conventions.automation_name(department, rule.name)
            wanted[name] = Wanted(name, department, rule, where)
    if problems:
        raise config.ConfigError("\n".join(problems))
    return wanted


class SyncRefused(RuntimeError):
    """The server holds something that makes the sync unsafe; nothing was written."""


class UnmanagedAutomation(SyncRefused):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"Prefect automation {name!r} already exists and is not managed by airnub (it"
            f" lacks the {MANAGED_TAG!r} tag); delete or rename it, or add the tag to hand it"
            " over, then sync again; nothing written"
        )


class MissingAlertBlock(SyncRefused):
    def __init__(self, department: str, found: int = 0) -> None:
        block = conventions.alert_block_name(department)
        if found:
            why = f"{found} notification blocks are named {block!r}; keep one"
        else:
            why = (
                f"no notification block named {block!r}: set"
                f" ${conventions.alert_webhook_env(department)} to a webhook URL and run"
                " `airnub blocks sync`, or create a Slack, email or other notification"
                " block of that name in Prefect"
            )
        super().__init__(f"{department}: {why}; nothing written")


def alert_block_id(client: SyncPrefectClient, department: str) -> UUID:
    """The id of the department's notification block, whatever its type."""
    found = notification_blocks(client, conventions.alert_block_name(department))
    if len(found) != 1:
        raise MissingAlertBlock(department, len(found))
    return found[0][0]


def _literal(text: str) -> str:
    """``text`` as a Jinja string expression, so braces in a display name stay text."""
    return "{{ " + ascii(text) + " }}"


def message(department: str, what: str) -> tuple[str, str]:
    """(subject, body) of a department's notification: Jinja templates Prefect renders with
    the flow run and flow that set the automation off."""
    run, flow, state = "{{ flow_run.name }}", "{{ flow.name }}", "{{ flow_run.state.name }}"
    found = owners.declared(department)
    team = " ".join(found.owners) if found else "none declared"
    channel = found.shown_alerts if found else "none declared"
    named = _literal(f"{conventions.display_name(department)} ({department})")
    subject = f"[airnub] {named}: flow run {run} of {flow} is {state}"
    body = "\n".join((
        f"Flow run {run} ({{{{ flow_run.id }}}}) of flow {flow} {_literal(what)}.",
        f"Department: {named}",
        f"State: {state}: {{{{ flow_run.state.message }}}}",
        f"Owners: {_literal(team)}",
        f"Alert channel: {_literal(channel)}",
    ))  # fmt: skip
    return subject, body


def automation(wanted: Wanted, block_id: UUID) -> AutomationCore:
    """The Prefect automation for one wanted rule, notifying through ``block_id``."""
    from prefect.events.actions import ActionTypesOrUnknown, SendNotification
    from prefect.events.schemas.automations import (
        AutomationCore,
        EventTrigger,
        Posture,
        ResourceSpecificationDict,
    )
    from prefect.events.schemas.events import ResourceSpecification

    department, rule = wanted.department, wanted.rule
    tags = [department]
    if rule is None:
        what = "has failed or crashed"
        expect = {f"{FLOW_RUN}.Failed", f"{FLOW_RUN}.Crashed"}
        after, posture, within = set(), Posture.Reactive, timedelta(0)
    elif isinstance(rule, LateRule):
        what = "is Late: its scheduled start passed and no worker started it"
        after, expect, posture, within = set(), {f"{FLOW_RUN}.Late"}, Posture.Reactive, timedelta(0)
    else:
        unit = "minute" if rule.minutes == 1 else "minutes"
        what = f"has been Running for more than {rule.minutes} {unit}"
        after, posture = {f"{FLOW_RUN}.Running"}, Posture.Proactive
        expect = {f"{FLOW_RUN}.{ending}" for ending in ENDINGS}
        within = timedelta(minutes=rule.minutes)
        tags += [rule.stage] if rule.stage else []
    subject, body = message(department, what)
    notify = SendNotification(block_document_id=block_id, subject=subject, body=body)
    actions: list[ActionTypesOrUnknown] = [notify]
    related: list[ResourceSpecification | ResourceSpecificationDict] = [
        ResourceSpecification(
            {"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
        )
        for tag in tags
    ]
    return AutomationCore(
        name=wanted.name,
        # the rule's file as the package holds it: the same from every checkout's path
        description=f"airnub alert for {department} ({_origin(wanted)}): a flow run {what}.",
        enabled=True,
        tags=[MANAGED_TAG, department],
        trigger=EventTrigger(
            after=after,
            expect=expect,
            match=ResourceSpecification({"prefect.resource.id": f"{FLOW_RUN}.*"}),
            match_related=related,
            for_each={"prefect.resource.id"},  # each flow run on its own
            posture=posture,
            threshold=1,
            within=within,
        ),
        actions=actions,
        actions_on_trigger=[],
        actions_on_resolve=[],
    )


@dataclass
class Change:
    action: str  # create, update, unchanged, delete, or stale (deleted only with --prune)
    name: str
    department: str
    source: str = ""
    wanted: AutomationCore | None = None
    previous: Automation | None = None


def all_automations(client: SyncPrefectClient) -> list[Automation]:
    """Every automation on the server, page by page in a stable order, at the server's own
    page size (it refuses a larger one). A server that ignores the offset and repeats a
    page ends the read instead of looping (see :func:`variables.read_all`)."""
    from prefect.client.schemas.sorting import AutomationSort

    return read_all(client.read_automations, sort=AutomationSort.NAME_ASC)


def managed(automation: Automation) -> bool:
    return MANAGED_TAG in automation.tags


def _department_of(automation: Automation, departments: Sequence[str]) -> str | None:
    """The chosen department a managed automation belongs to, by its tag and its name."""
    for department in departments:
        prefix = conventions.automation_name(department, "")
        if department in automation.tags and automation.name.startswith(prefix):
            return department
    return None


CORE_FIELDS = {"name", "description", "enabled", "tags", "trigger", "actions",
               "actions_on_trigger", "actions_on_resolve"}  # fmt: skip


def core_of(automation: Automation) -> AutomationCore:
    """What a read automation was written as: its fields without the server's id."""
    from prefect.events.schemas.automations import AutomationCore

    return AutomationCore.model_validate(automation.model_dump(include=CORE_FIELDS))


SET_FIELDS = ("after", "expect", "for_each")  # an EventTrigger's sets of names


def comparable(automation: AutomationCore) -> dict[str, Any]:
    """An automation as the diff compares it (see :func:`canonical`)."""
    return canonical(automation.model_dump(mode="json", include=CORE_FIELDS))


def canonical(data: dict[str, Any]) -> dict[str, Any]:
    """An automation's JSON without its trigger's id (a fresh uuid for every trigger made)
    and with its tags and the trigger's sets in order: a set's JSON order varies with the
    process's string hashes, so the same automation read back may list them otherwise."""
    trigger = {k: v for k, v in data["trigger"].items() if k != "id"}
    for name in SET_FIELDS:
        if isinstance(trigger.get(name), list):
            trigger[name] = sorted(trigger[name])
    return {**data, "tags": sorted(data["tags"]), "trigger": trigger}


def plan(
    current: list[Automation],
    wanted: dict[str, tuple[Wanted, AutomationCore]],
    departments: Sequence[str],
    prune: bool,
) -> list[Change]:
    """The changes from ``current`` (every automation on the server) to ``wanted``;
    raises UnmanagedAutomation if a hand-made automation holds a wanted name."""
    by_name: dict[str, Automation] = {}
    for existing in sorted(current, key=lambda a: str(a.id)):
        if existing.name in wanted and not managed(existing):
            raise UnmanagedAutomation(existing.name)
        if managed(existing):
            by_name.setdefault(existing.name, existing)
    changes = []
    for name, (item, core) in sorted(wanted.items()):
        existing = by_name.get(name)
        if existing is None:
            action = "create"
        elif comparable(core_of(existing)) != comparable(core):
            action = "update"
        else:
            action = "unchanged"
        changes.append(Change(action, name, item.department, item.source, core, existing))
    for existing in sorted(current, key=lambda a: (a.name, str(a.id))):
        department = _department_of(existing, departments) if managed(existing) else None
        kept = existing.name in wanted and by_name[existing.name] is existing
        if department is None or kept:  # a duplicate of a kept name is stale too
            continue
        action = "delete" if prune else "stale"
        changes.append(Change(action, existing.name, department, previous=existing))
    return changes


def wanted_automations(
    client: SyncPrefectClient, wanted: dict[str, Wanted]
) -> dict[str, tuple[Wanted, AutomationCore]]:
    """Each wanted rule as an automation, its department's notification block found."""
    blocks: dict[str, UUID] = {}
    built = {}
    for name, item in wanted.items():
        if item.department not in blocks:
            blocks[item.department] = alert_block_id(client, item.department)
        built[name] = (item, automation(item, blocks[item.department]))
    return built


def retire(
    client: SyncPrefectClient, department: str, *, dry_run: bool = False
) -> list[tuple[str, str]]:
    """A removed department's managed automations leave with it: ("delete automation",
    name) each. Never reads its files (its package is usually gone)."""
    doomed = [
        automation
        for automation in all_automations(client)
        if managed(automation) and _department_of(automation, [department])
    ]
    for automation in doomed:
        if not dry_run:
            client.delete_automation(automation.id)
    return [("delete automation", automation.name) for automation in doomed]


def changes(
    client: SyncPrefectClient,
    departments: Sequence[str],
    *,
    prune: bool = True,
    current: list[Automation] | None = None,
) -> list[Change]:
    """Read-only: what ``airnub automations sync`` would change for ``departments``
    (``current``: every automation on the server, when read already).
    Raises ConfigError for invalid rules, SyncRefused for what the sync would refuse."""
    return sync(client, departments, dry_run=True, prune=prune, current=current)


def sync(
    client: SyncPrefectClient,
    departments: Sequence[str],
    *,
    dry_run: bool = False,
    prune: bool = False,
    wanted: dict[str, Wanted] | None = None,
    current: list[Automation] | None = None,
) -> list[Change]:
    """Diff the departments' rules (``wanted``, from :func:`desired`) against the API
    (``current``: its automations, when read already); write unless ``dry_run``."""
    wanted = desired(departments) if wanted is None else wanted
    current = all_automations(client) if current is None else current
    found = plan(current, wanted_automations(client, wanted), departments, prune)
    if not dry_run:
        apply(client, found)
    return found


def apply(client: SyncPrefectClient, changes: list[Change]) -> None:
    """Write the changes; on a failure, undo the ones already written, then re-raise."""
    done: list[tuple[Change, UUID]] = []
    try:
        for change in changes:
            if change.action == "create" and change.wanted is not None:
                done.append((change, create(client, change.wanted)))
            elif change.action == "update" and change.wanted and change.previous:
                client.update_automation(change.previous.id, change.wanted)
                done.append((change, change.previous.id))
            elif change.action == "delete" and change.previous is not None:
                client.delete_automation(change.previous.id)
                done.append((change, change.previous.id))
    except BaseException:
        with stop_signals_wait():
            undo(client, done)
        raise


class _Created(BaseModel):
    id: UUID


def create(client: SyncPrefectClient, automation: AutomationCore) -> UUID:
    """Prefect's ``create_automation`` with its answer read as the id it must hold: any
    other answer is a ValidationError (one line from the CLI), not a KeyError traceback."""
    response = client.request("POST", "/automations/", json=automation.model_dump(mode="json"))
    response.raise_for_status()
    return _Created.model_validate_json(response.content).id


def undo(client: SyncPrefectClient, done: list[tuple[Change, UUID]]) -> None:
    """Put back what :func:`apply` wrote, newest first."""
    for change, made in reversed(done):
        if change.action == "create":
            client.delete_automation(made)
        elif change.previous is not None and change.action == "update":
            client.update_automation(made, core_of(change.previous))
        elif change.previous is not None:
            create(client, core_of(change.previous))


class Stopped(BaseException):
    """SIGTERM (a cancelled CI job, a stopped container) ending a sync: a BaseException,
    like Ctrl-C's KeyboardInterrupt, so no ``except Exception`` on the way swallows it
    and :func:`apply` undoes its writes."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.code = 128 + signum


def _stop(signum: int, _frame: object) -> None:
    raise Stopped(signum)


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM raises :class:`Stopped` instead
    of ending the process on the spot, half-written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def stop_signals_wait() -> Iterator[None]:
    """While the block runs (in the main thread), Ctrl-C and SIGTERM are ignored: a second
    one must not cut short the undo of the first, which would leave the half-written state
    the undo is there to prevent. Each request of the undo has its own deadline."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in stops}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
