"""``airnub plan`` and ``airnub drift``: what the repository would change on a Prefect
server, computed read-only from the same dry-run paths ``airnub deploy``,
``airnub variables sync`` and ``airnub blocks sync`` take.

A report is a list of sections, each one short function from a :class:`Scope` to
:class:`Row` objects, so a new kind of managed object is one more function in
:data:`PLAN_SECTIONS` / :data:`DRIFT_SECTIONS`. Nothing is written: every section calls
its sync with ``dry_run=True`` or only reads.

Secret values are never read from the server for display and never shown. A Secret
block whose ``AIRNUB_SECRET_*`` variable is not set here (a pull request's job has no
secrets) is reported by presence alone: ``present`` (not compared) or ``create``.

JSON schema (``--format json``), stable within ``"schema": "airnub-plan/1"``::

    {
      "schema": "airnub-plan/1",
      "command": "plan" | "drift",
      "api": "<the Prefect API URL, without user or password>",
      "env": "<environment>",
      "affected": null | {                 # plan only
        "base": "<ref>" | null,
        "departments": ["dept_x", ...],   # ids, sorted
        "deleted": ["dept_y", ...],
        "deleted_unknown": bool,
        "reason": "<why these>"
      },
      "changes": [                         # every row, unchanged ones included
        {"section": "deployments" | "variables" | "blocks" | "automations" | "quotas"
                   | "images" | "retired",
         "department": "dept_x" | "",      # "" for a server-wide object
         "action": "<see ACTIONS>",
         "name": "<flow/deployment, Variable, block, image, pool or tag limit>",
         "detail": "<why, or ''>"}
      ],
      "counts": {"<section>": {"<action>": int}},
      "pending": bool                      # any row whose action is a change
    }

Actions: create, update, delete, create pool, update pool, delete variable, delete pool,
delete limit, delete automation and blocked (a hand-made Variable or automation holds a
managed name, or a department's notification block is missing) are changes; unchanged,
present (a Secret not compared), keep pool and build (CI builds the image) are not.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airnub_core import storage
from airnub_core.conventions import MANAGED_TAG, distribution_name
from airnub_core.variables import names_filter, read_variables

from airnub_platform import automation_sync, block_sync, deploy, quotas, variable_sync
from airnub_platform.cli._shared import printable
from airnub_platform.runner import shown_url

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from rich.console import RenderableType

    from airnub_platform.affected import Affected

SCHEMA = "airnub-plan/1"
# Rows that change nothing on the server; every other action is a change (or drift).
QUIET = frozenset({"unchanged", "present", "keep pool", "build"})


@dataclass(frozen=True)
class Row:
    section: str
    department: str  # "" for a server-wide object
    action: str
    name: str
    detail: str = ""


@dataclass
class Scope:
    """What a report covers: the departments compared, those whose objects are retired,
    and those whose images CI builds."""

    client: SyncPrefectClient
    env: str
    departments: list[str]
    target: deploy.Target = field(default_factory=deploy.Target)
    retired: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


Section = Callable[[Scope], list[Row]]


def deployment_rows(scope: Scope) -> list[Row]:
    """Each department's deployments and pools, as ``airnub deploy --prune --dry-run``,
    from one read of the server for all of them (a few requests, not several each)."""
    items = {d: deploy.planned(d, scope.env, scope.target) for d in scope.departments}
    server = deploy.Server.read(scope.client, items)
    return [
        Row("deployments", department, action, name)
        for department in scope.departments
        for action, name in deploy.deploy(
            scope.client,
            department,
            scope.env,
            target=scope.target,
            dry_run=True,
            prune=True,
            items=items[department],
            server=server,
        )
    ]


def variable_rows(scope: Scope) -> list[Row]:
    """The Variables ``airnub variables sync --prune`` would write. A hand-made Variable
    under a managed name is a ``blocked`` row here, where the sync refuses."""
    wanted = variable_sync.desired_values(scope.departments, scope.env)
    current = variable_sync.managed_variables(scope.client)  # one read for every department
    changes = variable_sync.plan(current, wanted, scope.departments, prune=True)
    created = [change.name for change in changes if change.action == "create"]
    held = read_variables(scope.client, names_filter(any_=created)) if created else {}
    rows = []
    for change in changes:
        department = wanted[change.name][0].identity.department if change.name in wanted else ""
        department = department or next(
            (tag for tag in change.previous_tags if tag in scope.departments), ""
        )
        action, detail = change.action, _variable_detail(change)
        if change.name in held and MANAGED_TAG not in held[change.name].tags:
            action, detail = "blocked", "a Variable made by hand holds this name"
        rows.append(Row("variables", department, action, change.name, detail))
    return rows


def _variable_detail(change: variable_sync.Change) -> str:
    """Which part differs; values are the configs' own, but a report stays short."""
    if change.action != "update":
        return ""
    edited = [
        part
        for part, differs in (
            ("value", change.value != change.previous),
            ("tags", sorted(change.tags) != sorted(change.previous_tags)),
        )
        if differs
    ]
    return f"{' and '.join(edited)} differ"


