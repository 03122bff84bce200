"""Flow decorators and stage orchestration by convention.

``@category_flow`` and ``@stage_flow`` name and tag a flow from its module path.
A stage finds its categories in the inventory (:mod:`airnub_core.inventory`): every
sub-package holding exactly one ``*_flow_<dept>.py`` module is a category, so adding a
category never means editing a list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from prefect import Flow, State, get_run_logger, tags
from prefect.exceptions import MissingContextError

from airnub_core import inventory, storage
from airnub_core.config import PREFETCHED, Settings, resolve_settings
from airnub_core.conventions import ConventionError, Identity, identify, unknown
from airnub_core.secrets_scan import install_log_redaction, redact_data
from airnub_core.variables import department_values

S = TypeVar("S", bound=Settings)

# Every process that runs a flow imports this module first: from here on, no log line
# (console or the API's database) shows the credentials in a URL.
install_log_redaction()


class ConventionFlow(Flow):
    """A flow whose runs carry the department, stage and category tags."""

    airnub_identity: Identity

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with tags(*self.airnub_identity.tags):
            return super().__call__(*args, **kwargs)

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """The parameters as the API stores them, with credentials in URLs redacted."""
        return redact_data(super().serialize_parameters(parameters))


def _convention_flow(fn: Callable[..., Any], **options: Any) -> ConventionFlow:
    identity = identify(fn.__module__)
    made = ConventionFlow(fn, name=identity.flow_name, description=fn.__doc__, **options)
    made.airnub_identity = identity
    return made


def category_flow(fn: Callable[..., Any]) -> ConventionFlow:
    """Decorate a category flow. It must accept ``overrides: dict | None = None``."""
    return _convention_flow(fn)


def stage_flow(fn: Callable[..., Any]) -> ConventionFlow:
    """Decorate a stage orchestrator (``<stage>_flow_<dept>.py``)."""
    return _convention_flow(fn)


def subflow(fn: Callable[..., Any]) -> ConventionFlow:
    """Decorate a helper flow in a category's ``subflows/`` folder."""
    return _convention_flow(fn)


def settings_for(model: type[S], module_name: str, overrides: Mapping | None = None) -> S:
    """Load a flow's or task's settings and log where they came from."""
    settings, origin = resolve_settings(model, module_name, overrides)
    try:
        logger: Any = get_run_logger()
    except MissingContextError:  # a task's .fn called directly, e.g. in a unit test
        logger = logging.getLogger(module_name)
    logger.info("settings from %s", origin)
    return settings


def data_dir(
    module_name: str, *, stage: str | None = None, category: str | None = None
) -> storage.DataPath:
    """Output folder of this module's category, or of another one in the same department."""
    here = identify(module_name)
    if stage is None:
        return storage.output_dir(*here.parts)
    return storage.output_dir(here.department, stage, *([category] if category else []))


def discover_categories(department: str, stage: str) -> dict[str, Flow[..., Any]]:
    """Category name -> flow, for every category of a department's stage (the inventory's)."""
    found = inventory.department(department).stage(stage).categories
    return {category.name: category.flow() for category in found}


class StageFailed(RuntimeError):
    """Raised by a stage whose categories did not all complete; names each failed one."""

    def __init__(self, stage: str, failed: dict[str, str], results: dict[str, Any]) -> None:
        self.failed = failed
        self.results = results
        detail = "; ".join(f"{name}: {message}" for name, message in failed.items())
        super().__init__(
            f"stage {stage}: {len(failed)} of {len(failed) + len(results)} categories failed"
            f" ({', '.join(failed)}) - {detail}"
        )


@dataclass
class StageReport:
    stage: str
    states: dict[str, State] = field(default_factory=dict)

    @property
    def results(self) -> dict[str, Any]:
        return {n: s.result() for n, s in self.states.items() if s.is_completed()}

    @property
    def failed(self) -> dict[str, str]:
        return {
            n: s.message or s.type.value for n, s in self.states.items() if not s.is_completed()
        }

    def result(self) -> dict[str, Any]:
        """The completed categories' results, or :class:`StageFailed` if any failed."""
        if self.failed:
            raise StageFailed(self.stage, self.failed, self.results)
        return self.results


def run_categories(
    stage_module: str,
    categories: list[str] | None = None,
    overrides: Mapping[str, Mapping] | None = None,
) -> StageReport:
    """Run a stage's categories concurrently as subflows and collect every outcome.

    Subflows run in threads, each in a copy of the caller's context so Prefect
    records them as children of the stage run. One failing category never stops
    the others.
    """
    identity = identify(stage_module)
    assert identity.stage is not None
    found = discover_categories(identity.department, identity.stage)
    chosen = categories or list(found)
    for name in [*chosen, *(overrides or {})]:
        if name not in found:
            raise ConventionError(unknown(f"{identity.stage} category", name, found))
    overrides = overrides or {}
    report = StageReport(identity.stage)
    if not chosen:
        return report
    token = PREFETCHED.set(department_values(identity.department))
    try:
        report.states = _run_concurrently({n: found[n] for n in chosen}, overrides)
    finally:
        PREFETCHED.reset(token)
    logger = get_run_logger()
    for name, state in report.states.items():
        logger.info("category %s: %s", name, state.type.value)
    return report


def _run_concurrently(
    flows: dict[str, Flow[..., Any]], overrides: Mapping[str, Mapping]
) -> dict[str, State]:
    """Each flow in a thread, in a copy of this context so Prefect records it as a subflow."""
    with ThreadPoolExecutor(max_workers=len(flows), thread_name_prefix="category") as pool:
        futures = {
            name: pool.submit(
                copy_context().run,
                flow,
                overrides=dict(overrides.get(name) or {}),
                return_state=True,
            )
            for name, flow in flows.items()
        }
        # return_state=True makes each result a State; Prefect's overloads cannot see that
        # through a Flow[..., Any] (its "..." takes return_state as a flow parameter).
        return {name: cast(State, future.result()) for name, future in futures.items()}
