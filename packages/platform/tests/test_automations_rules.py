"""The alert rules of ``configs/automations.yaml``, without a server: what a hostile file
gets (one line per problem, naming the file and the field), the automations they become,
and the notification templates, whose fixed text a display name can never turn into code."""

import sys
from datetime import timedelta
from uuid import uuid4

import jinja2
import pytest
from airnub_core import config, conventions
from airnub_platform import automation_sync, lost_runs
from airnub_platform.automation_sync import Wanted
from hypothesis import given
from hypothesis import strategies as st

DEPT = "dept_alerts_rules"


@pytest.fixture
def department(make_department):
    for name in [m for m in sys.modules if m.split(".")[0].startswith(DEPT)]:
        del sys.modules[name]  # each test's department is a new folder
    folder = make_department(DEPT, {"ingestion": ["feed"]}, display_name="Rules {{Team}}")
    return folder / "src" / DEPT


def write_rules(package, text: str):
    path = package / "configs" / "automations.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_without_a_file_a_department_gets_the_failure_rule_only(department):
    assert list(automation_sync.desired([DEPT])) == [f"airnub {DEPT}: failed-or-crashed"]


def test_rules_become_named_automations_of_the_department(department):
    write_rules(
        department,
        "rules:\n  - rule: late\n  - rule: running-longer\n    minutes: 30\n    stage: ingestion\n"
        "  - rule: running-longer\n    minutes: 90\n",
    )
    wanted = automation_sync.desired([DEPT])
    assert sorted(wanted) == sorted(
        conventions.automation_name(DEPT, rule)
        for rule in ("failed-or-crashed", "late", "running-longer-ingestion-30m",
                     "running-longer-any-stage-90m")
    )  # fmt: skip
    longer = wanted[conventions.automation_name(DEPT, "running-longer-ingestion-30m")]
    made = automation_sync.automation(longer, uuid4())
    assert made.tags == ["airnub-managed", DEPT]
    trigger = made.trigger.model_dump(mode="json")
    assert trigger["posture"] == "Proactive" and trigger["within"] == 1800
    tags = {spec["prefect.resource.id"] for spec in trigger["match_related"]}
    assert tags == {f"prefect.tag.{DEPT}", "prefect.tag.ingestion"}
    # the same from any checkout: a plan run elsewhere must not see an update
    assert f"({DEPT}/configs/automations.yaml)" in (made.description or "")
    assert str(department) not in (made.description or "")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("rules:\n  - rule: forgotten\n", "rules.0"),
        ("rules:\n  - rule: running-longer\n    minutes: 0\n", "rules.0.running-longer.minutes"),
        ("rules:\n  - rule: running-longer\n    minutes: '30'\n", "rules.0.running-longer.minutes"),
        ("rules:\n  - rule: running-longer\n    minutes: 99999999\n", "minutes"),
        ("rules:\n  - rule: running-longer\n    minutes: 5\n    stage: nowhere\n", "stage"),
        ("rules:\n  - rule: late\n    minutes: 5\n", "rules.0.late.minutes"),
        ("rules:\n  - rule: late\n  - rule: late\n", "rules.1"),
        ("rules: late\n", "rules"),
        ("alerts: []\n", "alerts"),
        ("- rule: late\n", "top level must be a mapping"),
        ("rules: [\n", "invalid YAML"),
        ("rules:\n  - !!python/object:os.system 'id'\n", "invalid YAML"),
    ],
)
def test_a_hostile_rules_file_is_refused_in_one_line_naming_file_and_field(department, text, field):
    path = write_rules(department, text)
    with pytest.raises(config.ConfigError) as refused:
        automation_sync.desired([DEPT])
    message = str(refused.value)
    assert "\n" not in message and message.startswith(str(path)) and field in message


def test_a_rules_path_that_is_a_folder_or_a_dangling_link_is_refused(department):
    path = department / "configs" / "automations.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(department / "nowhere.yaml")
    with pytest.raises(config.ConfigError, match=r"automations\.yaml: config file not found"):
        automation_sync.desired([DEPT])
    path.unlink()
    path.mkdir()
    with pytest.raises(config.ConfigError, match=r"automations\.yaml: not a regular file"):
        automation_sync.desired([DEPT])


def test_every_department_is_validated_and_every_problem_listed(department, make_department):
    other = "dept_alerts_rules_two"
    write_rules(make_department(other, {}) / "src" / other, "rules: [{rule: late, x: 1}]\n")
    write_rules(department, "rules: [{rule: nope}]\n")
    with pytest.raises(config.ConfigError) as refused:
        automation_sync.desired([DEPT, other])
    lines = str(refused.value).splitlines()
    assert len(lines) == 2 and DEPT in lines[0] and other in lines[1]


def render(template: str) -> str:
    """A template rendered the way Prefect's server renders an action's (Jinja, sandboxed)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(undefined=jinja2.ChainableUndefined)
    state = {"name": "Failed", "message": "boom"}
    flow_run = {"name": "brave-otter", "id": "1234", "state": state}
    return environment.from_string(template).render(flow_run=flow_run, flow={"name": "F"})


def test_the_message_names_the_run_flow_department_state_and_owners(make_department):
    owned = {"airnub.owners": "@acme/data @alice", "airnub.alerts": "https://hooks.x/T/secret"}
    make_department("dept_alerts_owned", {}, display_name="Owned Team", owners=owned)
    subject, body = automation_sync.message("dept_alerts_owned", "has failed or crashed")
    assert (
        render(subject)
        == "[airnub] Owned Team (dept_alerts_owned): flow run brave-otter of F is Failed"
    )
    text = render(body)
    shown = ("brave-otter (1234) of flow F has failed", "State: Failed: boom",
                "Owners: @acme/data @alice", "Alert channel: https://hooks.x/...")  # fmt: skip
    for expected in shown:
        assert expected in text
    assert "secret" not in text  # the channel's path may hold a token


@given(st.text(min_size=1, max_size=60))
def test_fixed_text_renders_as_itself_whatever_it_holds(text):
    assert render(automation_sync._literal(text)) == text


def test_a_display_name_with_template_braces_stays_text(department):
    wanted = Wanted(conventions.automation_name(DEPT, "late"), DEPT, None, "convention")
    made = automation_sync.automation(wanted, uuid4())
    body = made.actions[0].model_dump()["body"]
    assert "Department: Rules {{Team}} (dept_alerts_rules)" in render(body)


@given(st.permutations(sorted(lost_runs.ENDINGS)), st.permutations(["b", "a", "c"]))
def test_the_diff_does_not_see_the_order_of_sets_or_tags(order, tags):
    made = lost_runs.lost_run_automation(timedelta(seconds=10)).model_copy(update={"tags": tags})
    dumped = made.model_dump(mode="json", include=automation_sync.CORE_FIELDS)
    reread = {**dumped, "trigger": {**dumped["trigger"], "id": str(uuid4()),
                                    "expect": [*order, lost_runs.HEARTBEAT]}}  # fmt: skip
    assert automation_sync.canonical(reread) == automation_sync.comparable(made)
