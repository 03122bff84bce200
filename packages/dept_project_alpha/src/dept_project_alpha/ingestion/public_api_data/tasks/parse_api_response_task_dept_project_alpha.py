"""Turn raw API pages into a flat list of records."""

from typing import Any

from prefect import task


@task
def parse_api_response(pages: list[Any], records_key: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for number, page in enumerate(pages, start=1):
        items = page.get(records_key) if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise ValueError(f"page {number}: expected a list under {records_key!r}")
        bad = [i for i, item in enumerate(items) if not isinstance(item, dict)]
        if bad:
            raise ValueError(f"page {number}: items {bad} under {records_key!r} are not objects")
        records.extend(items)
    return records
