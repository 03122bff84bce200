"""Runs whose host was lost are marked Crashed, the way Prefect documents for zombie flows.

A flow run started by a worker sends a ``prefect.flow-run.heartbeat`` event every
``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (Prefect's default 180, at least 30). If its
host dies, nothing ever moves the run out of Running: no process is left to report, and a
self-hosted server has no zombie detection of its own. The automation made here is
Prefect's documented answer: a proactive trigger that fires when a run that has sent a
heartbeat sends neither another heartbeat nor a final state within ``silence``, and sets
that run to Crashed. It is created once per API, by name, and updated in place after.

``silence`` must exceed the heartbeat frequency with room for a late one: by default two
missed heartbeats and a half (:func:`silence_for`).
"""

from __future__ import annotations

import math
import os
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.schemas.automations import AutomationCore

AUTOMATION_NAME = "airnub: crash runs whose host was lost"
HEARTBEAT_ENV = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
PREFECT_DEFAULT_HEARTBEAT = 180  # seconds, Prefect's own default for the setting above
MISSED_HEARTBEATS = 2.5  # a run is lost after this many heartbeats failed to arrive
MAX_HEARTBEAT = 3600  # seconds: a run silent for hours is noticed too late to matter
MIN_SILENCE = timedelta(seconds=10)  # Prefect's least window for a proactive trigger
MAX_SILENCE = timedelta(days=1)
HEARTBEAT = "prefect.flow-run.heartbeat"
# A run that reaches one of these has ended: it is not waited on any more.
ENDINGS = frozenset(
    f"prefect.flow-run.{name}" for name in ("Completed", "Failed", "Cancelled", "Crashed")
)
CRASH_MESSAGE = "Marked Crashed: no heartbeat within {seconds} s; its host was lost"


class LostRunSettingError(ValueError):
    """A silence or heartbeat setting that cannot work; the message names it, in one line."""


def heartbeat_seconds(environ: dict[str, str] | None = None) -> int:
    """The heartbeat frequency workers are given (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``)."""
    raw = (os.environ if environ is None else environ).get(HEARTBEAT_ENV, "").strip()
    if not raw:
        return PREFECT_DEFAULT_HEARTBEAT
    if not raw.isdecimal() or len(raw) > 6:
        raise LostRunSettingError(f"{HEARTBEAT_ENV}: {raw[:40]!r} is not a whole number"
                                  f" of seconds up to {MAX_HEARTBEAT}")  # fmt: skip
    seconds = int(raw)
    if seconds < 30:
        raise LostRunSettingError(f"{HEARTBEAT_ENV}: {seconds} is below Prefect's minimum of 30")
    if seconds > MAX_HEARTBEAT:
        raise LostRunSettingError(f"{HEARTBEAT_ENV}: {seconds} is above the most, {MAX_HEARTBEAT}")
    return seconds


def silence_for(heartbeat: int) -> timedelta:
    """How long without a heartbeat before a run counts as lost, for a heartbeat frequency."""
    return timedelta(seconds=math.ceil(heartbeat * MISSED_HEARTBEATS))


def lost_run_automation(silence: timedelta) -> AutomationCore:
    """The automation: any flow run silent for ``silence`` after a heartbeat is Crashed."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ActionTypesOrUnknown, ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    check_silence(silence)
    message = CRASH_MESSAGE.format(seconds=int(silence.total_seconds()))
    crash = ChangeFlowRunState(name=None, state=StateType.CRASHED, message=message, force=False)
    actions: list[ActionTypesOrUnknown] = [crash]
    return AutomationCore(
        name=AUTOMATION_NAME,
        enabled=True,  # applying it again re-enables one switched off
        description="Flow runs whose heartbeats stopped, their host lost, are marked Crashed.",
        trigger=EventTrigger(
            after={HEARTBEAT},
            expect={HEARTBEAT, *ENDINGS},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},  # each run on its own
            posture=Posture.Proactive,
            threshold=1,
            within=silence,
        ),
        actions=actions,
    )


def check_silence(silence: timedelta) -> None:
    if not isinstance(silence, timedelta):
        raise LostRunSettingError(f"silence: expected a timedelta, got {type(silence).__name__}")
    if silence < MIN_SILENCE or silence > MAX_SILENCE:
        least = MIN_SILENCE.total_seconds()
        raise LostRunSettingError(
            f"silence: {silence.total_seconds():g} s is outside {least:g} s to {MAX_SILENCE}"
        )
    if silence.total_seconds() != int(silence.total_seconds()):
        raise LostRunSettingError(f"silence: {silence.total_seconds():g} s is not whole seconds")


def ensure_lost_run_automation(client: SyncPrefectClient, silence: timedelta) -> UUID:
    """Create the automation on ``client``'s API, or update the one of that name; its id.

    Duplicates of the name (made by hand, or by two racing callers) are removed, so one
    automation stays and a run is never crashed twice."""
    wanted = lost_run_automation(silence)
    found = client.read_automations_by_name(AUTOMATION_NAME)
    if not found:
        return client.create_automation(wanted)
    keep, *extra = sorted(found, key=lambda automation: str(automation.id))
    client.update_automation(keep.id, wanted)
    for duplicate in extra:
        client.delete_automation(duplicate.id)
    return keep.id
