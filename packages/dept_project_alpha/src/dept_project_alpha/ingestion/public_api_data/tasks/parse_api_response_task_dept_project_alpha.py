"""Turn raw API pages into a flat list of records."""

from typing import Any

from airnub_core.sources import flatten_pages
from prefect import task


@task
def parse_api_response(pages: list[Any], records_key: str) -> list[dict[str, Any]]:
    return flatten_pages(pages, records_key)
