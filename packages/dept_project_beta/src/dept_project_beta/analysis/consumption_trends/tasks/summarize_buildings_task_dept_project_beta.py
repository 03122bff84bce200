"""Per-building statistics over the period, including how consumption follows the cold."""

from statistics import StatisticsError, fmean, linear_regression
from typing import Any

from prefect import task


@task
def summarize_buildings(daily: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One row per building; ``kwh_per_degree`` is the extra daily kWh per degree colder,
    fitted over complete days with a temperature (None when that cannot be fitted)."""
    if not daily:
        raise ValueError("no daily consumption rows to summarise")
    by_building: dict[str, list[dict[str, str]]] = {}
    for row in daily:
        by_building.setdefault(row["building"], []).append(row)
    summary = []
    for building, rows in sorted(by_building.items()):
        complete = [r for r in rows if r["complete"] == "True" and r["mean_temp_c"]]
        kwh = [float(r["kwh"]) for r in rows]
        try:
            fit = linear_regression(
                [float(r["mean_temp_c"]) for r in complete], [float(r["kwh"]) for r in complete]
            )
            per_degree = round(-fit.slope, 1)
        except StatisticsError:  # fewer than two complete days, or one temperature only
            per_degree = None
        summary.append({
            "building": building, "name": rows[0]["name"], "days": len(rows),
            "incomplete_days": len(rows) - sum(r["complete"] == "True" for r in rows),
            "total_kwh": round(sum(kwh), 1), "mean_daily_kwh": round(fmean(kwh), 1),
            "kwh_per_m2": round(sum(float(r["kwh_per_m2"]) for r in rows), 2),
            "kwh_per_degree": per_degree,
        })  # fmt: skip
    return summary
