"""Download Meter Readings: reads the configured sources into this category's data folder.

Each source is a URL (http, https or file) or a path relative to the department
package; unchanged sources are skipped on re-runs, as manifest.json records.
"""

from typing import Any

from airnub_core.config import FetchSettings, Source
from airnub_core.contracts import produces
from airnub_core.downloads import MANIFEST
from airnub_core.flows import category_flow, settings_for
from airnub_core.tasks import download_files_task


class MeterReadingsSettings(FetchSettings):
    sources: list[Source]


# The manifest is written last: its presence says the download finished.
DOWNLOADED = produces(__name__, MANIFEST)


@category_flow
def download_meter_readings(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(MeterReadingsSettings, __name__, overrides)
    folder = DOWNLOADED.path().parent
    manifest = download_files_task(settings.sources, folder, **settings.reader_options())
    outputs = [str(folder / entry["file"]) for entry in manifest]
    return {"outputs": [*outputs, str(folder / MANIFEST)], "files": len(outputs)}
