"""What ``airnub run`` shows while it runs: its plan at once, then each stage's and
category's state (Pending, Running, Completed, Failed) and how long it took.

On a terminal it is one live table (:mod:`rich.live`), redrawn as the run goes, with
Prefect's own log lines printed above it. Elsewhere (a pipe, a CI log) it is one plain
line per change, ``<dept> <stage> <category>: Completed in 1.2 s``, without ANSI codes.

The states come from the run's own process: the category flows run in threads of it,
and Prefect's flow engine logs each flow run's start ("Beginning ... for flow 'X'") and
end ("Finished in state Completed()") on the ``prefect.flow_runs`` logger, the record
naming its flow. Flow names follow the conventions, so the folders alone say which flow
is which stage or category. Whatever the log does not tell (its level raised above INFO),
the stage's outcome does when the stage ends.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airnub_core import conventions, inventory
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from airnub_platform.runner import Plans, StageOutcome

FLOW_RUNS_LOGGER = "prefect.flow_runs"
FINISHED = re.compile(r"Finished in state (\w+)")
COLOURS = {"Pending": "dim", "Running": "yellow", "Completed": "green"}


@dataclass
class Step:
    """A stage or a category of the plan, and how far it got."""

    department: str
    stage: str
    category: str | None = None
    state: str = "Pending"
    started: float | None = None
    took: float | None = None

    @property
    def label(self) -> str:
        return " ".join(p for p in (self.department, self.stage, self.category) if p)

    def line(self) -> str:
        took = f" in {self.took:.1f} s" if self.took is not None else ""
        return f"{self.label}: {self.state}{took}"


def plan_lines(planned: Plans) -> list[str]:
    """One line per department: its stages in order, each with its categories."""
    lines = []
    for department, stages in planned.items():
        tree = inventory.department(department)
        parts = []
        for stage, only in stages.items():
            names = [c.name for c in tree.stage(stage).categories if only is None or c.name in only]
            parts.append(f"{stage} ({', '.join(names) or 'no categories'})")
        title = f"{department} ({conventions.display_name(department)})"
        lines.append(f"will run {title}: {' -> '.join(parts)}")
    return lines


class RunProgress:
    """The states of one ``airnub run``'s stages and categories, shown as they change."""

    def __init__(self, planned: Plans, console: Console) -> None:
        self.console = console
        self.steps: list[Step] = []
        self.by_flow: dict[str, Step] = {}  # a flow's name -> its stage or category
        for department, stages in planned.items():
            tree = inventory.department(department)
            for stage, only in stages.items():
                node = tree.stage(stage)
                self._add(Step(department, stage), node.identity.flow_name)
                for category in node.categories:
                    if only is None or category.name in only:
                        step = Step(department, stage, category.name)
                        self._add(step, category.identity.flow_name)
        self.live: Live | None = None
        self._lock = threading.Lock()
        self._closing = ExitStack()

    def _add(self, step: Step, flow_name: str) -> None:
        self.steps.append(step)
        self.by_flow[flow_name] = step

    def set(self, step: Step, state: str) -> None:
        """Move ``step`` to ``state``: forward only, and a finished step stays finished."""
        with self._lock:
            if state in ("Pending", step.state) or step.state not in ("Pending", "Running"):
                return
            if state == "Running":
                step.started = time.monotonic()
            elif step.started is not None:
                step.took = time.monotonic() - step.started
            step.state = state
            if self.live is not None:
                self.live.refresh()
            else:
                self.console.print(step.line(), markup=False, highlight=False, soft_wrap=True)

    def heard(self, record: logging.LogRecord) -> None:
        """A flow run's start or end, as Prefect's flow engine logs it."""
        message = record.getMessage()
        if message.startswith("Beginning "):
            step = next((s for n, s in self.by_flow.items() if message.endswith(f" {n!r}")), None)
            if step is not None:
                self.set(step, "Running")
        elif found := FINISHED.match(message):
            step = self.by_flow.get(getattr(record, "flow_name", ""))
            if step is not None:
                self.set(step, found.group(1))

    def stage_done(self, outcome: StageOutcome) -> None:
        """What the log may not have told: the stage's and its categories' final states."""
        stage = self.by_flow.get(outcome.flow_name)
        if stage is None:
            return
        for step in self.steps:
            if step.department == stage.department and step.stage == stage.stage:
                if step.category in outcome.results:
                    self.set(step, "Completed")
                elif step.category in outcome.failed:
                    self.set(step, "Failed")
        self.set(stage, "Completed" if outcome.completed else "Failed")

    def table(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False)
        for column in ("step", "state", "time"):
            table.add_column(column, justify="right" if column == "time" else "left")
        for step in self.steps:
            label = f"  {step.category}" if step.category else f"{step.department} {step.stage}"
            took = f"{step.took:.1f} s" if step.took is not None else ""
            if step.state == "Running" and step.started is not None:
                took = f"{time.monotonic() - step.started:.0f} s"
            state = Text(step.state, style=COLOURS.get(step.state, "red"))
            table.add_row(Text(label), state, took)
        return table

    @contextmanager
    def shown(self) -> Iterator[RunProgress]:
        """A live table on a terminal while the block runs (plain lines elsewhere)."""
        with ExitStack() as self._closing:
            if self.console.is_terminal:
                # redrawn twice a second: a running step's time counts up
                live = Live(get_renderable=self.table, console=self.console,
                            refresh_per_second=2, redirect_stderr=True)  # fmt: skip
                self.live = self._closing.enter_context(live)
                self._closing.callback(setattr, self, "live", None)
            yield self

    def listen(self) -> None:
        """Follow the flow runs' log from now on, until the display ends. Called once
        Prefect is imported: its logging set-up replaces the handlers of its loggers."""
        listener = Listener(self)
        logger = logging.getLogger(FLOW_RUNS_LOGGER)
        logger.addHandler(listener)
        self._closing.callback(logger.removeHandler, listener)
        if self.live is not None:
            self._closing.enter_context(prefect_logs_through(self.live))


class Listener(logging.Handler):
    """Hands the flow runs' log records to a :class:`RunProgress`; never fails a log call."""

    def __init__(self, progress: RunProgress) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.progress.heard(record)
        except Exception:  # a display problem must never stop or fail the run
            self.handleError(record)


@contextmanager
def prefect_logs_through(live: Live) -> Iterator[None]:
    """Prefect's console log lines printed above ``live`` meanwhile, instead of straight
    onto the terminal where they would tear the display."""
    from airnub_platform.runner import console_handlers

    swapped: list[tuple[logging.StreamHandler[Any], Any, Console | None]] = []
    for handler in console_handlers():
        inner = getattr(handler, "console", None)  # Prefect's handler prints through rich
        if isinstance(inner, Console):
            handler.console = ThroughLive(inner, live.console)  # type: ignore[attr-defined]
            swapped.append((handler, None, inner))
        else:
            swapped.append((handler, handler.setStream(sys.stderr), None))  # Live's proxy
    try:
        yield
    finally:
        for handler, stream, inner in swapped:
            if inner is not None:
                handler.console = inner  # type: ignore[attr-defined]
            elif stream is not None:
                handler.setStream(stream)


class ThroughLive:
    """What a rich Console prints, rendered as it would be (its theme, its colours) and
    handed to the console that a live display runs on, which prints it above the display."""

    def __init__(self, inner: Console, outer: Console) -> None:
        self.inner, self.outer = inner, outer

    def print(self, *objects: Any, **options: Any) -> None:
        with self.inner.capture() as captured:
            self.inner.print(*objects, **options)
        self.outer.print(Text.from_ansi(captured.get()), end="", soft_wrap=True)
