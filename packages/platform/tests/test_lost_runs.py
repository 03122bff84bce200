"""The lost-run automation on a real Prefect API (the session's): a run whose heartbeats
stop is marked Crashed by the server itself; a run that ended, or never sent a heartbeat,
is left alone; applying it twice, or over duplicates, leaves exactly one; settings that
cannot work are refused in one line naming them."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
import pytest
from airnub_platform import lost_runs
from airnub_platform.lost_runs import LostRunSettingError
from hypothesis import given
from hypothesis import strategies as st
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.states import Completed, Running

SILENCE = timedelta(seconds=10)  # Prefect's least, so the server decides quickly
CRASH_DEADLINE = 90.0  # seconds for the server to mark the silent run (it checks every 5 s)


@pytest.fixture
def client(prefect_api):
    with get_client(sync_client=True) as client:
        yield client
        for automation in client.read_automations_by_name(lost_runs.AUTOMATION_NAME):
            client.delete_automation(automation.id)  # the session's API is shared


def running_flow_run(client: SyncPrefectClient) -> UUID:
    created = client.create_flow_run(flow=_flow_named("lost-runs-probe"), name=f"probe-{uuid4()}")
    client.set_flow_run_state(created.id, Running())
    return created.id


def _flow_named(name: str):
    from prefect import flow

    @flow(name=name)
    def probe() -> None:  # never called: it only names the runs' flow
        pass

    return probe


def heartbeat(api_url: str, run_id: UUID) -> None:
    """A heartbeat event for ``run_id``, as a flow run's engine sends it."""
    event = {
        "id": str(uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": lost_runs.HEARTBEAT,
        "resource": {"prefect.resource.id": f"prefect.flow-run.{run_id}"},
    }
    response = httpx.post(f"{api_url}/events", json=[event], timeout=30)
    response.raise_for_status()


def state_after_crash_or_deadline(client: SyncPrefectClient, run_id: UUID) -> str:
    """Poll until the run is Crashed, giving up after a deadline; its last state type."""
    import time

    deadline = time.monotonic() + CRASH_DEADLINE
    while True:
        state = client.read_flow_run(run_id).state
        assert state is not None
        if state.type.value == "CRASHED" or time.monotonic() > deadline:
            return state.type.value
        time.sleep(0.5)


def test_a_silent_run_is_crashed_and_ended_or_quiet_runs_are_left_alone(client, prefect_api):
    lost_runs.ensure_lost_run_automation(client, SILENCE)
    silent, ended, quiet = (running_flow_run(client) for _ in range(3))
    heartbeat(prefect_api, silent)
    heartbeat(prefect_api, ended)
    client.set_flow_run_state(ended, Completed())  # the server emits its Completed event

    assert state_after_crash_or_deadline(client, silent) == "CRASHED"
    crashed = client.read_flow_run(silent).state
    assert crashed is not None and "no heartbeat within 10 s" in (crashed.message or "")
    # By now the silence has passed for all three runs: only the silent one was touched.
    assert client.read_flow_run(ended).state.type.value == "COMPLETED"  # type: ignore[union-attr]
    assert client.read_flow_run(quiet).state.type.value == "RUNNING"  # type: ignore[union-attr]


def test_applying_twice_updates_one_automation_in_place(client):
    first = lost_runs.ensure_lost_run_automation(client, SILENCE)
    second = lost_runs.ensure_lost_run_automation(client, timedelta(seconds=75))
    [automation] = client.read_automations_by_name(lost_runs.AUTOMATION_NAME)
    assert first == second == automation.id
    assert automation.trigger.within == timedelta(seconds=75)  # type: ignore[union-attr]
    assert automation.enabled


def test_duplicates_by_name_are_folded_into_one(client):
    made = [client.create_automation(lost_runs.lost_run_automation(SILENCE)) for _ in range(3)]
    kept = lost_runs.ensure_lost_run_automation(client, SILENCE)
    assert [a.id for a in client.read_automations_by_name(lost_runs.AUTOMATION_NAME)] == [kept]
    assert kept in made


@pytest.mark.parametrize(
    "silence",
    [
        timedelta(0),
        timedelta(seconds=-5),
        timedelta(seconds=9),
        timedelta(days=2),
        timedelta(seconds=10.5),
        90,
    ],
)
def test_a_silence_that_cannot_work_is_refused_in_one_line(silence):
    with pytest.raises(LostRunSettingError, match=r"^silence: ") as refused:
        lost_runs.lost_run_automation(silence)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("fast", "is not a whole number"),
        ("10", "below Prefect's minimum"),
        ("9" * 500, "not a whole number"),
        ("5000", "above the most"),
    ],
)
def test_a_heartbeat_setting_that_cannot_work_names_the_setting(value, reason):
    with pytest.raises(LostRunSettingError, match=lost_runs.HEARTBEAT_ENV) as refused:
        lost_runs.heartbeat_seconds({lost_runs.HEARTBEAT_ENV: value})
    assert reason in str(refused.value) and len(str(refused.value)) < 200


def test_an_unset_heartbeat_is_prefects_default():
    assert lost_runs.heartbeat_seconds({}) == lost_runs.PREFECT_DEFAULT_HEARTBEAT


@given(st.integers(min_value=30, max_value=lost_runs.MAX_HEARTBEAT))
def test_the_default_silence_outlasts_two_heartbeats_and_is_accepted(heartbeat):
    silence = lost_runs.silence_for(heartbeat)
    assert silence >= timedelta(seconds=2 * heartbeat)
    assert lost_runs.lost_run_automation(silence).trigger.within == silence  # type: ignore[union-attr]
