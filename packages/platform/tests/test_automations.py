"""``airnub automations sync`` against the session's Prefect server on loopback: a failing
category makes the department's automation fire and a webhook receiver on 127.0.0.1 gets
the notification; the sync's refusals, its dry run, its prune, its undo, and the alert
webhook block ``airnub blocks sync`` saves."""

import json
import queue
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from airnub_core import conventions
from airnub_platform import automation_sync, block_sync, lost_runs
from airnub_platform.cli import app
from airnub_platform.testing import webhook_receiver
from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
from prefect.client.orchestration import SyncPrefectClient, get_client
from pydantic import SecretStr
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("prefect_api")
DEPT, OTHER = "dept_alerting", "dept_alerting_two"
NOTIFY_DEADLINE = 120.0  # seconds for the server's triggers and actions to notify
FOREIGN = "someone's own automation"
TAGGED = "someone's own, tagged like airnub's"  # managed tags, but not a name airnub makes


@pytest.fixture
def departments(make_department):
    """Two throwaway departments, the first with a category that can be made to fail."""
    for name in [m for m in sys.modules if m.split(".")[0] in (DEPT, OTHER)]:
        del sys.modules[name]  # each test's departments are new folders
    owned = {"airnub.owners": "@acme/alerting", "airnub.alerts": "#alerting"}
    first = make_department(DEPT, {"ingestion": ["feed"]}, display_name="Alerting Team",
                            owners=owned)  # fmt: skip
    second = make_department(OTHER, {}, display_name="Second Team")
    return {DEPT: first / "src" / DEPT, OTHER: second / "src" / OTHER}


@pytest.fixture
def client(departments) -> Iterator[SyncPrefectClient]:
    """A client on the session's API, left with no automations and no alert blocks."""
    with get_client(sync_client=True) as client:
        clean(client)
        yield client
        clean(client)


def ours(client: SyncPrefectClient) -> list:
    """The automations these tests make (the session's API is shared with other tests)."""
    prefixes = tuple(conventions.automation_name(d, "") for d in (DEPT, OTHER))
    return [
        a
        for a in automation_sync.all_automations(client)
        if a.name.startswith(prefixes) or a.name in (FOREIGN, TAGGED, lost_runs.AUTOMATION_NAME)
    ]


def clean(client: SyncPrefectClient) -> None:
    for automation in ours(client):
        client.delete_automation(automation.id)
    for department in (DEPT, OTHER):
        for block_id, _ in block_sync.notification_blocks(
            client, conventions.alert_block_name(department)
        ):
            client.delete_block_document(block_id)


def save_alert_blocks(monkeypatch, url: str, *departments: str, private: str = "true") -> None:
    """What `airnub blocks sync` does with each department's alert variable set to ``url``."""
    monkeypatch.setenv(block_sync.ALLOW_PRIVATE_ENV, private)
    for department in departments:
        monkeypatch.setenv(conventions.alert_webhook_env(department), url)
    wanted, problems = block_sync.alert_webhooks(departments)
    assert not problems
    block_sync.sync(wanted)


def write_rules(package, text: str) -> None:
    (package / "configs").mkdir(exist_ok=True)
    (package / "configs" / "automations.yaml").write_text(text)


def actions(changes) -> dict[str, str]:
    return {change.name: change.action for change in changes}


def names(client: SyncPrefectClient) -> list[str]:
    return sorted(a.name for a in ours(client))


FAILS = conventions.automation_name(DEPT, "failed-or-crashed")
OTHER_FAILS = conventions.automation_name(OTHER, "failed-or-crashed")
LATE = conventions.automation_name(DEPT, "late")


def test_a_failing_category_notifies_the_departments_webhook(client, departments, monkeypatch):
    with webhook_receiver("/hook/T0KEN") as (url, received):
        save_alert_blocks(monkeypatch, url, DEPT, OTHER)
        assert actions(automation_sync.sync(client, [DEPT, OTHER])) == {
            FAILS: "create",
            OTHER_FAILS: "create",
        }
        flow = __import__(f"{DEPT}.ingestion.feed.make_feed_flow_{DEPT}", fromlist=["x"])
        state = flow.make_feed(overrides={"fail_with": "the source is down"}, return_state=True)
        assert state.is_failed()
        run = client.read_flow_run(state.state_details.flow_run_id)
        try:
            notification = received.get(timeout=NOTIFY_DEADLINE)
        except queue.Empty:
            pytest.fail(f"no notification within {NOTIFY_DEADLINE} s")
    assert notification["block"] == conventions.alert_block_name(DEPT)
    assert run.name in notification["subject"] and "Alerting Team" in notification["subject"]
    body = notification["body"]
    for expected in (f"Flow run {run.name} ({run.id})", "Make Feed (Alerting Team) has failed",
                     DEPT, "State: Failed", "the source is down", "Owners: @acme/alerting",
                     "Alert channel: #alerting"):  # fmt: skip
        assert expected in body
    assert received.empty()  # the second department's automation did not fire


