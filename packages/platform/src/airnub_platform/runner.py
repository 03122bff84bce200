"""Run a department's stages in order on the configured API or the embedded default.

A command talking to the API is watched (:func:`watched`): the API must answer at the
start, and a thread probes it while the command runs. When it stops answering, Prefect's
own console output is held back (it would be a pile of retries and tracebacks), and the
command gives up with one :class:`ApiUnreachable` naming the URL: as soon as an error
surfaces and the API is still silent, and at the latest after ``AIRNUB_API_DEADLINE_SECONDS``
(default 30) without an answer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airnub_core import inventory, storage
from airnub_core.conventions import STAGES, display_name, unknown

from airnub_platform import local_api
from airnub_platform.client_speedups import local_run_settings, preload_engine

API_DEADLINE_ENV = "AIRNUB_API_DEADLINE_SECONDS"
API_DEADLINE_SECONDS = 30.0  # of silence before a command gives up on the API
PROBE_INTERVAL_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 5.0
# Prefect's defaults (60 s a request, 5 retries with backoff) hold a command on an API
# that accepts connections but never answers for over 6 minutes; these end one request in
# about 1.5, and `watched` ends the whole command after AIRNUB_API_DEADLINE_SECONDS of
# silence. A user's own PREFECT_API_REQUEST_TIMEOUT or PREFECT_CLIENT_MAX_RETRIES wins.
REQUEST_TIMEOUT_SECONDS = 30.0
CLIENT_MAX_RETRIES = 2


def shown_url(url: str) -> str:
    """``url`` as a message or report may show it: without a user, password or query,
    where a PREFECT_API_URL may carry a credential (``https://user:token@host/api``)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host, query="", fragment=""))


class ApiUnreachable(RuntimeError):
    """The Prefect API did not answer; the message names its URL (never its credentials)
    and why."""

    def __init__(self, url: str, reason: str, silent_for: float | None = None) -> None:
        self.url = url
        span = f" for {silent_for:g} s" if silent_for else ""
        super().__init__(f"the Prefect API at {shown_url(url)} did not answer{span} ({reason})")


@dataclass
class StageOutcome:
    stage: str
    flow_name: str
    completed: bool
    message: str
    results: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class DepartmentRun:
    """One department's part of ``airnub run``: the stages planned, the outcomes of those run."""

    department: str
    stages: list[str]
    outcomes: list[StageOutcome]

    @property
    def completed(self) -> bool:
        return all(outcome.completed for outcome in self.outcomes)

    @property
    def skipped(self) -> list[str]:
        """Planned stages that did not run: an earlier one failed."""
        ran = {outcome.stage for outcome in self.outcomes}
        return [stage for stage in self.stages if stage not in ran]


class PlanError(ValueError):
    """No such stage or category (or department), the message naming the valid ones; a
    department or stage flow that does not import; or a declared input that nothing has
    written, the message naming what to run first. Raised before anything runs."""


class ConfigRefused(PlanError):
    """A planned category's config file that its run would refuse, named in one line;
    found before anything starts. A failure of the run's input, not of its arguments."""


class UnknownCategory(ValueError):
    """A department has no category of that name (in the stages asked for)."""

    def __init__(self, message: str, valid: list[str]) -> None:
        super().__init__(message)
        self.valid = valid


def stage_flow_for(department: str, stage: str) -> Any:
    return inventory.department(department).stage(stage).flow()


def stage_flows(department: str, stages: Iterable[str]) -> dict[str, Any]:
    """Each stage's flow, imported now; PlanError, in one line, if one does not import."""
    flows = {}
    for stage in stages:
        try:
            flows[stage] = stage_flow_for(department, stage)
        except Exception as error:  # a broken module is the department's, told in one line
            why = f"{type(error).__name__}: {reason_of(error)}"
            raise PlanError(
                f"{department}: the {stage} stage flow cannot be loaded ({why})"
            ) from None
    return flows


def plan(department: str, stage: str | None, category: str | None) -> dict[str, list[str] | None]:
    """Stages to run, each with its category filter; raises ValueError naming valid choices
    (:class:`UnknownCategory` for a category), ConventionError for a department that
    cannot be read."""
    display_name(department)  # raises for an unknown department
    if stage is not None and stage not in STAGES:
        raise ValueError(unknown("stage", stage, STAGES))
    stages = [stage] if stage else list(STAGES)
    tree = inventory.department(department)  # raises for a package that does not import
    if category is None:
        return dict.fromkeys(stages)
    having = [s for s in stages if tree.stage(s).category(category)]
    if not having:
        valid = sorted({c.name for s in stages for c in tree.stage(s).categories})
        raise UnknownCategory(unknown(f"category of {department}", category, valid), valid)
    return {s: [category] for s in having}


# department -> stage -> its categories to run (None: all of them)
Plans = dict[str, dict[str, list[str] | None]]


def plans(departments: list[str], stage: str | None, category: str | None) -> Plans:
    """Each department's plan (see :func:`plan`). Over several departments, ``--category``
    runs in those that have it, and names the valid ones only if none has it."""
    chosen: Plans = {}
    valid: set[str] = set()
    try:
        for name in departments:
            try:
                chosen[name] = plan(name, stage, category)
            except UnknownCategory as error:
                if len(departments) == 1:
                    raise
                valid.update(error.valid)
    except ValueError as error:  # a ConventionError too: an unknown or broken department
        raise PlanError(str(error)) from None
    if not chosen:
        raise PlanError(unknown("category", category or "", sorted(valid)))
    return chosen


def check_configs(planned: Plans) -> None:
    """Read every config file the planned categories and their stages' tasks have, with
    this environment's overlay: ConfigRefused, naming the file, for one that a run would
    refuse as it reads it (bad YAML, not a mapping, a secret). A missing file is left to
    the run: a Prefect Variable may hold those settings."""
    from airnub_core.config import ConfigError, current_env, load_yaml_config

    env = current_env()
    for name, stages in planned.items():
        tree = inventory.department(name)
        for stage, only in stages.items():
            node = tree.stage(stage)
            chosen = [c for c in node.categories if only is None or c.name in only]
            for owner in (*node.tasks, *chosen, *(t for c in chosen for t in c.tasks)):
                path = owner.config_path
                if path.exists() or path.is_symlink():
                    try:
                        load_yaml_config(path, env)
                    except ConfigError as error:
                        raise ConfigRefused(str(error)) from None


def unmet_inputs(
    department: str, stages: dict[str, list[str] | None], root: storage.DataPath | None = None
) -> list[str]:
    """Why the planned categories cannot start: each declared input that is not below
    ``root`` (the data root) and that no category of an earlier stage of this same run
    writes first. A category whose modules do not import declares nothing here: its run
    fails, saying why, as it did before contracts existed."""
    tree = inventory.department(department)
    running = [c for s, only in stages.items() for c in tree.stage(s).categories
               if only is None or c.name in only]  # fmt: skip
    produced_here = {(c.identity.stage, c.name) for c in running}
    unmet: list[str] = []
    for category in running:
        try:
            inputs, _ = category.contracts
        except Exception:  # reported by its stage's run (and by `airnub check`)
            continue
        for item in inputs:
            broken = tree.broken_edge(item)
            if broken and broken.why != "does not load":  # that one fails its own stage
                unmet.append(f"{category.key} {broken}; `airnub check` says more")
            elif (item.stage, item.category) not in produced_here and not item.source.written(root):
                unmet.append(item.unmet())
    return unmet


@contextlib.contextmanager
def prefect_api(local: local_api.LocalAPI | None) -> Iterator[str]:
    """Settings for a run driven from this process: the chosen API, and the
    client speed-ups of :mod:`airnub_platform.client_speedups`."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL
    from prefect.settings import temporary_settings as settings

    updates = local_run_settings()
    if local is not None:
        preload_engine()
        local.wait_healthy()
        updates[PREFECT_API_URL] = local.url
        # it serves no UI and is gone when the command ends: no "View at <url>" lines
        updates[PREFECT_UI_URL] = ""
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
    from airnub_platform.dev import running

    platform = running()
    return platform.api_url if platform is not None and platform.ready else None


def configured_api_url() -> str | None:
    """The API a command talks to without starting one: PREFECT_API_URL (environment or
    profile), or a running ``airnub dev``."""
    return _profile_api_url() or _dev_api_url()


def start_local_api() -> local_api.LocalAPI | None:
    """Start the embedded API early, unless an API is configured.

    Starting it before prefect and the flows are imported lets the server boot
    on the second core meanwhile; ``run_department`` stops it again if prefect's
    full settings turn out to name an API after all.
    """
    if configured_api_url():
        return None
    try:
        return local_api.start()
    except OSError as error:  # e.g. a PREFECT_HOME under a file, or one it cannot write
        where = error.filename or local_api.prefect_home()
        raise PlanError(f"cannot start the local Prefect API: {where}: "
                        f"{error.strerror or error} (see PREFECT_HOME)") from None  # fmt: skip


def run_department(
    department: str,
    stages: dict[str, list[str] | None],
    local: local_api.LocalAPI | None,
    *,
    keep_going: bool = False,
    on_stage: Callable[[StageOutcome], None] = lambda outcome: None,
    on_api: Callable[[str], None] = lambda url: None,
    on_dead: Callable[[ApiUnreachable], None] | None = None,
    inputs_of: Mapping[str, dict[str, list[str] | None]] | None = None,
) -> list[StageOutcome]:
    """Run ``stages`` in order; stop after a failed stage unless ``keep_going``.

    Before the first stage, every input the plans of ``inputs_of`` (department -> stages,
    by default this run's alone) need must be met: else :class:`PlanError`, nothing run.
    An API that stops answering ends the run with :class:`ApiUnreachable`, handed to
    ``on_dead`` first (see :func:`watched`).
    """
    from prefect.settings import PREFECT_API_URL

    if local is not None and PREFECT_API_URL.value():
        local.stop()
        local = None
    flows = stage_flows(department, stages)
    outcomes: list[StageOutcome] = []
    with prefect_api(local) as url, watched(url, on_dead) as watch:
        on_api(url)
        # Against the data root the runs will write to: the API's storage block, if any.
        root = storage.data_root(use_block=True)
        checked = {department: stages} if inputs_of is None else inputs_of
        if unmet := [line for name, wanted in checked.items()
                     for line in unmet_inputs(name, wanted, root)]:  # fmt: skip
            raise PlanError("; ".join(unmet))
        for stage, categories in stages.items():
            outcome = _run_stage(stage, flows[stage], categories)
            if not outcome.completed and watch.silent_now():
                raise watch.error()  # the stage failed because the API went away
            outcomes.append(outcome)
            on_stage(outcome)
            if not outcome.completed and not keep_going:
                break
    return outcomes


def run_departments(
    departments: list[str],
    stage: str | None,
    category: str | None,
    *,
    keep_going: bool = False,
    on_stage: Callable[[StageOutcome], None] = lambda outcome: None,
    on_api: Callable[[str], None] = lambda url: None,
    on_department: Callable[[DepartmentRun], None] = lambda run: None,
    on_dead: Callable[[local_api.LocalAPI | None], Callable[[ApiUnreachable], None]] | None = None,
    on_plan: Callable[[Plans], object] = lambda planned: None,
) -> list[DepartmentRun]:
    """Plan, then run each department's stages in turn (see :func:`run_department`), on
    the configured API or the embedded one started first (it boots while the flows are
    imported), every request with a deadline (:func:`bounded_requests`).

    ``on_api`` hears the API's URL once, before the first stage; ``on_department`` each
    department's run as it ends; ``on_plan`` the plan, once checked and before anything
    slow starts (the API, importing prefect and the flows). ``on_dead`` makes, from the
    embedded API (or None), what to do when the API stops answering. Raises
    :class:`PlanError` before anything runs: for an unknown stage or category or a config
    file a run would refuse (before the API starts), a department or stage flow that does
    not import, or an input that no department's run writes and that is not there yet
    (checked for every department before the first one starts); :class:`ApiUnreachable`
    for an API that is not there.
    """
    planned = plans(departments, stage, category)  # from the folders: no flow imported
    check_configs(planned)
    on_plan(planned)
    local = start_local_api()
    try:
        when_dead = on_dead(local) if on_dead is not None else None
        for name, stages in planned.items():
            stage_flows(name, stages)
        runs: list[DepartmentRun] = []
        for index, (name, stages) in enumerate(planned.items()):
            with bounded_requests():
                outcomes = run_department(
                    name,
                    stages,
                    local,
                    keep_going=keep_going,
                    on_stage=on_stage,
                    on_api=on_api if index == 0 else lambda url: None,
                    on_dead=when_dead,
                    inputs_of=planned if index == 0 else {},
                )
            runs.append(DepartmentRun(name, list(stages), outcomes))
            on_department(runs[-1])
        return runs
    finally:
        if local is not None:
            local.stop()


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


# --- is the API still there? --------------------------------------------------------


@contextlib.contextmanager
def bounded_requests() -> Iterator[float]:
    """Prefect settings giving every API request a deadline; yields the timeout in s."""
    from prefect.settings import (
        PREFECT_API_REQUEST_TIMEOUT,
        PREFECT_CLIENT_MAX_RETRIES,
        get_current_settings,
        temporary_settings,
    )

    # fields set from the environment, a profile, prefect.toml or by code count as the user's
    current = get_current_settings()
    updates: dict = {}
    if "request_timeout" not in current.api.model_fields_set:
        updates[PREFECT_API_REQUEST_TIMEOUT] = REQUEST_TIMEOUT_SECONDS
    if "max_retries" not in current.client.model_fields_set:
        updates[PREFECT_CLIENT_MAX_RETRIES] = CLIENT_MAX_RETRIES
    with temporary_settings(updates=updates):
        yield PREFECT_API_REQUEST_TIMEOUT.value()


def api_deadline() -> float:
    """Seconds without an answer after which a command gives up on the API."""
    text = os.environ.get(API_DEADLINE_ENV, "").strip()
    if not text:
        return API_DEADLINE_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 1 <= seconds <= 3600:  # also refuses nan and inf
        raise ValueError(f"{API_DEADLINE_ENV}: {text[:20]!r} is not a number of seconds, 1 to 3600")
    return seconds


def client_tls() -> bool | ssl.SSLContext:
    """How Prefect's client verifies the API's certificate, for probes to do the same."""
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    if api.tls_insecure_skip_verify:
        return False
    return ssl.create_default_context(cafile=api.ssl_cert_file) if api.ssl_cert_file else True


def probe_timeout() -> float:
    """How long a probe waits: 5 s, or the client's own request timeout if shorter."""
    from prefect.settings import PREFECT_API_REQUEST_TIMEOUT

    return min(PROBE_TIMEOUT_SECONDS, PREFECT_API_REQUEST_TIMEOUT.value() or PROBE_TIMEOUT_SECONDS)


def probe(url: str, timeout: float, verify: bool | ssl.SSLContext = True) -> str | None:
    """None if the API answers ``/health`` at all (any status: something serves it),
    else why not, in a few words. Reads no body."""
    import httpx

    try:
        with (
            httpx.Client(timeout=timeout, verify=verify, trust_env=True) as client,
            client.stream("GET", f"{url.rstrip('/')}/health"),
        ):
            return None
    except httpx.TimeoutException:
        return f"no answer within {timeout:g} s"
    except Exception as error:  # any failure to get an answer is the reason, in one line
        return reason_of(error)


def reason_of(error: BaseException) -> str:
    """``[Errno 111] Connection refused`` -> ``connection refused``."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = text.split("] ", 1)[-1] if text.startswith("[Errno") else text
    return text[:1].lower() + text[1:]


class ApiWatch:
    """Probes the API from a thread while a command uses it.

    ``silent`` is set while the API does not answer; Prefect's console output is held
    back meanwhile (and shown if the API answers again). After ``deadline`` seconds
    without an answer, ``on_dead`` is called from the watching thread.
    """

    def __init__(self, url: str, deadline: float, on_dead: Callable | None) -> None:
        self.url, self.deadline, self.on_dead = url, deadline, on_dead
        # read here: the probing threads do not see this thread's Prefect settings
        self.timeout, self.tls = min(probe_timeout(), deadline), client_tls()
        self._silent = False
        self._raise_exceptions = logging.raiseExceptions
        self.reason = "no answer"
        self.last_answer = time.monotonic()
        self._stopped = threading.Event()
        self._held: list[tuple[logging.Handler, logging.LogRecord]] = []
        self._lock = threading.Lock()
        self._filters = [(h, self._holder(h)) for h in console_handlers()]
        self._thread = threading.Thread(target=self._watch, name="airnub-api-watch", daemon=True)

    def start(self) -> None:
        for handler, hold in self._filters:
            handler.addFilter(hold)
        self._thread.start()

    def stop(self, *, release: bool = True) -> None:
        self._stopped.set()
        for handler, hold in self._filters:
            handler.removeFilter(hold)
        if release:
            self._release()
        logging.raiseExceptions = self._raise_exceptions

    @property
    def silent(self) -> bool:
        return self._silent

    @silent.setter
    def silent(self, silent: bool) -> None:
        # Prefect's log worker writes its failures to stderr itself, unless told that
        # logging errors are to be quiet: they are, while the API does not answer.
        self._silent = silent
        if not self._stopped.is_set():  # a late probe must not outlive the watch's settings
            logging.raiseExceptions = self._raise_exceptions and not silent

    def error(self) -> ApiUnreachable:
        return ApiUnreachable(self.url, self.reason, round(time.monotonic() - self.last_answer))

    def silent_now(self) -> bool:
        """Whether the API does not answer now, asked afresh: after an error, before
        blaming the API (the watching thread may not have probed since it went away)."""
        return self.probe()

    def probe(self) -> bool:
        """Probe once; True if the API did not answer."""
        reason = probe(self.url, self.timeout, self.tls)
        if reason is None:
            self.last_answer = time.monotonic()
            self.silent = False
            self._release()
            return False
        self.reason, self.silent = reason, True
        return True

    def _watch(self) -> None:
        probing: threading.Thread | None = None
        started = 0.0
        while not self._stopped.wait(PROBE_INTERVAL_SECONDS):
            if probing is None or not probing.is_alive():
                probing = threading.Thread(target=self.probe, daemon=True)
                started = time.monotonic()
                probing.start()
            elif time.monotonic() - started > self.timeout:  # a probe that hangs
                self.reason = f"no answer within {self.timeout:g} s"
                self.silent = True
            if time.monotonic() - self.last_answer >= self.deadline and not self._stopped.is_set():
                self.silent = True
                if self.on_dead is not None:
                    self.on_dead(self.error())
                return

    def _holder(self, handler: logging.Handler) -> Callable[[logging.LogRecord], bool]:
        def hold(record: logging.LogRecord) -> bool:
            if not self.silent:
                return True
            with self._lock:
                self._held.append((handler, record))
            return False

        return hold

    def _release(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        for handler, record in held:
            handler.handle(record)


def console_handlers() -> list[logging.StreamHandler]:
    """The handlers that print Prefect's logs: the root logger's and its internal one's."""
    loggers = (logging.getLogger(), logging.getLogger("prefect._internal"))
    return [h for lg in loggers for h in lg.handlers if isinstance(h, logging.StreamHandler)]


@contextlib.contextmanager
def watched(
    url: str, on_dead: Callable[[ApiUnreachable], None] | None = None
) -> Iterator[ApiWatch]:
    """Watch the API at ``url`` while the block runs (see :class:`ApiWatch`).

    An API that does not answer at the start raises :class:`ApiUnreachable` before the
    block runs. A failed request while it is silent, a stage failed while it is silent (see
    :func:`run_department`), or a silence of ``AIRNUB_API_DEADLINE_SECONDS`` ends the block
    with one too, handed to ``on_dead`` first: the CLI prints it and exits
    there, as Prefect's workers would go on retrying the API at interpreter exit.
    """
    import httpx

    watch = ApiWatch(url, api_deadline(), on_dead)
    if watch.probe():
        watch.stop()
        raise ApiUnreachable(url, watch.reason)
    watch.start()
    gave_up: ApiUnreachable | None = None
    try:
        yield watch
    except ApiUnreachable as error:
        gave_up = error
    except (httpx.TransportError, OSError):  # a failure to talk: is the API still there?
        if not watch.silent_now():
            raise
        gave_up = watch.error()  # the API's silence, not this error, is the story
    finally:
        if gave_up is None:
            watch.stop()
    if gave_up is not None:
        if on_dead is not None:
            on_dead(gave_up)  # before anything else can print
        watch.stop(release=False)  # what Prefect said meanwhile was about the silence
        raise gave_up
