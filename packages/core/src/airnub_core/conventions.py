"""The naming rules of the Department -> Stage -> Category tree, written once.

Everything a flow needs to know about itself (department, display name, stage,
category, flow name, tags, Variable name, output folder) is derived from its
module path and from its department package's metadata. The display name lives
in the department's ``pyproject.toml`` as the name of its ``airnub.departments``
entry point, so a rename touches exactly one line.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.metadata import EntryPoints, entry_points

STAGES: tuple[str, ...] = ("ingestion", "processing", "analysis")
# The verb a category flow's file name starts with, unless its author picks another.
STAGE_ACTIONS: dict[str, str] = {
    "ingestion": "ingest",
    "processing": "process",
    "analysis": "analyze",
}
DEPARTMENT_PREFIX = "dept_"
ENTRY_POINT_GROUP = "airnub.departments"
# Tags every deployment `airnub deploy` writes; only these are ever pruned or retired.
MANAGED_TAG = "airnub-managed"
# A department's owners are tagged ``owner:@acme/team`` on its flow runs and deployments.
OWNER_TAG_PREFIX = "owner:"
# Folder names with a fixed meaning inside a stage or category.
RESERVED_NAMES = frozenset({"tasks", "subflows", "configs", "sample_data", *STAGES})
MAX_ID_LENGTH = 40
MAX_DISPLAY_NAME_LENGTH = 60
# Prefect refuses these in flow names; "=" splits an entry point's line in two. Package
# metadata also reads a line starting with "[" as a section and one starting with "#" or
# ";" as a comment, so check_display_name refuses a name starting with those too.
DISPLAY_NAME_BANNED = frozenset("/%&<>=")
# Words shown in capitals in display names ("Ingest Public API Data").
ACRONYMS = frozenset({"api", "csv", "html", "http", "id", "json", "pdf", "sql", "url", "xml"})

_ID_RE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


class ConventionError(ValueError):
    """A name or path that does not follow the conventions."""


def check_identifier(value: str, what: str = "identifier") -> str:
    """Return ``value`` if it is a valid snake_case id, else raise with the reason."""
    if not value:
        raise ConventionError(f"{what} is empty")
    if len(value) > MAX_ID_LENGTH:
        raise ConventionError(f"{what} {value!r} is longer than {MAX_ID_LENGTH} characters")
    if not _ID_RE.fullmatch(value):
        raise ConventionError(
            f"{what} {value!r} must be lowercase snake_case: a-z, 0-9 and single underscores,"
            " starting with a letter"
        )
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        raise ConventionError(f"{what} {value!r} is a Python keyword")
    return value


def check_category(value: str, what: str = "category") -> str:
    check_identifier(value, what)
    if value in RESERVED_NAMES:
        raise ConventionError(f"{what} {value!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})")
    return value


def check_department(value: str) -> str:
    """A department id: ``dept_`` followed by a valid identifier."""
    if not value.startswith(DEPARTMENT_PREFIX):
        raise ConventionError(f"department {value!r} must start with {DEPARTMENT_PREFIX!r}")
    check_identifier(value.removeprefix(DEPARTMENT_PREFIX), f"department {value!r}: the id")
    return value


def department_id(value: str) -> str:
    """``project_gamma`` or ``dept_project_gamma`` -> ``dept_project_gamma``, validated."""
    if not value.startswith(DEPARTMENT_PREFIX):
        check_identifier(value, "department id")
        value = DEPARTMENT_PREFIX + value
    return check_department(value)


def check_display_name(value: str) -> str:
    """A display name may hold quotes and braces, but nothing Prefect refuses, and only
    what reads back unchanged from the package metadata (``entry_points.txt``): that
    file is read line by line, stripped, split at the first "=", with comment lines
    ("#", and ";" for configparser readers) and "[section]" lines apart."""
    if not value.strip():
        raise ConventionError("display name is empty")
    if value != value.strip():
        raise ConventionError(f"display name {value!r} starts or ends with whitespace")
    if len(value) > MAX_DISPLAY_NAME_LENGTH:
        raise ConventionError(
            f"display name {value!r} is longer than {MAX_DISPLAY_NAME_LENGTH} characters"
        )
    # Not printable covers every line break str.splitlines knows, so a name is one line.
    banned = sorted({c for c in value if c in DISPLAY_NAME_BANNED or not c.isprintable()})
    if banned:
        shown = ", ".join(repr(c) for c in banned)
        raise ConventionError(f"display name {value!r} may not contain {shown}")
    if value[0] in "[#;":
        raise ConventionError(
            f"display name {value!r} may not have {value[0]!r} at the start: package"
            " metadata would read its line as a section or a comment"
        )
    return value


def distribution_name(department: str) -> str:
    """The package's distribution name: ``dept_project_alpha`` -> ``dept-project-alpha``."""
    return department.replace("_", "-")


