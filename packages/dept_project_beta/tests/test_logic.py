"""Beta's plain logic, with no Prefect API."""

import tomllib
from pathlib import Path

import pytest
from airnub_core.tabular import TooManyRejected
from dept_project_beta.analysis.consumption_trends.tasks import (
    plot_consumption_task_dept_project_beta as plot,
)
from dept_project_beta.analysis.consumption_trends.tasks import (
    summarize_buildings_task_dept_project_beta as summary,
)
from dept_project_beta.processing.daily_consumption.tasks import (
    aggregate_daily_task_dept_project_beta as aggregate,
)

BUILDINGS = [{"building": "B01", "name": "Hall", "floor_area_m2": "100"}]
WEATHER = [{"date": "2026-11-01", "mean_temp_c": 5.0}]


def readings(hours, kwh=1.5, building="B01"):
    return [
        {"building": building, "timestamp": f"2026-11-01T{h:02d}:00:00", "kwh": str(kwh)}
        for h in range(hours)
    ]


def test_a_full_day_sums_its_hours():
    daily, rejected = aggregate.aggregate_daily.fn(readings(24), BUILDINGS, WEATHER, 24, 0.05)
    assert rejected == []
    assert daily == [{
        "building": "B01", "name": "Hall", "date": "2026-11-01", "kwh": 36.0, "readings": 24,
        "complete": True, "mean_temp_c": 5.0, "kwh_per_m2": 0.36,
    }]  # fmt: skip


def test_a_short_day_is_kept_but_marked_incomplete():
    daily, _ = aggregate.aggregate_daily.fn(readings(20), BUILDINGS, WEATHER, 24, 0.05)
    assert (daily[0]["readings"], daily[0]["complete"]) == (20, False)


def test_readings_for_an_unregistered_building_are_an_error():
    with pytest.raises(ValueError, match="missing from the register: B09"):
        aggregate.aggregate_daily.fn(readings(24, building="B09"), BUILDINGS, WEATHER, 24, 0.05)


def test_too_many_bad_readings_fail():
    with pytest.raises(TooManyRejected, match="24 of 24 rows failed MeterReading"):
        aggregate.aggregate_daily.fn(readings(24, kwh=-1), BUILDINGS, WEATHER, 24, 0.05)


def day(date, kwh, temp, complete="True"):
    return {"building": "B01", "name": "Hall", "date": date, "kwh": str(kwh),
            "complete": complete, "mean_temp_c": str(temp), "kwh_per_m2": "0.1"}  # fmt: skip


def test_heating_sensitivity_is_the_extra_kwh_per_degree_colder():
    rows = [day("2026-11-01", 100, 10), day("2026-11-02", 130, 7), day("2026-11-03", 160, 4)]
    (stats,) = summary.summarize_buildings.fn(rows)
    assert stats["kwh_per_degree"] == 10.0
    assert (stats["days"], stats["total_kwh"], stats["mean_daily_kwh"]) == (3, 390.0, 130.0)


def test_sensitivity_needs_two_complete_days():
    (stats,) = summary.summarize_buildings.fn(
        [day("2026-11-01", 1, 1), day("2026-11-02", 2, 2, "False")]
    )
    assert stats["kwh_per_degree"] is None
    assert stats["incomplete_days"] == 1


def test_the_chart_is_a_png():
    rows = [day("2026-11-01", 100, 10), day("2026-11-02", 130, 7, complete="False")]
    assert plot.render_png(rows, "title").startswith(b"\x89PNG\r\n\x1a\n")


def test_matplotlib_is_a_dependency_of_beta_alone():
    lock = tomllib.loads((Path(__file__).parents[3] / "uv.lock").read_text())
    needs = {
        p["name"]: {d["name"] for d in p.get("dependencies", [])}
        for p in lock["package"]
        if p["name"].startswith("dept-")
    }
    assert "matplotlib" in needs["dept-project-beta"]
    assert [name for name, deps in needs.items() if "matplotlib" in deps] == ["dept-project-beta"]
