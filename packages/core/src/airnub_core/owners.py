"""Who owns a department, and where its alerts go: declared once, in its package metadata.

Beside the display name, a department's ``pyproject.toml`` holds two entry points named
by its id, so they reach ``entry_points.txt`` of the installed package and a worker
image (which has no pyproject.toml) reads them as it reads the display name::

    [project.entry-points."airnub.owners"]
    dept_project_alpha = "@airnub/project-alpha @alice"
    [project.entry-points."airnub.alerts"]
    dept_project_alpha = "#project-alpha-alerts"

Owners are GitHub users (``@name``) or teams (``@org/team``), separated by spaces; the
alert channel is a ``#channel`` or an http(s) URL. ``.github/CODEOWNERS`` is generated
from them, and each owner becomes an ``owner:<handle>`` tag (:func:`conventions.owner_tags`).
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, TypeAdapter, ValidationError

from airnub_core.conventions import ConventionError, installed_entry_points

OWNERS_GROUP = "airnub.owners"
ALERTS_GROUP = "airnub.alerts"
MAX_OWNERS = 20
MAX_CHANNEL_LENGTH = 500

# GitHub's rules: a user or organization is 1-39 letters, digits and single inner
# hyphens; a team's slug is letters, digits, "_" and "-".
_USER = r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}"
_HANDLE_RE = re.compile(rf"@{_USER}(?:/[A-Za-z0-9_][A-Za-z0-9_-]{{0,99}})?")
# A Slack-style channel: lowercase letters, digits, "-" and "_", at most 80 characters.
_CHANNEL_RE = re.compile(r"#[a-z0-9][a-z0-9_-]{0,79}")


def _shown(value: str, limit: int = 60) -> str:
    """A value in a message: quoted, one line, never long."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}..."


def check_handle(value: str) -> str:
    if not _HANDLE_RE.fullmatch(value):
        raise ValueError(
            f"{_shown(value)} is not a GitHub user (@name) or team (@org/team): letters,"
            " digits and single hyphens after the @, a team's slug after one /"
        )
    return value


def check_channel(value: str) -> str:
    """``#channel`` or an http(s) URL; the URL is never shown (it may hold a token)."""
    if value.startswith("#"):
        if not _CHANNEL_RE.fullmatch(value):
            raise ValueError(
                f"{_shown(value)} is not a #channel: lowercase letters, digits, - and _,"
                " at most 80 characters"
            )
        return value
    if len(value) > MAX_CHANNEL_LENGTH or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("not a #channel or an http(s) URL (no spaces or control characters)")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # raises ValueError for a port out of range
    except ValueError:
        raise ValueError("not a #channel or a valid http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not a #channel or an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL must not hold a user name or password (user:token@)")
    return value


def _distinct(handles: tuple[str, ...]) -> tuple[str, ...]:
    if not handles:
        raise ValueError("empty: name at least one owner, e.g. @acme/team")
    if len(handles) > MAX_OWNERS:
        raise ValueError(f"more than {MAX_OWNERS} owners")
    seen: set[str] = set()
    for handle in handles:
        if handle.lower() in seen:  # GitHub names are case-insensitive
            raise ValueError(f"{_shown(handle)} is named twice")
        seen.add(handle.lower())
    return handles


Handle = Annotated[str, AfterValidator(check_handle)]
Channel = Annotated[str, AfterValidator(check_channel)]
Owners = Annotated[tuple[Handle, ...], AfterValidator(_distinct)]


_OWNERS: TypeAdapter[tuple[str, ...]] = TypeAdapter(Owners)


class Ownership(BaseModel):
    """A department's owners and alert channel, validated."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    owners: Owners
    alerts: Channel

    @property
    def shown_alerts(self) -> str:
        """The channel as a listing shows it: a URL's path and query may hold a token."""
        if self.alerts.startswith("#"):
            return self.alerts
        parts = urlsplit(self.alerts)
        return f"{parts.scheme}://{parts.netloc}/..."

    @property
    def metadata(self) -> dict[str, str]:
        """Entry point group -> value, as the pyproject.toml writes them."""
        return {OWNERS_GROUP: " ".join(self.owners), ALERTS_GROUP: self.alerts}


def where(department: str) -> str:
    """The file a department's ownership is written in."""
    return f"packages/{department}/pyproject.toml"


def field_name(group: str, department: str) -> str:
    return f'[project.entry-points."{group}"] {department}'


def parse(department: str, owners: object, alerts: object, file: str | None = None) -> Ownership:
    """Validate what a department declares; raise ConventionError in one line naming the
    file and the field. ``owners`` is the space-separated string of the metadata."""
    file = file or where(department)
    for group, value in ((OWNERS_GROUP, owners), (ALERTS_GROUP, alerts)):
        if value is None:
            raise ConventionError(f"{file}: {field_name(group, department)}: missing")
        if not isinstance(value, str):
            raise ConventionError(f"{file}: {field_name(group, department)}: must be a string")
    assert isinstance(owners, str) and isinstance(alerts, str)
    if owners != " ".join(owners.split()):  # a line break would split entry_points.txt
        field = field_name(OWNERS_GROUP, department)
        raise ConventionError(f"{file}: {field}: write the handles on one line, one space apart")
    try:
        return Ownership(owners=tuple(owners.split()), alerts=alerts)
    except ValidationError as error:
        group = OWNERS_GROUP if error.errors()[0]["loc"][0] == "owners" else ALERTS_GROUP
        raise ConventionError(f"{file}: {field_name(group, department)}: {_why(error)}") from None


def check_owners(handles: list[str] | tuple[str, ...], field: str) -> tuple[str, ...]:
    """A list of owners on its own (the platform's, a generator's ``--owner``s); raises
    ConventionError in one line starting with ``field``."""
    try:
        return _OWNERS.validate_python(tuple(handles))
    except ValidationError as error:
        raise ConventionError(f"{field}: {_why(error)}") from None


def _why(error: ValidationError) -> str:
    """The first problem pydantic found, as the validators above word it."""
    return str(error.errors()[0]["msg"]).removeprefix("Value error, ")


def declared(department: str) -> Ownership | None:
    """What the installed package of ``department`` declares, or None when it declares
    neither owners nor an alert channel; raises ConventionError when it is invalid."""
    installed = installed_entry_points(OWNERS_GROUP, ALERTS_GROUP)  # read once changed
    found = {
        group: [ep.value for ep in entry_points if ep.name == department]
        for group, entry_points in installed.items()
    }
    if not any(found.values()):
        return None
    for group, values in found.items():
        if len(values) > 1:
            raise ConventionError(
                f"{where(department)}: {field_name(group, department)}: declared"
                f" {len(values)} times by installed packages"
            )
    first = {group: (values[0] if values else None) for group, values in found.items()}
    return parse(department, first[OWNERS_GROUP], first[ALERTS_GROUP])