def work_pool_name(department: str) -> str:
    """The department's default Prefect work pool."""
    return distribution_name(department)


# An image is named REGISTRY/<distribution name>:TAG. The registry is an OCI host, an
# optional port and an optional lowercase path; the tag follows the OCI tag grammar.
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_REGISTRY_HOST = rf"(?:localhost|{_HOST_LABEL}(?:\.{_HOST_LABEL})+)"
_REGISTRY_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PORT = r":[0-9]{1,5}"
# Docker's rule: a first part is a host if it has a dot or a port, or is localhost, so a
# one-label host (a compose or in-cluster registry) needs its port: registry:5000.
_REGISTRY_RE = re.compile(
    rf"(?:{_REGISTRY_HOST}(?:{_PORT})?|{_HOST_LABEL}{_PORT})(?:/{_REGISTRY_PATH})*"
)
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
MAX_IMAGE_NAME_LENGTH = 255  # the registry and repository part, as registries limit it


def check_registry(value: str) -> str:
    """A registry to push department images to: ``host[:port][/path]``, e.g. ``ghcr.io/acme``."""
    if not value:
        raise ConventionError("registry is empty")
    if "@" in value:  # never shown: what comes before the @ may be a token
        raise ConventionError(
            "registry must not hold a user name or password (user@ or user:token@); log in"
            " to the registry instead and give host[:port][/path]"
        )
    shown = repr(value) if value.isprintable() and len(value) <= 100 else "given"
    if "://" in value:
        raise ConventionError(f"registry {shown} must not have a scheme: write host[:port][/path]")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ConventionError(f"registry {shown} may not contain whitespace or control characters")
    if value != value.lower():
        raise ConventionError(f"registry {shown} must be lowercase")
    port = re.search(r":([0-9]+)(?:/|$)", value)
    if not _REGISTRY_RE.fullmatch(value) or (port and not 0 < int(port[1]) < 65536):
        raise ConventionError(
            f"registry {shown} must be host[:port][/path], e.g. ghcr.io/acme or"
            " registry:5000 (a host with a dot, localhost, or any host with its port; a port"
            " 1-65535; lowercase path parts of a-z, 0-9 and single separators . _ -)"
        )
    return value


def check_tag(value: str) -> str:
    """An image tag, e.g. a commit SHA: ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``."""
    if not _TAG_RE.fullmatch(value):
        shown = repr(value) if value.isprintable() and len(value) <= 140 else "given"
        raise ConventionError(
            f"tag {shown} must be 1-128 characters of A-Z, a-z, 0-9, _ . -, not starting"
            " with . or -"
        )
    return value


def image_reference(department: str, registry: str, tag: str) -> str:
    """The department's image: ``ghcr.io/acme/dept-project-alpha:3f2a...``."""
    name = f"{check_registry(registry)}/{distribution_name(check_department(department))}"
    if len(name) > MAX_IMAGE_NAME_LENGTH:
        raise ConventionError(
            f"registry {registry!r} is too long: the image name would be longer than"
            f" {MAX_IMAGE_NAME_LENGTH} characters"
        )
    return f"{name}:{check_tag(tag)}"


# A pull request's preview: its deployments are named ``<name>--pr-<N>`` and tagged
# ``preview:pr-<N>``, on the pool ``<pool>--pr-<N>``. Ids hold single underscores, so the
# names and pools they derive hold single dashes: "--" never occurs in a production name.
PREVIEW_TAG_PREFIX = "preview:"
PREVIEW_SEPARATOR = "--"
MAX_PULL_REQUEST = 999_999_999  # nine digits: far above any repository's PR count
_PREVIEW_RE = re.compile(r"pr-[1-9][0-9]{0,8}")