def test_sync_is_a_diff_and_prune_deletes_only_managed_automations_whose_rule_is_gone(
    client, departments, monkeypatch
):
    save_alert_blocks(monkeypatch, "https://hooks.example.com/T/x", DEPT, OTHER)
    lost = lost_runs.ensure_lost_run_automation(client, lost_runs.silence_for(30))
    foreign = client.create_automation(
        lost_runs.lost_run_automation(lost_runs.silence_for(30)).model_copy(
            update={"name": FOREIGN, "tags": [DEPT]}  # the department's tag, not managed
        )
    )
    tagged = client.create_automation(
        lost_runs.lost_run_automation(lost_runs.silence_for(30)).model_copy(
            update={"name": TAGGED, "tags": ["airnub-managed", DEPT]}
        )
    )
    write_rules(departments[DEPT], "rules: [{rule: late}]\n")
    assert actions(automation_sync.sync(client, [DEPT, OTHER])) == {
        FAILS: "create", LATE: "create", OTHER_FAILS: "create"
    }  # fmt: skip
    assert set(actions(automation_sync.sync(client, [DEPT, OTHER])).values()) == {"unchanged"}
    write_rules(departments[DEPT], "rules: [{rule: running-longer, minutes: 5}]\n")
    longer = conventions.automation_name(DEPT, "running-longer-any-stage-5m")
    assert actions(automation_sync.sync(client, [DEPT])) == {
        FAILS: "unchanged",
        longer: "create",
        LATE: "stale",
    }
    assert LATE in names(client)  # stale is reported, kept without --prune
    assert actions(automation_sync.changes(client, [DEPT])) == {
        FAILS: "unchanged",
        longer: "unchanged",
        LATE: "delete",
    }
    assert LATE in names(client)  # changes() is read-only
    # OTHER's rule is gone from nothing, and it was not chosen: untouched by DEPT's prune
    automation_sync.sync(client, [DEPT], prune=True)
    assert names(client) == sorted([FAILS, longer, OTHER_FAILS, FOREIGN, TAGGED,
                                    lost_runs.AUTOMATION_NAME])  # fmt: skip
    assert {a.id for a in ours(client)} >= {lost, foreign, tagged}


def test_a_hand_edited_managed_automation_is_updated_back(client, departments, monkeypatch):
    save_alert_blocks(monkeypatch, "https://hooks.example.com/T/x", DEPT)
    automation_sync.sync(client, [DEPT])
    [made] = client.read_automations_by_name(FAILS)
    edited = automation_sync.core_of(made).model_copy(update={"enabled": False})
    client.update_automation(made.id, edited)
    assert actions(automation_sync.sync(client, [DEPT])) == {FAILS: "update"}
    [after] = client.read_automations_by_name(FAILS)
    assert after.id == made.id and after.enabled


def test_an_unmanaged_automation_under_a_managed_name_is_refused_nothing_written(
    client, departments, monkeypatch
):
    save_alert_blocks(monkeypatch, "https://hooks.example.com/T/x", DEPT, OTHER)
    squatter = lost_runs.lost_run_automation(lost_runs.silence_for(30))
    squatter_id = client.create_automation(squatter.model_copy(update={"name": FAILS}))
    with pytest.raises(automation_sync.UnmanagedAutomation, match="lacks the 'airnub-managed'"):
        automation_sync.sync(client, [DEPT, OTHER])
    assert names(client) == [FAILS]  # OTHER's was not created either
    [kept] = client.read_automations_by_name(FAILS)
    assert kept.id == squatter_id and kept.tags == []


def test_a_missing_alert_block_is_refused_naming_how_to_make_it(client, departments, monkeypatch):
    save_alert_blocks(monkeypatch, "https://hooks.example.com/T/x", OTHER)
    with pytest.raises(automation_sync.MissingAlertBlock) as refused:
        automation_sync.sync(client, [OTHER, DEPT])
    message = str(refused.value)
    assert "\n" not in message
    assert conventions.alert_webhook_env(DEPT) in message and "airnub blocks sync" in message
    assert names(client) == []


def test_dry_run_writes_nothing(client, departments, monkeypatch):
    save_alert_blocks(monkeypatch, "https://hooks.example.com/T/x", DEPT)
    assert actions(automation_sync.sync(client, [DEPT], dry_run=True)) == {FAILS: "create"}
    assert names(client) == []


