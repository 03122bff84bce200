"""Scheduled file downloads: listed files -> hashed raw files plus a manifest."""

from collections import Counter
from typing import Any

from airnub_core.config import FetchSettings, Source
from airnub_core.contracts import produces
from airnub_core.downloads import MANIFEST
from airnub_core.flows import category_flow, settings_for
from airnub_core.tasks import download_files_task


class ScheduledFilesSettings(FetchSettings):
    files: list[Source]


# The manifest is written last: its presence says the download finished.
DOWNLOADED = produces(__name__, f"files/{MANIFEST}")


@category_flow
def download_scheduled_files(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(ScheduledFilesSettings, __name__, overrides)
    folder = DOWNLOADED.path().parent
    manifest = download_files_task(settings.files, folder, **settings.reader_options())
    outputs = [str(folder / entry["file"]) for entry in manifest]
    return {
        "outputs": [*outputs, str(folder / MANIFEST)],
        **Counter(entry["status"] for entry in manifest),
    }