def check_preview(value: str) -> str:
    """A preview id: ``pr-<N>``, N a pull request number (1-999999999, no leading zero)."""
    if not _PREVIEW_RE.fullmatch(value):
        shown = repr(value) if value.isprintable() and len(value) <= 40 else "given"
        raise ConventionError(
            f"preview {shown} must be pr-<N>, N a pull request number from 1 to"
            f" {MAX_PULL_REQUEST} without a leading zero, e.g. pr-7"
        )
    return value


def preview_tag(preview: str) -> str:
    """The tag every deployment of the preview carries: ``preview:pr-7``."""
    return f"{PREVIEW_TAG_PREFIX}{check_preview(preview)}"


def preview_name(name: str, preview: str | None) -> str:
    """A deployment or work pool name as the preview ``preview`` names it (None: as is)."""
    if preview is None:
        return name
    return f"{name}{PREVIEW_SEPARATOR}{check_preview(preview)}"


def preview_tags(tags: Iterable[str]) -> set[str]:
    """The preview tags among ``tags``: empty for a production deployment."""
    return {tag for tag in tags if tag.startswith(PREVIEW_TAG_PREFIX)}


def check_stage(value: str) -> str:
    if value not in STAGES:
        raise ConventionError(f"unknown stage {value!r}; valid stages: {', '.join(STAGES)}")
    return value


def flow_suffix(department: str) -> str:
    """Module names of a department's flows end with this, e.g. ``_flow_dept_project_alpha``."""
    return f"_flow_{department}"


def task_suffix(department: str) -> str:
    """Module names of task wrappers end with this, e.g. ``_task_dept_project_alpha``."""
    return f"_task_{department}"


def subflow_suffix(department: str) -> str:
    """Module names in a category's ``subflows/`` end with this."""
    return f"_subflow_{department}"


def humanize(identifier: str) -> str:
    """``ingest_public_api_data`` -> ``Ingest Public API Data``."""
    return " ".join(w.upper() if w in ACRONYMS else w.capitalize() for w in identifier.split("_"))


def installed_entry_points(*groups: str) -> dict[str, EntryPoints]:
    """The installed packages' entry points of each of ``groups``, read again only when
    an ``entry_points.txt`` on ``sys.path`` was added, removed or rewritten: reading them
    costs about 20 ms with 50 departments installed, and every owner tag asks."""
    return _entry_points_of(_entry_point_files(), groups)


def _entry_point_files() -> tuple[tuple[str, int, int], ...]:
    """(path, mtime, size) of each ``entry_points.txt`` importlib.metadata would read."""
    import os
    import sys

    found = []
    for folder in sys.path:
        try:
            listed = [e.path for e in os.scandir(folder or ".") if e.name.endswith(_INFO)]
        except OSError:  # a zip archive or a missing folder: no metadata read here
            continue
        for info in sorted(listed):
            try:
                stat = os.stat(os.path.join(info, "entry_points.txt"))
            except OSError:
                continue
            found.append((info, stat.st_mtime_ns, stat.st_size))
    return tuple(found)


_INFO = (".dist-info", ".egg-info")


@lru_cache(maxsize=16)
def _entry_points_of(
    _files: tuple[tuple[str, int, int], ...], groups: tuple[str, ...]
) -> dict[str, EntryPoints]:
    return {group: entry_points(group=group) for group in groups}


@cache
def departments() -> dict[str, str]:
    """Installed departments: id -> display name, read from package metadata."""
    found: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.value] = ep.name
    return dict(sorted(found.items()))


def display_name(department: str) -> str:
    known = departments()
    if department not in known:
        raise ConventionError(unknown("department", department, known))
    return known[department]


def owner_tags(department: str) -> list[str]:
    """``owner:<handle>`` for each owner the department's installed metadata declares
    (:mod:`airnub_core.owners`); raises ConventionError when that metadata is invalid."""
    from airnub_core import owners  # pydantic: only when a tag is asked for

    found = owners.declared(department)
    return [f"{OWNER_TAG_PREFIX}{handle}" for handle in found.owners] if found else []


# A department's alerts: its notification block, the variable ``airnub blocks sync`` reads
# its webhook URL from, and the automations ``airnub automations sync`` names after it.
ALERT_WEBHOOK_ENV_PREFIX = "AIRNUB_ALERT_WEBHOOK_"
AUTOMATION_PREFIX = "airnub "


