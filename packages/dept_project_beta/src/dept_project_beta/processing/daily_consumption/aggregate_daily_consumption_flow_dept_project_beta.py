"""Daily consumption: hourly meter readings -> daily kWh per building, joined with weather.

Readings failing the MeterReading schema go to rejected.json with their reasons; a
day with fewer readings than ``hours_per_day`` is kept but marked incomplete.
"""

import json
from typing import Any

from airnub_core.config import Settings
from airnub_core.flows import category_flow, data_dir, settings_for
from airnub_core.storage import read_csv
from airnub_core.tasks import write_csv_task, write_json_task
from pydantic import Field

from .tasks.aggregate_daily_task_dept_project_beta import COLUMNS, aggregate_daily


class DailyConsumptionSettings(Settings):
    meter_files: str = "meters_*.csv"
    buildings_file: str = "buildings.csv"
    hours_per_day: int = Field(24, ge=1, le=48)
    max_rejected_fraction: float = Field(0.05, ge=0, le=1)


@category_flow
def aggregate_daily_consumption(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(DailyConsumptionSettings, __name__, overrides)
    meters = data_dir(__name__, stage="ingestion", category="meter_readings")
    weather = data_dir(__name__, stage="ingestion", category="weather_observations")
    files = sorted(meters.glob(settings.meter_files))
    if not files:
        raise FileNotFoundError(f"{meters}: no files match {settings.meter_files!r}")
    readings = [row for path in files for row in read_csv(path)]
    buildings = read_csv(meters / settings.buildings_file)
    observations = json.loads((weather / "observations.json").read_text(encoding="utf-8"))
    daily, rejected = aggregate_daily(
        readings, buildings, observations, settings.hours_per_day, settings.max_rejected_fraction
    )
    out = data_dir(__name__)
    table = write_csv_task(out / "daily.csv", daily, COLUMNS)
    rejects = write_json_task(out / "rejected.json", rejected)
    incomplete = sum(not row["complete"] for row in daily)
    return {
        "outputs": [str(table), str(rejects)],
        "days": len(daily),
        "incomplete_days": incomplete,
        "rejected": len(rejected),
    }
