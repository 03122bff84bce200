"""Stage-level task: how many files and bytes each ingestion category produced."""

from typing import Any

from airnub_core.conventions import identify
from airnub_core.flows import data_dir
from airnub_core.storage import folder_stats, write_json_atomic
from airnub_core.tasks import publish_table_task
from prefect import task


@task
def calculate_ingest_metrics(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [
        {"category": category, **folder_stats(result["outputs"])}
        for category, result in sorted(results.items())
    ]
    write_json_atomic(data_dir(__name__) / "ingest_metrics.json", rows)
    publish_table_task(
        identify(__name__).artifact_key("ingest-metrics"), rows, "Files and bytes per category"
    )
    return rows
