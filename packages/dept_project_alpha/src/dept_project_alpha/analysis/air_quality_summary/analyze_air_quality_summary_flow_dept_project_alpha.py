"""Air quality summary: per-station statistics as a report file and Prefect artifacts."""

from statistics import fmean
from typing import Any

from airnub_core.config import Settings
from airnub_core.contracts import consumes, produces
from airnub_core.conventions import identify
from airnub_core.flows import category_flow, settings_for
from airnub_core.reports import markdown_table
from airnub_core.storage import read_csv
from airnub_core.tasks import publish_markdown_task, publish_table_task, write_text_task
from prefect import task


class AirQualitySummarySettings(Settings):
    pm25_limit: float = 15.0  # WHO 2021 24-hour guideline, micrograms per cubic metre


@task
def summarize_stations(rows: list[dict[str, str]], pm25_limit: float) -> list[dict[str, Any]]:
    if not rows:
        raise ValueError("no processed readings to summarise")
    by_station: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_station.setdefault(row["station"], []).append(row)
    summary = []
    for station, readings in sorted(by_station.items()):
        pm25 = [float(r["pm25"]) for r in readings]
        summary.append({
            "station": station,
            "name": readings[0]["station_name"],
            "readings": len(readings),
            "mean_pm25": round(fmean(pm25), 1),
            "max_pm25": max(pm25),
            "mean_no2": round(fmean(float(r["no2"]) for r in readings), 1),
            "days_over_limit": sum(v > pm25_limit for v in pm25),
        })  # fmt: skip
    return summary


def to_markdown(summary: list[dict[str, Any]], pm25_limit: float) -> str:
    ranked = sorted(summary, key=lambda s: (-s["days_over_limit"], s["station"]))
    lines = [
        "# Air quality summary",
        "",
        f"PM2.5 limit: {pm25_limit} µg/m³. Stations over it on any day are listed first.",
        "",
        *markdown_table(ranked),
    ]
    return "\n".join(lines) + "\n"


READINGS = consumes(__name__, "processing", "station_readings", "readings.csv")
REPORT = produces(__name__, "report.md")


@category_flow
def analyze_air_quality_summary(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(AirQualitySummarySettings, __name__, overrides)
    summary = summarize_stations(read_csv(READINGS.path()), settings.pm25_limit)
    markdown = to_markdown(summary, settings.pm25_limit)
    report = write_text_task(REPORT.path(), markdown)
    identity = identify(__name__)
    publish_markdown_task(identity.artifact_key("report"), markdown, "Air quality summary")
    publish_table_task(identity.artifact_key("stations"), summary, "Per-station statistics")
    return {"outputs": [str(report)], "stations": len(summary)}