def block_rows(scope: Scope) -> list[Row]:
    """The Secret blocks the departments declare, and the data-root block. Values known
    here are compared (never shown); the others are reported by presence alone."""
    owners = {
        name: department
        for department in scope.departments
        for name, _origin in block_sync.declared_secrets(department)
    }
    wanted, _missing = block_sync.wanted_blocks(scope.departments, None)
    explicit_root = bool(os.environ.get(storage.DATA_ROOT_ENV))
    # Without AIRNUB_DATA_ROOT the default root is this machine's folder, not the server's.
    compared = [w for w in wanted if w.kind == "secret" or explicit_root]
    rows = [
        Row("blocks", owners.get(item.name, ""), action, item.name, item.kind)
        for action, item in block_sync.sync(compared, dry_run=True)
    ]
    known = {item.name for item in compared}
    for name, department in sorted(owners.items()):
        if name not in known:
            variable = block_sync.secret_env_var(name)
            rows.append(_by_presence(scope, department, name, ("secret",), f"${variable}"))
    if not explicit_root:
        slugs = ("local-file-system", "remote-file-system")
        rows.append(_by_presence(scope, "", storage.DATA_ROOT_BLOCK, slugs,
                                 f"${storage.DATA_ROOT_ENV}"))  # fmt: skip
    return rows


def _by_presence(
    scope: Scope, department: str, name: str, slugs: tuple[str, ...], variable: str
) -> Row:
    from prefect.exceptions import ObjectNotFound

    for slug in slugs:
        try:
            scope.client.read_block_document_by_name(name, slug, include_secrets=False)
        except ObjectNotFound:
            continue
        return Row("blocks", department, "present", name, f"{variable} not set here: not compared")
    return Row("blocks", department, "create", name, f"missing on the server; {variable} not set")


def image_rows(scope: Scope) -> list[Row]:
    """The images CI builds: one per affected department (see :mod:`affected`)."""
    return [Row("images", d, "build", distribution_name(d)) for d in scope.images]


def automation_rows(scope: Scope) -> list[Row]:
    """The alert automations ``airnub automations sync --prune`` would write. What the sync
    would refuse (a missing notification block, a hand-made automation under a managed
    name) is a ``blocked`` row of its department, found one department at a time."""
    current = automation_sync.all_automations(scope.client)  # once for every department
    try:
        found = automation_sync.changes(scope.client, scope.departments, current=current)
    except automation_sync.SyncRefused:
        return [row for d in scope.departments for row in _automation_rows(scope, d, current)]
    return [Row("automations", c.department, c.action, c.name) for c in found]


def _automation_rows(scope: Scope, department: str, current: list[Any]) -> list[Row]:
    try:
        found = automation_sync.changes(scope.client, [department], current=current)
    except automation_sync.SyncRefused as error:
        return [Row("automations", department, "blocked", department, str(error))]
    return [Row("automations", c.department, c.action, c.name) for c in found]


def quota_rows(scope: Scope) -> list[Row]:
    """The concurrency limits ``airnub deploy`` would set, change or lift."""
    return [
        Row("quotas", change.department, change.action, change.name, change.described)
        for change in quotas.changes(scope.client, scope.departments)
    ]


def retired_rows(scope: Scope) -> list[Row]:
    """What ``airnub retire`` deletes for departments gone from the repository."""
    return [
        Row("retired", department, action, what)
        for department in scope.retired
        for action, what in [
            *deploy.retire(scope.client, department, dry_run=True),
            *quotas.retire(scope.client, department, dry_run=True),
            *automation_sync.retire(scope.client, department, dry_run=True),
        ]
    ]


PLAN_SECTIONS: tuple[Section, ...] = (
    deployment_rows, variable_rows, block_rows, automation_rows, quota_rows, image_rows,
    retired_rows,
)  # fmt: skip
DRIFT_SECTIONS: tuple[Section, ...] = (
    deployment_rows, variable_rows, block_rows, automation_rows, quota_rows, retired_rows,
)  # fmt: skip


