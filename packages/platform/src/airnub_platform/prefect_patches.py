"""Every place airnub replaces or borrows a Prefect internal, each behind a guard.

A :class:`Patch` replaces a module attribute inside Prefect; a :class:`Borrowed` name is a
private Prefect function called as it is. Each records the dotted target, the Prefect
versions it was written for and why. Before use, each checks that the installed
``prefect.__version__`` is in that range and that the target still exists with the shape
it expects. If not, it raises :class:`PrefectPatchError` naming itself and its target,
so a Prefect upgrade that moves a target fails loudly here instead of silently changing
behaviour. An optional speed-up logs one warning naming itself and is skipped instead.

``packages/platform/tests/test_prefect_patches.py`` checks every registered entry against
the installed Prefect: run it first when widening the ``prefect`` pin.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

log = logging.getLogger(__name__)
MARKER = "__airnub_patch__"  # set on every replacement, so applying twice is a no-op
_MISSING = object()
_warned: set[str] = set()


class PrefectPatchError(RuntimeError):
    """A Prefect internal that a patch or a borrowed name relies on has moved or changed."""


def prefect_version() -> str:
    import prefect

    return prefect.__version__


@dataclass(frozen=True)
class _Internal:
    name: str
    target: str  # dotted: modules, then attributes
    versions: str  # a PEP 440 specifier set, e.g. ">=3.9,<3.10"
    why: str
    shape: str  # what the target must be, said in the error when it is not
    fits: Callable[[Any], bool] = field(repr=False)
    upstream: str | None = None

    def _error(self, problem: str) -> PrefectPatchError:
        return PrefectPatchError(
            f"Prefect patch {self.name!r} ({self.target}): {problem}; it was written for "
            f"Prefect {self.versions}. Review airnub_platform/prefect_patches.py"
        )

    def _checked(self) -> tuple[Any, str, Any]:
        """``(owner, attribute, current value)`` of the target, once every guard passed."""
        installed = prefect_version()
        if not _in_range(installed, self.versions):
            raise self._error(f"Prefect {installed} is installed")
        path, _, attribute = self.target.rpartition(".")
        try:
            owner = _resolve(path)
            current = _MISSING if owner is _MISSING else _attribute(owner, attribute)
        except ImportError as error:  # a target module whose own imports fail
            raise self._error(f"cannot be imported in Prefect {installed} ({error})") from None
        if current is _MISSING:
            raise self._error(f"not found in Prefect {installed}")
        if not (_applied(current, self.name) or self.fits(current)):
            raise self._error(f"is not {self.shape} in Prefect {installed}")
        return owner, attribute, current


@dataclass(frozen=True)
class Patch(_Internal):
    """Replaces the target with ``replace(original)``."""

    replace: Callable[[Any], Any] = field(default=lambda original: original, repr=False)
    optional: bool = False  # a speed-up: warn once and skip instead of failing

    def apply(self) -> bool:
        """Patch the target once in this process; False when an optional patch was skipped."""
        try:
            owner, attribute, current = self._checked()
        except PrefectPatchError as error:
            if not self.optional:
                raise
            _warn_once(self.name, f"{error}. Skipped: it is an optional speed-up.")
            return False
        if not _applied(current, self.name):
            replacement = self.replace(current)
            setattr(replacement, MARKER, self.name)
            setattr(owner, attribute, replacement)
        return True


@dataclass(frozen=True)
class Borrowed(_Internal):
    """A Prefect internal called as it is, because Prefect has no public equivalent."""

    def get(self) -> Any:
        return self._checked()[2]


def _applied(value: Any, name: str) -> bool:
    return getattr(value, MARKER, None) == name


def _warn_once(name: str, message: str) -> None:
    if name not in _warned:
        _warned.add(name)
        log.warning("%s", message)


def _in_range(installed: str, versions: str) -> bool:
    try:
        return SpecifierSet(versions).contains(Version(installed), prereleases=True)
    except InvalidVersion:
        return False


def _attribute(owner: Any, name: str) -> Any:
    """``owner.name``, importing it when it is a submodule not yet loaded."""
    value = getattr(owner, name, _MISSING)
    if value is _MISSING and isinstance(owner, ModuleType):
        try:
            value = importlib.import_module(f"{owner.__name__}.{name}")
        except ModuleNotFoundError as missing:
            if missing.name != f"{owner.__name__}.{name}":
                raise  # the submodule exists but one of its own imports is missing
    return value


def _resolve(dotted: str) -> Any:
    first, *rest = dotted.split(".")
    value: Any = importlib.import_module(first)
    for name in rest:
        value = _attribute(value, name)
        if value is _MISSING:
            break
    return value


def _parameters(target: Any) -> list[inspect.Parameter] | None:
    """The target's parameters, or None when it has no signature to inspect."""
    try:
        return list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return None


def _takes_url_and_options(factory: Any) -> bool:
    parameters = _parameters(factory)
    if parameters is None:
        return False
    kinds = {parameter.kind for parameter in parameters}
    return inspect.Parameter.VAR_KEYWORD in kinds and bool(
        kinds & {inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD}
    )


# --- The server's SQLite engine on one connection ------------------------------------


def sqlite_engine_options(url: str) -> dict[str, object]:
    """Engine options that give a SQLite URL one connection; none for other databases.

    Prefect passes its pool-size settings only to Postgres, so a file database gets
    SQLAlchemy's default pool of connections that contend for the write lock. A
    deferred transaction that reads, then writes after another connection committed,
    fails at once with ``database is locked`` (the busy timeout does not apply). With
    one connection, concurrent API calls wait their turn in the pool instead.
    """
    if not str(url).startswith("sqlite"):
        return {}
    import sqlalchemy as sa

    return {
        "poolclass": sa.pool.AsyncAdaptedQueuePool,
        "pool_size": 1,
        "max_overflow": 0,
        "pool_recycle": -1,
        "pool_timeout": 300,  # a burst of requests queues for the connection; never fail fast
    }


