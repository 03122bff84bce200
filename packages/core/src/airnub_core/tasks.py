"""Reusable Prefect tasks: thin wrappers over the plain functions in this package.

Failures raise. Transient ones (timeouts, dropped connections, HTTP 5xx) are
retried by Prefect after the reader's own quick retries are used up; permanent
ones (a missing file, a 404, malformed JSON) fail the task at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, ParamSpec, TypeVar, cast

from prefect import State, Task, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.client.schemas.objects import TaskRun

from airnub_core import downloads, links, storage
from airnub_core.sources import (
    DEFAULT_DEADLINE,
    CrossOrigin,
    Reader,
    TransientSourceError,
    fetch_json_pages,
    flatten_pages,
)


def retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State) -> bool:
    return isinstance(state.data, TransientSourceError)


def auth_headers(auth_block: str | None) -> dict[str, str]:
    """A bearer token read from a Prefect Secret block, inside the task that uses it,
    so the secret never becomes a parameter, a log line or an artifact."""
    if auth_block is None:
        return {}
    from prefect.blocks.system import Secret

    # Prefect types load() as "the block or a coroutine" (it dispatches on the caller);
    # called from this synchronous code it returns the block.
    secret = cast(Secret[str], Secret.load(auth_block))
    return {"Authorization": f"Bearer {secret.get()}"}


P = ParamSpec("P")
R = TypeVar("R")


def retrying_task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task that Prefect retries twice (after 1 s, then 5 s), on transient source errors
    only. Keyword arguments, not a ``**dict`` splat, so the task keeps its signature."""
    return task(
        name=name,
        retries=2,
        retry_delay_seconds=[1, 5],
        retry_condition_fn=retry_if_transient,
    )


@retrying_task("fetch-json-pages")
def fetch_json_pages_task(
    url: str,
    next_key: str = "next",
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.5,
    auth_block: str | None = None,
    cross_origin: CrossOrigin = "refuse",
    deadline: float = DEFAULT_DEADLINE,
) -> list[Any]:
    """Every page of a paginated JSON source."""
    return fetch_json_pages(
        url,
        next_key=next_key,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        headers=auth_headers(auth_block),
        cross_origin=cross_origin,
        deadline=deadline,
    )


@task(name="flatten-pages")
def flatten_pages_task(pages: list[Any], records_key: str) -> list[dict[str, Any]]:
    """The records under ``records_key`` of every page, as one list."""
    return flatten_pages(pages, records_key)


@retrying_task("download-files")
def download_files_task(
    urls: list[str],
    folder: storage.DataPath,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 0.5,
    auth_block: str | None = None,
    deadline: float = DEFAULT_DEADLINE,
) -> list[dict]:
    """Download listed files into ``folder``, skipping unchanged ones; returns the manifest."""
    entries = downloads.download_files(
        urls,
        folder,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        headers=auth_headers(auth_block),
        deadline=deadline,
    )
    return [asdict(entry) for entry in entries]


@retrying_task("extract-links")
def extract_links_task(
    url: str,
    same_site_only: bool = False,
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.5,
    auth_block: str | None = None,
    deadline: float = DEFAULT_DEADLINE,
) -> list[dict]:
    """The links of one HTML page, as rows of page, url and text."""
    headers = auth_headers(auth_block)
    with Reader(timeout, retries, backoff, headers, [url], deadline=deadline) as reader:
        html = reader.read(url).decode("utf-8", errors="replace")
    return [asdict(link) for link in links.extract_links(html, url, same_site_only)]


@task(name="write-json")
def write_json_task(path: storage.DataPath, data: Any) -> storage.DataPath:
    return storage.write_json_atomic(path, data)


@task(name="write-csv")
def write_csv_task(
    path: storage.DataPath, rows: list[dict[str, Any]], columns: list[str]
) -> storage.DataPath:
    return storage.write_csv_atomic(path, rows, columns)


@task(name="write-text")
def write_text_task(path: storage.DataPath, text: str) -> storage.DataPath:
    return storage.write_text_atomic(path, text)


@task(name="publish-table")
def publish_table_task(key: str, rows: list[dict[str, Any]], description: str) -> None:
    create_table_artifact(rows, key=key, description=description)


@task(name="publish-markdown")
def publish_markdown_task(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(markdown, key=key, description=description)


@task(name="publish-link")
def publish_link_task(key: str, link: str, description: str) -> None:
    create_link_artifact(link, key=key, description=description)
