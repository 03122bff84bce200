"""Prefect Variables as the runtime reads them: a department's values in one request,
and every page of a paged read. The sync that writes them is the platform's
(``airnub_platform.variable_sync``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import VariableFilter
    from prefect.client.schemas.objects import Variable


class Identified(Protocol):
    """What a paged read returns: Prefect's flows, deployments, Variables..."""

    @property
    def id(self) -> UUID: ...


T = TypeVar("T", bound=Identified)


def read_all(read: Callable[..., list[T]], **filters: Any) -> list[T]:
    """Every object a paged Prefect read (``read_flows``, ``read_deployments``, ...) finds.

    No page size is sent: the server applies its own (``PREFECT_SERVER_API_DEFAULT_LIMIT``,
    which an operator may set to anything), so pages are read until one brings nothing new.
    A server that ignores the offset and repeats a page therefore ends the read instead of
    looping.
    """
    found: dict[UUID, T] = {}
    while True:
        page = read(**filters, offset=len(found))
        fresh = {item.id: item for item in page if item.id not in found}
        if not fresh:
            return list(found.values())
        found.update(fresh)


def read_variables(
    client: SyncPrefectClient, variable_filter: VariableFilter
) -> dict[str, Variable]:
    """Name -> Variable of every Variable matching ``variable_filter``, page by page.

    Prefect's ``read_variables`` takes no filter or offset, so this posts to the same
    route through the client's public ``request`` (as Prefect's own client methods do).
    """
    from prefect.client.schemas.objects import Variable

    def page(offset: int) -> list[Variable]:
        body = {"variables": variable_filter.model_dump(mode="json"), "offset": offset,
                "sort": "NAME_ASC"}  # fmt: skip
        response = client.request("POST", "/variables/filter", json=body)
        response.raise_for_status()
        return Variable.model_validate_list(response.json())

    return {variable.name: variable for variable in read_all(page)}


def tags_filter(*tags: str) -> VariableFilter:
    from prefect.client.schemas.filters import VariableFilter, VariableFilterTags

    return VariableFilter(tags=VariableFilterTags(all_=list(tags)))


def names_filter(**name: Any) -> VariableFilter:
    from prefect.client.schemas.filters import VariableFilter, VariableFilterName

    return VariableFilter(name=VariableFilterName(**name))


def department_values(department: str) -> dict[str, Any]:
    """Name -> value of every Variable named for ``department``, in one request."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = read_variables(client, names_filter(like_=f"{department}-%"))
    return {name: variable.value for name, variable in found.items()}
