"""Consumption trends: daily kWh per building as a chart, a report and Prefect artifacts.

The report (report.md) embeds the chart beside it; the markdown artifact links to
the chart by URL, and a link artifact points at it directly.
"""

from typing import Any

from airnub_core.config import Settings
from airnub_core.contracts import consumes, produces
from airnub_core.conventions import identify
from airnub_core.flows import category_flow, data_dir, settings_for
from airnub_core.reports import markdown_table
from airnub_core.storage import read_csv
from airnub_core.tasks import (
    publish_link_task,
    publish_markdown_task,
    publish_table_task,
    write_text_task,
)
from pydantic import Field

from .tasks.plot_consumption_task_dept_project_beta import plot_consumption
from .tasks.summarize_buildings_task_dept_project_beta import summarize_buildings


class ConsumptionTrendsSettings(Settings):
    chart_file: str = Field(default="consumption.png", pattern=r"^[\w.-]+\.png$")


def to_markdown(summary: list[dict[str, Any]], chart: str, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"![Daily kWh per building, with the mean temperature]({chart})",
        "",
        "Incomplete days (missing meter readings) are circled in red on the chart.",
        "`kwh_per_degree` is the extra daily kWh for each degree colder.",
        "",
        *markdown_table(summary),
    ]
    return "\n".join(lines) + "\n"


DAILY = consumes(__name__, "processing", "daily_consumption", "daily.csv")
REPORT = produces(__name__, "report.md")


@category_flow
def chart_consumption_trends(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(ConsumptionTrendsSettings, __name__, overrides)
    daily = read_csv(DAILY.path())
    summary = summarize_buildings(daily)
    identity = identify(__name__)
    title = f"Daily electricity use, {identity.display_name}"
    out = data_dir(__name__)
    chart = plot_consumption(daily, out / settings.chart_file, title)
    report = write_text_task(REPORT.path(), to_markdown(summary, chart.name, title))
    publish_markdown_task(
        identity.artifact_key("report"), to_markdown(summary, chart.as_uri(), title), title
    )
    publish_link_task(identity.artifact_key("chart"), chart.as_uri(), f"{title} (PNG chart)")
    publish_table_task(identity.artifact_key("buildings"), summary, "Per-building statistics")
    return {"outputs": [str(report), str(chart)], "buildings": len(summary)}
