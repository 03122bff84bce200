"""Ingestion stage orchestrator: runs every ingestion category concurrently."""

from typing import Any

from airnub_core.flows import run_categories, stage_flow

from dept_project_alpha.ingestion.tasks.calculate_ingest_metrics_task_dept_project_alpha import (
    calculate_ingest_metrics,
)


@stage_flow
def ingestion_flow(
    categories: list[str] | None = None, overrides: dict[str, dict] | None = None
) -> dict[str, Any]:
    """Ingest every Project Alpha source, then record what landed."""
    report = run_categories(__name__, categories, overrides)
    calculate_ingest_metrics(report.results)
    return report.result()