def test_a_write_failing_part_way_undoes_the_writes_already_made(client, departments, monkeypatch):
    save_alert_blocks(monkeypatch, "https://hooks.example.com/T/x", DEPT, OTHER)
    write_rules(departments[DEPT], "rules: [{rule: late}]\n")
    automation_sync.sync(client, [DEPT, OTHER])
    before = {a.name: automation_sync.comparable(automation_sync.core_of(a))
              for a in ours(client)}  # fmt: skip
    write_rules(departments[DEPT], "rules: [{rule: running-longer, minutes: 7}]\n")
    planned = automation_sync.changes(client, [DEPT, OTHER])  # create, delete LATE
    # OTHER's automation is deleted by hand between the plan and the write: updating it fails
    [other] = client.read_automations_by_name(OTHER_FAILS)
    changed = automation_sync.core_of(other).model_copy(update={"description": "edited"})
    planned.append(automation_sync.Change("update", OTHER_FAILS, OTHER, "", changed, other))
    client.delete_automation(other.id)
    with pytest.raises(Exception, match="404"):
        automation_sync.apply(client, planned)
    after = {a.name: automation_sync.comparable(automation_sync.core_of(a))
             for a in ours(client)}  # fmt: skip
    assert after == {name: data for name, data in before.items() if name != OTHER_FAILS}


def test_the_webhook_url_is_a_secret_and_private_addresses_are_refused_by_default(
    client, departments, monkeypatch
):
    with webhook_receiver("/hook/T0KEN") as (url, received):
        save_alert_blocks(monkeypatch, url, DEPT, private="")
        name = conventions.alert_block_name(DEPT)
        document = client.read_block_document_by_name(name, "custom-webhook", include_secrets=False)
        assert "T0KEN" not in json.dumps(document.model_dump(mode="json"))
        block = CustomWebhookNotificationBlock.load(name)
        assert isinstance(block, CustomWebhookNotificationBlock)
        with pytest.raises(ValueError, match=r"private|loopback|restricted|not allowed"):
            block.notify("body", "subject")
        assert received.empty()
        save_alert_blocks(monkeypatch, url, DEPT, private="true")  # the setting lets it through
        block = CustomWebhookNotificationBlock.load(name)
        assert isinstance(block, CustomWebhookNotificationBlock)
        block.notify("hello", "subject")
        assert received.get(timeout=30)["body"] == "hello"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ftp://hooks.example.com/x", "http(s) URL"),
        ("https://user:s3cr3t@hooks.example.com/x", "user name or password"),
        ("#alerts", "a #channel is not a URL"),
        ("https://hooks.example.com:99999/s3cr3t", "valid http(s) URL"),
        ("https://hooks.example.com/s3cr3t\nX: y", "no spaces or control characters"),
    ],
)
def test_a_hostile_webhook_variable_is_refused_without_showing_it(departments, monkeypatch,
                                                                  value, problem):  # fmt: skip
    variable = conventions.alert_webhook_env(DEPT)
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(app, ["blocks", "sync", DEPT, "--dry-run"])
    assert result.exit_code == 1
    assert f"${variable}: " in result.output and problem in result.output
    assert "s3cr3t" not in result.output and "Traceback" not in result.output


def test_an_unusable_private_setting_is_refused_naming_it(departments, monkeypatch):
    monkeypatch.setenv(conventions.alert_webhook_env(DEPT), "https://hooks.example.com/x")
    monkeypatch.setenv(block_sync.ALLOW_PRIVATE_ENV, "maybe")
    result = CliRunner().invoke(app, ["blocks", "sync", DEPT, "--dry-run"])
    assert result.exit_code == 1 and f"${block_sync.ALLOW_PRIVATE_ENV}: 'maybe'" in result.output


def test_a_hand_made_slack_block_is_used_untouched_and_never_doubled(
    client, departments, monkeypatch
):
    name = conventions.alert_block_name(DEPT)
    slack = SlackWebhook(url=SecretStr("https://hooks.slack.com/services/T0/B0/X0"))
    slack_id = slack.save(name)
    automation_sync.sync(client, [DEPT])
    [made] = client.read_automations_by_name(FAILS)
    assert made.actions[0].model_dump()["block_document_id"] == slack_id
    monkeypatch.setenv(conventions.alert_webhook_env(DEPT), "https://hooks.example.com/x")
    result = CliRunner().invoke(app, ["blocks", "sync", DEPT])
    assert result.exit_code == 1 and "a slack-webhook notification block named" in result.output
    assert [s for _, s in block_sync.notification_blocks(client, name)] == ["slack-webhook"]


