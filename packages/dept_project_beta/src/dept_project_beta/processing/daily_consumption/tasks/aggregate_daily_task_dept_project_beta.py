"""Hourly meter readings -> one row per building and day, with that day's temperature."""

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from airnub_core.tabular import check_rows
from prefect import task
from pydantic import BaseModel, Field


class MeterReading(BaseModel):
    building: str = Field(pattern=r"^B\d{2}$")
    timestamp: datetime
    kwh: float = Field(ge=0, le=100_000)


class Observation(BaseModel):
    date: date
    mean_temp_c: float = Field(ge=-60, le=60)


COLUMNS = ["building", "name", "date", "kwh", "readings", "complete", "mean_temp_c", "kwh_per_m2"]


@task
def aggregate_daily(
    readings: list[dict[str, Any]],
    buildings: list[dict[str, str]],
    weather: list[dict[str, Any]],
    hours_per_day: int,
    max_rejected_fraction: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Daily totals and the rejected readings; a day with missing hours is marked incomplete."""
    checked = check_rows(readings, MeterReading, max_rejected_fraction)
    register = {b["building"]: b for b in buildings}
    unknown = sorted({r["building"] for r in checked.accepted} - set(register))
    if unknown:
        raise ValueError(f"readings for buildings missing from the register: {', '.join(unknown)}")
    temperature = {
        o.date.isoformat(): o.mean_temp_c for o in map(Observation.model_validate, weather)
    }
    totals: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in checked.accepted:
        day = datetime.fromisoformat(row["timestamp"]).date().isoformat()
        totals[row["building"], day].append(row["kwh"])
    daily = []
    for (building, day), values in sorted(totals.items()):
        kwh = round(sum(values), 2)
        area = float(register[building]["floor_area_m2"])
        daily.append({
            "building": building, "name": register[building]["name"], "date": day,
            "kwh": kwh, "readings": len(values), "complete": len(values) == hours_per_day,
            "mean_temp_c": temperature.get(day), "kwh_per_m2": round(kwh / area, 4),
        })  # fmt: skip
    return daily, checked.rejected
