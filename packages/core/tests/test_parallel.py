"""Mapping a task over inputs on the configured task runner."""

import sys

import pytest
from airnub_core.config import ConfigError
from airnub_core.parallel import ParallelSettings, map_task, task_runner
from prefect import flow, task


@task
def square(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x * x


@flow
def squares(values: list[int]) -> list[int]:
    return map_task(square, [{"x": v} for v in values], ParallelSettings(max_workers=3))


@pytest.mark.usefixtures("prefect_api")
def test_results_come_back_in_order_and_failures_fail_the_flow():
    assert squares([3, 1, 2]) == [9, 1, 4]
    state = squares([1, -5], return_state=True)
    assert state.is_failed() and "negative: -5" in (state.message or "")


def test_dask_without_prefect_dask_is_a_config_error(monkeypatch):
    # as if not installed, even where another test imported it already
    monkeypatch.setitem(sys.modules, "prefect_dask", None)
    monkeypatch.setitem(sys.modules, "prefect_dask.task_runners", None)
    with pytest.raises(ConfigError, match="task_runner: dask needs the prefect-dask package"):
        task_runner(ParallelSettings(task_runner="dask"))