def test_the_command_shows_the_diff_and_refuses_invalid_rules_before_the_server(
    client, departments, monkeypatch
):
    save_alert_blocks(monkeypatch, "https://hooks.example.com/T/x", DEPT, OTHER)
    dry = CliRunner().invoke(app, ["automations", "sync", DEPT, "--dry-run"])
    assert dry.exit_code == 0 and "would apply: 1 create" in dry.output
    assert names(client) == []
    done = CliRunner().invoke(app, ["automations", "sync", DEPT, OTHER])
    assert done.exit_code == 0 and "applied: 2 create" in done.output
    write_rules(departments[OTHER], "rules: [{rule: late, minutes: 3}]\n")
    refused = CliRunner().invoke(app, ["automations", "sync", DEPT, OTHER, "--prune"])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "automations.yaml: rules.0.late.minutes" in refused.output
    assert names(client) == [FAILS, OTHER_FAILS]
    unknown = CliRunner().invoke(app, ["automations", "sync", "dept_nowhere_" + uuid4().hex[:6]])
    assert unknown.exit_code == 2 and "unknown department" in unknown.output


def flow_run_tagged(client: SyncPrefectClient, *tags: str):
    from prefect import flow
    from prefect.states import Scheduled

    @flow(name=f"Probe ({uuid4().hex[:6]})")
    def probe() -> None:  # never called: it only names the runs' flow
        pass

    return client.create_flow_run(flow=probe, tags=list(tags), state=Scheduled())


def running_since(api_url: str, run, seconds: int) -> None:
    """A Running event for ``run`` that occurred ``seconds`` ago, as the server emits it,
    then an event of now: the server's triggers keep time by the events they last saw."""
    import httpx

    related = [{"prefect.resource.id": f"prefect.flow.{run.flow_id}",
                "prefect.resource.role": "flow"}]  # fmt: skip
    related += [{"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
                for tag in run.tags]  # fmt: skip
    event = {
        "id": str(uuid4()),
        "occurred": (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(),
        "event": "prefect.flow-run.Running",
        "resource": {"prefect.resource.id": f"prefect.flow-run.{run.id}"},
        "related": related,
    }
    now = {"id": str(uuid4()), "occurred": datetime.now(UTC).isoformat(), "event": "airnub.tick",
           "resource": {"prefect.resource.id": "airnub.test"}}  # fmt: skip
    for sent in (event, now):
        httpx.post(f"{api_url}/events", json=[sent], timeout=30).raise_for_status()


def test_late_and_running_longer_rules_notify(client, departments, monkeypatch, prefect_api):
    from prefect.states import Late

    write_rules(departments[DEPT], "rules: [{rule: late},"
                " {rule: running-longer, minutes: 1, stage: ingestion}]\n")  # fmt: skip
    with webhook_receiver("/hook/T0KEN") as (url, received):
        save_alert_blocks(monkeypatch, url, DEPT)
        automation_sync.sync(client, [DEPT])
        late = flow_run_tagged(client, DEPT, "processing")
        client.set_flow_run_state(late.id, Late(), force=True)
        elsewhere = flow_run_tagged(client, DEPT, "processing")  # another stage: no alert
        running_since(prefect_api, elsewhere, seconds=30)
        slow = flow_run_tagged(client, DEPT, "ingestion")
        # Half its minute is over already. Prefect looks again when the minute ends, or a
        # minute after the automation was made; it forgets a window 60 s after its end.
        running_since(prefect_api, slow, seconds=30)
        bodies = []
        for _ in range(2):
            try:
                bodies.append(received.get(timeout=NOTIFY_DEADLINE)["body"])
            except queue.Empty:
                pytest.fail(f"only {len(bodies)} notifications within {NOTIFY_DEADLINE} s")
    [late_body] = [b for b in bodies if "is Late" in b]
    [slow_body] = [b for b in bodies if "Running for more than 1 minute." in b]
    assert f"Flow run {late.name} ({late.id})" in late_body
    assert f"Flow run {slow.name} ({slow.id})" in slow_body
    assert elsewhere.name not in "".join(bodies)


def test_retiring_a_department_deletes_only_its_managed_automations(client, departments,
                                                                    monkeypatch):  # fmt: skip
    from prefect.events.schemas.automations import AutomationCore

    save_alert_blocks(monkeypatch, "https://hooks.example.com/T/x", DEPT, OTHER)
    automation_sync.sync(client, [DEPT, OTHER])
    [made] = client.read_automations_by_name(FAILS)
    by_hand = automation_sync.core_of(made).model_copy(update={"name": FOREIGN, "tags": [DEPT]})
    client.create_automation(AutomationCore.model_validate(by_hand.model_dump()))
    assert automation_sync.retire(client, DEPT, dry_run=True) == [("delete automation", FAILS)]
    assert FAILS in names(client)
    assert automation_sync.retire(client, DEPT) == [("delete automation", FAILS)]
    assert names(client) == sorted([FOREIGN, OTHER_FAILS])
    assert automation_sync.retire(client, DEPT) == []