def _single_connection_factory(create: Callable[..., Any]) -> Callable[..., Any]:
    def create_async_engine(url: Any, **kwargs: Any) -> Any:
        return create(url, **{**kwargs, **sqlite_engine_options(url)})

    create_async_engine.__wrapped__ = create  # type: ignore[attr-defined]
    return create_async_engine


SINGLE_CONNECTION_SQLITE = Patch(
    name="single-connection-sqlite",
    target="prefect.server.database.configurations.create_async_engine",
    versions=">=3.9,<3.10",
    why="Concurrent runs against a SQLite file fail with 'database is locked' on SQLAlchemy's "
    "default pool; one connection makes writers queue (bench/README.md). Prefect does the "
    "same for ':memory:' only.",
    shape="an engine factory taking a URL and keyword options",
    fits=_takes_url_and_options,
    replace=_single_connection_factory,
)


# --- One verified SSL context shared by Prefect's clients ----------------------------


@cache
def _verified_context(cafile: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)


def _create_default_context(*args: Any, **kwargs: Any) -> ssl.SSLContext:
    # Prefect's verified path calls create_default_context(cafile=...) and leaves it as is;
    # anything else (the insecure path mutates its context) gets a fresh one.
    if not args and set(kwargs) == {"cafile"} and kwargs["cafile"]:
        return _verified_context(kwargs["cafile"])
    return ssl.create_default_context(*args, **kwargs)


class _SSLWithSharedContext:
    """Stands in for the ``ssl`` module inside ``prefect.client.orchestration`` only."""

    create_default_context = staticmethod(_create_default_context)

    def __getattr__(self, name: str) -> Any:
        return getattr(ssl, name)


def _is_ssl_module(value: Any) -> bool:
    return value is ssl


SHARED_SSL_CONTEXT = Patch(
    name="shared-ssl-context",
    target="prefect.client.orchestration.ssl",
    versions=">=3.9,<3.10",
    why="Every Prefect client parses the whole CA bundle into a new SSLContext (about 20 ms "
    "of CPU holding the GIL); one verified context per CA file is shared instead.",
    shape="the ssl module",
    fits=_is_ssl_module,
    upstream="https://github.com/PrefectHQ/prefect/issues/19106",
    optional=True,
    replace=lambda _ssl: _SSLWithSharedContext(),
)


# --- Borrowed private functions -------------------------------------------------------

SCHEDULE_FROM_CONFIG = Borrowed(
    name="schedule-from-config",
    target="prefect.cli.deploy._schedules._schedule_config_to_deployment_schedule",
    versions=">=3.9,<3.10",
    why="Prefect's own reading of a prefect.yaml schedule, so `airnub deploy` and "
    "`prefect deploy` agree on it; Prefect has no public function for it.",
    shape="a function of one schedule mapping",
    fits=callable,
)


def _takes_deployment_and_flow(method: Any) -> bool:
    parameters = _parameters(method)
    return parameters is not None and len(parameters) == 2


DEFAULTS_FROM_FLOW = Borrowed(
    name="defaults-from-flow",
    target="prefect.deployments.runner.RunnerDeployment._set_defaults_from_flow",
    versions=">=3.9,<3.10",
    why="Gives a deployment its flow's parameter schema, version and description as "
    "RunnerDeployment.from_flow does; from_flow itself would also replace the entrypoint "
    "and storage that `airnub deploy` sets from prefect.yaml.",
    shape="a method taking the deployment and its flow",
    fits=_takes_deployment_and_flow,
)


INFERRED_VERSION = Borrowed(
    name="inferred-version",
    target="prefect._internal.versioning.get_inferred_version_info",
    versions=">=3.9,<3.10",
    why="The version `prefect deploy` gives a deployment (the CI's or git's commit and "
    "branch), inferred once per `airnub deploy` rather than by five git processes for each "
    "deployment written; Prefect has no public function for it.",
    shape="a coroutine function",
    fits=inspect.iscoroutinefunction,
)


def _takes_timeout(drain: Any) -> bool:
    parameters = _parameters(drain)
    return parameters is not None and any(p.name == "timeout" for p in parameters)


DRAIN_LOG_WORKER = Borrowed(
    name="drain-log-worker",
    target="prefect.logging.handlers.APILogWorker.drain_all",
    versions=">=3.9,<3.10",
    why="Sends queued logs before the local API stops; defined in prefect._internal, and "
    "the public APIHandler.flush caps its wait at 5 s.",
    shape="a drain taking a timeout",
    fits=_takes_timeout,
)

DRAIN_EVENTS_WORKER = Borrowed(
    name="drain-events-worker",
    target="prefect.events.worker.EventsWorker.drain_all",
    versions=">=3.9,<3.10",
    why="Sends queued events (task-run states) before the local API stops; Prefect has "
    "no public flush for events.",
    shape="a drain taking a timeout",
    fits=_takes_timeout,
)


def client_drains() -> list[Callable[..., Any]]:
    """Prefect's drains of queued logs and events, each called with ``timeout=``."""
    return [DRAIN_LOG_WORKER.get(), DRAIN_EVENTS_WORKER.get()]


PATCHES: tuple[Patch, ...] = (SINGLE_CONNECTION_SQLITE, SHARED_SSL_CONTEXT)
BORROWED: tuple[Borrowed, ...] = (
    SCHEDULE_FROM_CONFIG,
    DEFAULTS_FROM_FLOW,
    INFERRED_VERSION,
    DRAIN_LOG_WORKER,
    DRAIN_EVENTS_WORKER,
)
