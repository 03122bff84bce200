"""Aggregate Daily Consumption: reads the configured sources into this category's data folder.

Each source is a URL (http, https or file) or a path relative to the department
package; unchanged sources are skipped on re-runs, as manifest.json records.
"""

from typing import Any

from airnub_core.config import FetchSettings, Source
from airnub_core.downloads import MANIFEST
from airnub_core.flows import category_flow, data_dir, settings_for
from airnub_core.tasks import download_files_task


class DailyConsumptionSettings(FetchSettings):
    sources: list[Source]


@category_flow
def aggregate_daily_consumption(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(DailyConsumptionSettings, __name__, overrides)
    folder = data_dir(__name__)
    manifest = download_files_task(settings.sources, folder, **settings.reader_options())
    outputs = [str(folder / entry["file"]) for entry in manifest]
    return {"outputs": [*outputs, str(folder / MANIFEST)], "files": len(outputs)}
