"""``airnub variables sync``: the YAML under each department's ``configs/variables/``
becomes one Prefect Variable per file.

Every file is validated against its settings model first, with its environment
overlay merged in; if any file is invalid, nothing is written. Only changes are
written. Variables written here carry the ``airnub-managed`` tag and their
department's tag, so ``--prune`` deletes only managed Variables whose file is gone.
A Variable someone made by hand under a managed name is never overwritten: the sync
refuses before writing anything. If a write fails part-way, the writes already made
are undone.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airnub_core import config, inventory
from airnub_core.conventions import MANAGED_TAG, Identity
from airnub_core.inventory import ORPHAN
from airnub_core.variables import names_filter, read_variables, tags_filter

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import Variable

MAX_VALUE_CHARS = 5000  # Prefect's limit on a Variable's value, as JSON


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    identity: Identity
    module: str  # the flow or task module whose settings model validates the file


def config_files(department: str) -> list[ConfigFile]:
    """Every base config file of a department (overlays are merged in, not listed)."""
    found = []
    for path, node in inventory.department(department).config_files():
        if node is None:
            raise config.ConfigError(f"{path}: {ORPHAN}")
        found.append(ConfigFile(path, node.identity, node.module))
    return found


def desired_values(departments: Iterable[str], env: str) -> dict[str, tuple[ConfigFile, Any]]:
    """Variable name -> (file, value), validating every file; raises listing every problem."""
    wanted: dict[str, tuple[ConfigFile, Any]] = {}
    problems: list[str] = []
    for department in departments:
        try:
            files = config_files(department)
        except config.ConfigError as error:
            problems.append(str(error))
            continue
        for item in files:
            try:
                origin, data = config.load_yaml_config(item.path, env)
                model = config.settings_model(importlib.import_module(item.module))
                config.validate(model, data, origin, department)
                if len(json.dumps(data)) > MAX_VALUE_CHARS:
                    raise config.ConfigError(
                        f"{origin}: more than {MAX_VALUE_CHARS} characters as JSON,"
                        " Prefect's limit for a Variable"
                    )
            except (config.ConfigError, ImportError) as error:
                problems.append(str(error))
                continue
            wanted[item.identity.variable_name()] = (item, data)
    if problems:
        raise config.ConfigError("\n".join(problems))
    return wanted


class UnmanagedVariable(RuntimeError):
    """A Variable under a name airnub manages, made without the managed tag."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Prefect Variable {name!r} already exists and is not managed by airnub (it lacks"
            f" the {MANAGED_TAG!r} tag); delete it (`prefect variable unset {name}`) or add"
            " the tag to hand it over, then sync again; nothing written"
        )


@dataclass
class Change:
    action: str  # create, update, unchanged, delete, or stale (deleted only with --prune)
    name: str
    value: Any = None
    tags: list[str] = field(default_factory=list)
    previous: Any = None
    previous_tags: list[str] = field(default_factory=list)
    source: str = ""


def managed_variables(client: SyncPrefectClient, *departments: str) -> dict[str, Variable]:
    """Every Variable carrying the managed tag (and each of ``departments``' tags)."""
    return read_variables(client, tags_filter(MANAGED_TAG, *departments))


def refuse_unmanaged(client: SyncPrefectClient, names: Iterable[str]) -> None:
    """Raise :class:`UnmanagedVariable` if any of ``names`` is held by a hand-made Variable."""
    names = sorted(names)
    if not names:
        return
    for name, variable in sorted(read_variables(client, names_filter(any_=names)).items()):
        if MANAGED_TAG not in variable.tags:
            raise UnmanagedVariable(name)


def plan(
    current: dict[str, Variable],
    wanted: dict[str, tuple[ConfigFile, Any]],
    departments: Sequence[str],
    prune: bool,
) -> list[Change]:
    changes = []
    for name, (item, value) in sorted(wanted.items()):
        tags = [MANAGED_TAG, item.identity.department]
        source = str(item.path)
        existing = current.get(name)
        if existing is None:
            changes.append(Change("create", name, value, tags, source=source))
        elif existing.value != value or sorted(existing.tags) != sorted(tags):
            changes.append(
                Change("update", name, value, tags, existing.value, existing.tags, source)
            )
        else:
            changes.append(Change("unchanged", name, value, tags, source=source))
    for name, existing in sorted(current.items()):
        if name in wanted or not set(departments) & set(existing.tags):
            continue
        action = "delete" if prune else "stale"
        changes.append(Change(action, name, previous=existing.value, previous_tags=existing.tags))
    return changes


def apply(client: SyncPrefectClient, changes: list[Change]) -> None:
    """Write the changes; on a failure, undo the ones already written, then re-raise."""
    from prefect.client.schemas.actions import VariableCreate, VariableUpdate
    from prefect.exceptions import ObjectAlreadyExists

    done: list[Change] = []
    try:
        for change in changes:
            if change.action == "create":
                try:
                    client.create_variable(VariableCreate(name=change.name, value=change.value,
                                                          tags=change.tags))  # fmt: skip
                except ObjectAlreadyExists:  # made by hand since the plan was read
                    raise UnmanagedVariable(change.name) from None
            elif change.action == "update":
                client.update_variable(VariableUpdate(name=change.name, value=change.value,
                                                      tags=change.tags))  # fmt: skip
            elif change.action == "delete":
                client.delete_variable_by_name(change.name)
            else:
                continue
            done.append(change)
    except BaseException:
        for change in reversed(done):
            if change.action == "create":
                client.delete_variable_by_name(change.name)
            elif change.action == "update":
                client.update_variable(VariableUpdate(name=change.name, value=change.previous,
                                                      tags=change.previous_tags))  # fmt: skip
            else:
                client.create_variable(VariableCreate(name=change.name, value=change.previous,
                                                      tags=change.previous_tags))  # fmt: skip
        raise


def sync(
    client: SyncPrefectClient,
    wanted: dict[str, tuple[ConfigFile, Any]],
    departments: Sequence[str],
    *,
    dry_run: bool = False,
    prune: bool = False,
) -> list[Change]:
    """Diff ``wanted`` (from :func:`desired_values`) against the API; write unless ``dry_run``."""
    current = managed_variables(client)
    refuse_unmanaged(client, set(wanted) - set(current))
    changes = plan(current, wanted, departments, prune)
    if not dry_run:
        apply(client, changes)
    return changes
