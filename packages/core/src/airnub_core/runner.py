"""Run a department's stages in order on the configured API or the embedded default."""

from __future__ import annotations

import contextlib
import importlib
import os
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from airnub_core import local_api
from airnub_core.client_speedups import local_run_settings, preload_engine
from airnub_core.conventions import STAGES, display_name, flow_suffix, unknown


@dataclass
class StageOutcome:
    stage: str
    flow_name: str
    completed: bool
    message: str
    results: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def stage_flow_for(department: str, stage: str) -> Any:
    from airnub_core.flows import ConventionFlow

    module_name = f"{department}.{stage}{flow_suffix(department)}"
    module = importlib.import_module(module_name)
    flows = [v for v in vars(module).values() if isinstance(v, ConventionFlow)]
    if len(flows) != 1:
        raise LookupError(f"{module_name}: expected exactly one stage flow, found {len(flows)}")
    return flows[0]


def plan(department: str, stage: str | None, category: str | None) -> dict[str, list[str] | None]:
    """Stages to run, each with its category filter; raises ValueError naming valid choices."""
    from airnub_core.flows import discover_categories

    display_name(department)  # raises for an unknown department
    if stage is not None and stage not in STAGES:
        raise ValueError(unknown("stage", stage, STAGES))
    stages = [stage] if stage else list(STAGES)
    if category is None:
        return dict.fromkeys(stages)
    having = [s for s in stages if category in discover_categories(department, s)]
    if not having:
        valid = sorted({c for s in stages for c in discover_categories(department, s)})
        raise ValueError(unknown(f"category of {department}", category, valid))
    return {s: [category] for s in having}


@contextlib.contextmanager
def prefect_api(local: local_api.LocalAPI | None) -> Iterator[str]:
    """Settings for a run driven from this process: the chosen API, and the
    client speed-ups of :mod:`airnub_core.client_speedups`."""
    from prefect.settings import PREFECT_API_URL
    from prefect.settings import temporary_settings as settings

    updates = local_run_settings()
    if local is not None:
        preload_engine()
        local.wait_healthy()
        updates[PREFECT_API_URL] = local.url
    elif not _profile_api_url() and (dev_url := _dev_api_url()):
        updates[PREFECT_API_URL] = dev_url
    try:
        with settings(updates=updates):
            yield PREFECT_API_URL.value()
    finally:
        local_api.drain_client_workers()


def _profile_api_url() -> str | None:
    """PREFECT_API_URL from the environment or the active profile, without importing prefect."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    path = local_api.prefect_home() / "profiles.toml"
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    return profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")


def _dev_api_url() -> str | None:
    """The API of a running, ready ``airnub dev``: the local platform, when it is up."""
    from airnub_core.dev import running

    platform = running()
    return platform.api_url if platform is not None and platform.ready else None


def start_local_api() -> local_api.LocalAPI | None:
    """Start the embedded API early, unless an API is configured.

    Starting it before prefect and the flows are imported lets the server boot
    on the second core meanwhile; ``run_department`` stops it again if prefect's
    full settings turn out to name an API after all.
    """
    return None if _profile_api_url() or _dev_api_url() else local_api.start()


def run_department(
    department: str,
    stages: dict[str, list[str] | None],
    local: local_api.LocalAPI | None,
    *,
    keep_going: bool = False,
    on_stage: Callable[[StageOutcome], None] = lambda outcome: None,
    on_api: Callable[[str], None] = lambda url: None,
) -> list[StageOutcome]:
    """Run ``stages`` in order; stop after a failed stage unless ``keep_going``."""
    from prefect.settings import PREFECT_API_URL

    if local is not None and PREFECT_API_URL.value():
        local.stop()
        local = None
    flows = {stage: stage_flow_for(department, stage) for stage in stages}
    outcomes: list[StageOutcome] = []
    with prefect_api(local) as url:
        on_api(url)
        for stage, categories in stages.items():
            outcome = _run_stage(stage, flows[stage], categories)
            outcomes.append(outcome)
            on_stage(outcome)
            if not outcome.completed and not keep_going:
                break
    return outcomes


def _run_stage(stage: str, flow: Any, categories: list[str] | None) -> StageOutcome:
    from airnub_core.flows import StageFailed

    state = flow(categories=categories, return_state=True)
    outcome = StageOutcome(stage, flow.name, state.is_completed(), state.message or "")
    if state.is_completed():
        outcome.results = state.result()
        return outcome
    error = state.result(raise_on_failure=False)
    if isinstance(error, StageFailed):
        outcome.results, outcome.failed = error.results, error.failed
    outcome.message = str(error) if isinstance(error, BaseException) else outcome.message
    return outcome