def alert_block_name(department: str) -> str:
    """``dept_project_alpha`` -> ``dept-project-alpha-alerts``: its notification block."""
    return f"{distribution_name(department)}-alerts"


def alert_webhook_env(department: str) -> str:
    """``dept_project_alpha`` -> ``AIRNUB_ALERT_WEBHOOK_DEPT_PROJECT_ALPHA``."""
    return ALERT_WEBHOOK_ENV_PREFIX + department.upper()


def automation_name(department: str, rule: str) -> str:
    """``airnub dept_project_alpha: failed-or-crashed``: one of its alert automations."""
    return f"{AUTOMATION_PREFIX}{department}: {rule}"


def unknown(what: str, value: str, valid: Iterable[str]) -> str:
    choices = ", ".join(valid) or "none"
    return f"unknown {what} {value!r}; valid: {choices}"


@dataclass(frozen=True)
class Identity:
    """Where a flow or task sits in the tree, derived from its module path."""

    department: str
    stage: str | None = None
    category: str | None = None
    action: str | None = None  # the category flow's verb phrase, e.g. "ingest_public_api_data"
    task: str | None = None  # a task wrapper's name, e.g. "parse_api_response"

    @property
    def display_name(self) -> str:
        return display_name(self.department)

    @property
    def flow_name(self) -> str:
        if self.stage is None:
            raise ConventionError(f"{self.department}: a flow name needs a stage")
        title = humanize(self.action) if self.action else f"{humanize(self.stage)} Flow"
        return f"{title} ({self.display_name})"

    @property
    def tags(self) -> list[str]:
        parts = [self.department, self.stage, self.category]
        return [*(p for p in parts if p), *owner_tags(self.department)]

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(p for p in (self.department, self.stage, self.category) if p)

    @property
    def config_parts(self) -> tuple[str, ...]:
        """The node a config file belongs to: department, stage, category and task."""
        return tuple(p for p in (*self.parts, self.task) if p)

    @property
    def deployment_name(self) -> str:
        """``dept-project-alpha-ingestion``: unique across departments, readable in the UI."""
        return "-".join(self.parts).replace("_", "-")

    def variable_name(self) -> str:
        """Prefect Variable name for this node's config file (``[a-z0-9_-]`` only).

        Ids never contain ``-``, so joining with it cannot collide.
        """
        return "-".join(self.config_parts)

    def artifact_key(self, suffix: str) -> str:
        """Artifact keys allow lowercase letters, digits and dashes only."""
        return "-".join((*self.parts, suffix)).replace("_", "-")


def identify(module_name: str) -> Identity:
    """Derive an :class:`Identity` from a module path inside a department package.

    ``dept_x.ingestion_flow_dept_x``                  -> department, stage
    ``dept_x.ingestion.cat.act_cat_flow_dept_x``      -> department, stage, category, action
    ``dept_x.ingestion.tasks.foo_task_dept_x``        -> department, stage, task
    ``dept_x.ingestion.cat.tasks.foo_task_dept_x``    -> department, stage, category, task
    ``dept_x.ingestion.cat.subflows.foo_subflow_dept_x`` -> ..., category, action "foo"
    """
    parts = module_name.split(".")
    department = parts[0]
    if not department.startswith(DEPARTMENT_PREFIX):
        raise ConventionError(f"module {module_name!r} is not inside a dept_<id> package")
    leaf = parts[-1]
    suffix = flow_suffix(department)
    if len(parts) == 2 and leaf.endswith(suffix):
        return Identity(department, check_stage(leaf.removesuffix(suffix)))
    if len(parts) < 3:
        return Identity(department)
    stage = check_stage(parts[1])
    task = leaf.removesuffix(task_suffix(department)) if "tasks" in parts[2:-1] else None
    if parts[2] == "tasks":
        return Identity(department, stage, task=task)
    category = parts[2]
    action = None
    if len(parts) == 4 and leaf.endswith(suffix):
        action = leaf.removesuffix(suffix)
    elif len(parts) == 5 and parts[3] == "subflows":
        action = leaf.removesuffix(subflow_suffix(department))
    return Identity(department, stage, category, action, task)