@dataclass
class Report:
    command: str  # "plan" or "drift"
    api: str
    env: str
    rows: list[Row]
    affected: Affected | None = None
    base: str | None = None

    @property
    def changes(self) -> list[Row]:
        return [row for row in self.rows if row.action not in QUIET]

    @property
    def pending(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[str, dict[str, int]]:
        found: dict[str, Counter[str]] = {}
        for row in self.rows:
            found.setdefault(row.section, Counter())[row.action] += 1
        return {section: dict(sorted(counter.items())) for section, counter in found.items()}

    def to_json(self) -> dict[str, Any]:
        affected = None
        if self.affected is not None:
            affected = {
                "base": self.base,
                "departments": departments_of(self.affected),
                "deleted": self.affected.deleted,
                "deleted_unknown": self.affected.deleted_unknown,
                "reason": self.affected.reason,
            }
        return {
            "schema": SCHEMA,
            "command": self.command,
            "api": shown_url(self.api),
            "env": self.env,
            "affected": affected,
            "changes": [asdict(row) for row in self.rows],
            "counts": self.counts(),
            "pending": self.pending,
        }


def departments_of(result: Affected) -> list[str]:
    """The affected departments' ids (``affected`` names their distributions)."""
    return sorted(entry["department"] for entry in result.matrix()["include"])


def build(
    client: SyncPrefectClient,
    command: str,
    url: str,
    scope: Scope,
    sections: tuple[Section, ...],
    affected: Affected | None = None,
    base: str | None = None,
) -> Report:
    rows = [row for section in sections for row in section(scope)]
    return Report(command, url, scope.env, rows, affected, base)


def plan_scope(
    client: SyncPrefectClient, env: str, target: deploy.Target, result: Affected
) -> Scope:
    """The affected departments, the deleted ones and the images CI would build."""
    departments = departments_of(result)
    return Scope(client, env, departments, target, retired=result.deleted, images=departments)


def drift_scope(
    client: SyncPrefectClient, env: str, target: deploy.Target, departments: list[str]
) -> Scope:
    """Every department of the repository, and every department the server still holds
    managed objects of but the repository no longer has."""
    gone = sorted(deploy.managed_departments(client) - set(departments))
    return Scope(client, env, sorted(departments), target, retired=gone)


# --- markdown, for a GitHub job summary -------------------------------------------------

SECTION_TITLES = {
    "deployments": "Deployments", "variables": "Variables", "blocks": "Blocks",
    "automations": "Automations", "quotas": "Quotas",
    "images": "Images CI builds", "retired": "Departments gone from the repository",
}  # fmt: skip
# Characters that can never start markup or HTML; every other one becomes an entity.
_PLAIN = frozenset(" -.,/()=")


def md(text: str) -> str:
    """``text`` as literal markdown: control characters as escapes, every character that
    could open markup, a tag, a mention, a link or a table cell as a numeric entity."""
    visible = printable(text)
    return "".join(
        c if c.isalnum() or c in _PLAIN or _inside_word(visible, i) else f"&#{ord(c)};"
        for i, c in enumerate(visible)
    )


def _inside_word(text: str, index: int) -> bool:
    """An underscore between two letters or digits, which emphasises nothing in GFM."""
    before, after = text[index - 1 : index], text[index + 1 : index + 2]
    return text[index] == "_" and before.isalnum() and after.isalnum()


def markdown(report: Report) -> str:
    """The report as GitHub-flavoured markdown; unchanged rows are counted, not listed."""
    lines = [
        f"## airnub {report.command}: {md(report.env)} at {md(shown_url(report.api))}",
        "",
    ]
    if report.affected is not None:
        shown = ", ".join(md(d) for d in departments_of(report.affected)) or "none"
        lines += [
            f"**Affected departments:** {shown}",
            "",
            f"Why: {md(report.affected.reason)}",
            "",
        ]
    if not report.rows:
        lines.append("Nothing to compare.")
    for section, counts in report.counts().items():
        lines += [f"### {SECTION_TITLES.get(section, md(section))}", ""]
        listed = [r for r in report.rows if r.section == section and r.action != "unchanged"]
        if listed:
            lines += ["| department | change | name | detail |", "| --- | --- | --- | --- |"]
            lines += [
                f"| {md(r.department)} | {md(r.action)} | {md(r.name)} | {md(r.detail)} |"
                for r in listed
            ]
            lines.append("")
        summary = ", ".join(f"{n} {md(action)}" for action, n in counts.items())
        lines += [f"_{summary}_", ""]
    verdict = "changes pending" if report.command == "plan" else "drift"
    lines.append(f"**{verdict if report.pending else 'no ' + verdict}**")
    return "\n".join(lines) + "\n"


# --- a terminal table ---------------------------------------------------------------------


def tables(report: Report) -> list[RenderableType]:
    """The changes as a rich table, with the affected line and the counts (names are
    the user's: plain text, never markup)."""
    from rich.table import Table
    from rich.text import Text

    shown: list[RenderableType] = []
    if report.affected is not None:
        affected = ", ".join(departments_of(report.affected)) or "none"
        shown.append(Text(f"affected: {affected} ({report.affected.reason})"))
    title = f"airnub {report.command} ({report.env}) at {shown_url(report.api)}"
    found = Table(title=Text(title), title_justify="left")
    for column in ("section", "department", "change", "name", "detail"):
        found.add_column(column, overflow="fold")
    for row in report.changes:
        cells = (row.section, row.department, row.action, row.name, row.detail)
        found.add_row(*(Text(printable(value)) for value in cells))
    counts = "; ".join(
        f"{section}: " + ", ".join(f"{n} {action}" for action, n in actions.items())
        for section, actions in report.counts().items()
    )
    return [*shown, found, Text(counts or "nothing to compare")]
