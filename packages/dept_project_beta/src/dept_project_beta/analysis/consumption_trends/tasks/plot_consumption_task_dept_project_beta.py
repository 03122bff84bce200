"""A line chart of daily kWh per building, with the day's mean temperature beneath."""

import io
from datetime import date

from airnub_core.storage import DataPath, write_bytes_atomic
from prefect import task


def render_png(daily: list[dict[str, str]], title: str) -> bytes:
    """The chart as PNG bytes (matplotlib's Agg backend: no display needed)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5.5), layout="constrained")
    kwh_axes, temp_axes = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    buildings: dict[str, list[dict[str, str]]] = {}
    for row in daily:
        buildings.setdefault(row["building"], []).append(row)
    for building, rows in sorted(buildings.items()):
        days = [date.fromisoformat(r["date"]) for r in rows]
        kwh_axes.plot(days, [float(r["kwh"]) for r in rows], marker="o", markersize=3,
                      label=f"{building} {rows[0]['name']}")  # fmt: skip
        gaps = [
            (d, float(r["kwh"])) for d, r in zip(days, rows, strict=True) if r["complete"] != "True"
        ]
        if gaps:
            kwh_axes.scatter(*zip(*gaps, strict=True), s=60, facecolors="none", edgecolors="red")
    weather = {r["date"]: r["mean_temp_c"] for r in daily if r["mean_temp_c"]}
    temp_days = sorted(weather)
    temp_axes.plot([date.fromisoformat(d) for d in temp_days],
                   [float(weather[d]) for d in temp_days], color="tab:gray")  # fmt: skip
    kwh_axes.set_title(title)
    kwh_axes.set_ylabel("kWh per day")
    kwh_axes.legend(loc="upper left", fontsize="small")
    kwh_axes.grid(alpha=0.3)
    temp_axes.set_ylabel("mean °C")
    temp_axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


@task
def plot_consumption(daily: list[dict[str, str]], path: DataPath, title: str) -> DataPath:
    return write_bytes_atomic(path, render_png(daily, title))
