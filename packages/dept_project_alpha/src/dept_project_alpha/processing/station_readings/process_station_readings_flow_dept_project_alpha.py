"""Station readings: raw API records -> a clean readings table checked against a schema.

Each reading is joined with its station's name and city from the downloaded
station list. Rows failing the schema go to rejected.json with their reasons.
"""

import json
from datetime import datetime
from typing import Any

from airnub_core.config import Settings
from airnub_core.contracts import consumes, produces
from airnub_core.flows import category_flow, settings_for
from airnub_core.storage import read_csv
from airnub_core.tabular import check_rows
from airnub_core.tasks import write_csv_task, write_json_task
from prefect import task
from pydantic import BaseModel, Field


class Reading(BaseModel):
    id: str
    station: str = Field(pattern=r"^ST-\d{3}$")
    measured_at: datetime
    pm25: float = Field(ge=0, le=1000)
    no2: float = Field(ge=0, le=2000)


COLUMNS = ["id", "station", "station_name", "city", "measured_at", "pm25", "no2"]


class StationReadingsSettings(Settings):
    max_rejected_fraction: float = Field(default=0.2, ge=0, le=1)
    stations_file: str = "stations.csv"


@task
def clean_readings(
    records: list[dict], stations: list[dict], max_rejected_fraction: float
) -> tuple[list[dict], list[dict]]:
    checked = check_rows(records, Reading, max_rejected_fraction)
    by_id = {s["station"]: s for s in stations}
    rows = [
        {**r, "station_name": by_id.get(r["station"], {}).get("name", ""),
         "city": by_id.get(r["station"], {}).get("city", "")}
        for r in checked.accepted
    ]  # fmt: skip
    return rows, checked.rejected


RECORDS = consumes(__name__, "ingestion", "public_api_data", "records.json")
FILES = consumes(__name__, "ingestion", "scheduled_file_downloads", "files/manifest.json")
READINGS = produces(__name__, "readings.csv")
REJECTED = produces(__name__, "rejected.json")


@category_flow
def process_station_readings(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(StationReadingsSettings, __name__, overrides)
    records = json.loads(RECORDS.path().read_text(encoding="utf-8"))
    stations = read_csv(FILES.path().parent / settings.stations_file)
    rows, rejected = clean_readings(records, stations, settings.max_rejected_fraction)
    table = write_csv_task(READINGS.path(), rows, COLUMNS)
    rejects = write_json_task(REJECTED.path(), rejected)
    return {"outputs": [str(table), str(rejects)], "rows": len(rows), "rejected": len(rejected)}
