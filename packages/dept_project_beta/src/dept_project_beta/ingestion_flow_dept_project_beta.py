"""Ingestion stage orchestrator: runs every ingestion category concurrently."""

from typing import Any

from airnub_core.flows import run_categories, stage_flow


@stage_flow
def ingestion_flow(
    categories: list[str] | None = None, overrides: dict[str, dict] | None = None
) -> dict[str, Any]:
    return run_categories(__name__, categories, overrides).result()
