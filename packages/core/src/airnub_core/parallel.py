"""Task-level parallelism for heavy categories, on a Prefect task runner chosen in config.

A category whose settings extend :class:`ParallelSettings` maps a task over its inputs
with :func:`map_task`. ``task_runner: thread`` (the default) uses Prefect's thread pool;
``task_runner: dask`` uses prefect-dask, in-process unless ``dask_address`` names a
cluster. prefect-dask is a dependency of the departments that use it, not of core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import Field

from airnub_core.config import ConfigError, Settings

if TYPE_CHECKING:
    from prefect import Task
    from prefect.task_runners import TaskRunner

R = TypeVar("R")


class ParallelSettings(Settings):
    task_runner: Literal["thread", "dask"] = "thread"
    max_workers: int = Field(default=4, ge=1, le=64)
    dask_address: str | None = None  # an existing Dask scheduler, e.g. tcp://dask:8786


def task_runner(settings: ParallelSettings) -> TaskRunner[Any]:
    if settings.task_runner == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=settings.max_workers)
    try:
        from prefect_dask.task_runners import DaskTaskRunner  # the module defining it
    except ImportError:
        raise ConfigError(
            "task_runner: dask needs the prefect-dask package among this department's dependencies"
        ) from None
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    cluster = {"n_workers": 1, "threads_per_worker": settings.max_workers, "processes": False,
               "dashboard_address": None}  # fmt: skip
    return DaskTaskRunner(cluster_kwargs=cluster)


def map_task(
    task: Task[..., R], calls: Sequence[Mapping[str, Any]], settings: ParallelSettings
) -> list[R]:
    """Run ``task`` once per parameter mapping on the configured runner; results in order.

    Any call's failure raises here, so the category fails with it.
    """
    with task_runner(settings) as runner:
        futures = [runner.submit(task, parameters=dict(call)) for call in calls]
        return [future.result() for future in futures]
