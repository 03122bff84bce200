"""Daily consumption: hourly meter readings -> daily kWh per building, joined with weather.

Readings failing the MeterReading schema go to rejected.json with their reasons; a
day with fewer readings than ``hours_per_day`` is kept but marked incomplete. Each meter
file is aggregated as its own task, on the task runner the config names (threads by
default, Dask with ``task_runner: dask``).
"""

import json
from typing import Any

from airnub_core.contracts import consumes, produces
from airnub_core.downloads import MANIFEST
from airnub_core.flows import category_flow, settings_for
from airnub_core.parallel import ParallelSettings, map_task
from airnub_core.storage import read_csv
from airnub_core.tasks import write_csv_task, write_json_task
from pydantic import Field

from .tasks.aggregate_daily_task_dept_project_beta import COLUMNS, aggregate_daily


class DailyConsumptionSettings(ParallelSettings):
    meter_files: str = "meters_*.csv"
    buildings_file: str = "buildings.csv"
    hours_per_day: int = Field(default=24, ge=1, le=48)
    max_rejected_fraction: float = Field(default=0.05, ge=0, le=1)


METERS = consumes(__name__, "ingestion", "meter_readings", MANIFEST)
WEATHER = consumes(__name__, "ingestion", "weather_observations", "observations.json")
DAILY = produces(__name__, "daily.csv")
REJECTED = produces(__name__, "rejected.json")


@category_flow
def aggregate_daily_consumption(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(DailyConsumptionSettings, __name__, overrides)
    meters = METERS.path().parent
    files = sorted(meters.glob(settings.meter_files))
    if not files:
        raise FileNotFoundError(f"{meters}: no files match {settings.meter_files!r}")
    buildings = read_csv(meters / settings.buildings_file)
    observations = json.loads(WEATHER.path().read_text(encoding="utf-8"))
    shared = {
        "buildings": buildings,
        "weather": observations,
        "hours_per_day": settings.hours_per_day,
        "max_rejected_fraction": settings.max_rejected_fraction,
    }
    calls = [{"readings": read_csv(path), **shared} for path in files]
    parts = map_task(aggregate_daily, calls, settings)
    daily = sorted(
        (row for rows, _ in parts for row in rows), key=lambda r: (r["building"], r["date"])
    )
    rejected = [
        {**reject, "file": path.name}
        for path, (_, rejects) in zip(files, parts, strict=True)
        for reject in rejects
    ]
    table = write_csv_task(DAILY.path(), daily, COLUMNS)
    rejects = write_json_task(REJECTED.path(), rejected)
    incomplete = sum(not row["complete"] for row in daily)
    return {
        "outputs": [str(table), str(rejects)],
        "days": len(daily),
        "incomplete_days": incomplete,
        "rejected": len(rejected),
    }
