"""Public API data: a paginated JSON API of station readings -> raw records."""

from typing import Any

from airnub_core.config import PagedJsonSettings
from airnub_core.contracts import produces
from airnub_core.flows import category_flow, settings_for
from airnub_core.tasks import fetch_json_pages_task, write_json_task

from .tasks.parse_api_response_task_dept_project_alpha import parse_api_response


class PublicApiSettings(PagedJsonSettings):
    """The readings API; its records are under "results"."""


RECORDS = produces(__name__, "records.json")


@category_flow
def ingest_public_api_data(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(PublicApiSettings, __name__, overrides)
    pages = fetch_json_pages_task(settings.url, settings.next_key, **settings.reader_options())
    records = parse_api_response(pages, settings.records_key)
    path = write_json_task(RECORDS.path(), records)
    return {"outputs": [str(path)], "pages": len(pages), "records": len(records)}
