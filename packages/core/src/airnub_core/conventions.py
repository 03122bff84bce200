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
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

STAGES: tuple[str, ...] = ("ingestion", "processing", "analysis")
DEPARTMENT_PREFIX = "dept_"
ENTRY_POINT_GROUP = "airnub.departments"
# Folder names with a fixed meaning inside a stage or category.
RESERVED_NAMES = frozenset({"tasks", "subflows", "configs", "sample_data", *STAGES})
MAX_ID_LENGTH = 40
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


def check_category(value: str) -> str:
    check_identifier(value, "category")
    if value in RESERVED_NAMES:
        raise ConventionError(
            f"category {value!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})"
        )
    return value


def check_stage(value: str) -> str:
    if value not in STAGES:
        raise ConventionError(f"unknown stage {value!r}; valid stages: {', '.join(STAGES)}")
    return value


def flow_suffix(department: str) -> str:
    """Module names of a department's flows end with this, e.g. ``_flow_dept_project_alpha``."""
    return f"_flow_{department}"


def humanize(identifier: str) -> str:
    """``ingest_public_api_data`` -> ``Ingest Public API Data``."""
    return " ".join(w.upper() if w in ACRONYMS else w.capitalize() for w in identifier.split("_"))


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


def unknown(what: str, value: str, valid: object) -> str:
    choices = ", ".join(valid) or "none"
    return f"unknown {what} {value!r}; valid: {choices}"


@dataclass(frozen=True)
class Identity:
    """Where a flow or task sits in the tree, derived from its module path."""

    department: str
    stage: str | None = None
    category: str | None = None
    action: str | None = None  # the category flow's verb phrase, e.g. "ingest_public_api_data"

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
        return [p for p in parts if p]

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(p for p in (self.department, self.stage, self.category) if p)

    def variable_name(self, *extra: str) -> str:
        """Prefect Variable name for this node's config file (``[a-z0-9_-]`` only).

        Ids never contain ``-``, so joining with it cannot collide.
        """
        return "-".join((*self.parts, *extra))

    def artifact_key(self, suffix: str) -> str:
        """Artifact keys allow lowercase letters, digits and dashes only."""
        return "-".join((*self.parts, suffix)).replace("_", "-")


def identify(module_name: str) -> Identity:
    """Derive an :class:`Identity` from a module path inside a department package.

    ``dept_x.ingestion_flow_dept_x``             -> department, stage
    ``dept_x.ingestion.cat.act_cat_flow_dept_x`` -> department, stage, category, action
    ``dept_x.ingestion.tasks.foo``               -> department, stage
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
    if parts[2] == "tasks":
        return Identity(department, stage)
    category = parts[2]
    action = leaf.removesuffix(suffix) if leaf.endswith(suffix) and len(parts) == 4 else None
    return Identity(department, stage, category, action)
