"""Weather observations: a paginated JSON API of daily weather -> raw observation records."""

from typing import Any

from airnub_core.config import PagedJsonSettings
from airnub_core.contracts import produces
from airnub_core.flows import category_flow, settings_for
from airnub_core.tasks import fetch_json_pages_task, flatten_pages_task, write_json_task


class WeatherObservationsSettings(PagedJsonSettings):
    records_key: str = "observations"


OBSERVATIONS = produces(__name__, "observations.json")


@category_flow
def ingest_weather_observations(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(WeatherObservationsSettings, __name__, overrides)
    pages = fetch_json_pages_task(settings.url, settings.next_key, **settings.reader_options())
    records = flatten_pages_task(pages, settings.records_key)
    path = write_json_task(OBSERVATIONS.path(), records)
    return {"outputs": [str(path)], "pages": len(pages), "records": len(records)}
