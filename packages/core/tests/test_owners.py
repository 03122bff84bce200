"""A department's owners and alert channel: validated in one line naming the file and the
field, read from installed metadata (a worker has no pyproject.toml), tagged on its flows."""

import pytest
from airnub_core import conventions, owners
from airnub_core.conventions import ConventionError, Identity
from airnub_platform.testing import write_department_project
from hypothesis import given
from hypothesis import strategies as st

DEPT = "dept_owned"
FIELD = '[project.entry-points."airnub.owners"] dept_owned'
ALERTS = '[project.entry-points."airnub.alerts"] dept_owned'

_name = st.from_regex(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,10}", fullmatch=True)
_team = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,10}", fullmatch=True)
handles = st.one_of(
    _name.map(lambda n: f"@{n}"), st.tuples(_name, _team).map(lambda p: f"@{p[0]}/{p[1]}")
)


def refusal(owners_value: object, alerts: object = "#alerts") -> str:
    with pytest.raises(ConventionError) as caught:
        owners.parse(DEPT, owners_value, alerts)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"packages/{DEPT}/pyproject.toml: ")
    return message


@given(st.lists(handles, min_size=1, max_size=5, unique_by=str.lower))
def test_valid_handles_read_back_as_written(written):
    found = owners.parse(DEPT, " ".join(written), "#team-alerts")
    assert found.owners == tuple(written)


@given(handles, st.sampled_from([" x", "\n@b", "$(id)", "`id`", ";rm", "\x1b[2J", "\u2028"]))
def test_a_handle_with_anything_else_in_it_is_refused(handle, extra):
    # joined into one argument, as a hostile --owner would give it
    with pytest.raises(ConventionError, match=r"^--owner: "):
        owners.check_owners([handle + extra], "--owner")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", f"{FIELD}: empty: name at least one owner"),
        ("alice", f"{FIELD}: 'alice' is not a GitHub user (@name) or team"),
        ("@a--b", "is not a GitHub user"),
        ("@-a", "is not a GitHub user"),
        ("@a/b/c", "is not a GitHub user"),
        ("@$(id)", "'@$(id)' is not a GitHub user"),
        ("@Team @team", f"{FIELD}: '@team' is named twice"),
        ("@a\n@b", f"{FIELD}: write the handles on one line, one space apart"),
        ("@a  @b", "one space apart"),
        (["@a"], f"{FIELD}: must be a string"),
        (None, f"{FIELD}: missing"),
        (" ".join(f"@u{n}" for n in range(21)), "more than 20 owners"),
    ],
)
def test_bad_owners_are_one_line_naming_the_file_and_field(value, why):
    assert why in refusal(value)


@pytest.mark.parametrize(
    ("channel", "why"),
    [
        ("alerts", "not a #channel or an http(s) URL with a host"),
        ("#Alerts", "'#Alerts' is not a #channel"),
        ("#a b", "is not a #channel"),
        ("#", "is not a #channel"),
        ("ftp://h/x", "not a #channel or an http(s) URL with a host"),
        ("https://h:99999/x", "not a #channel or a valid http(s) URL"),
        ("https://h/x y", "no spaces or control characters"),
        (None, f"{ALERTS}: missing"),
    ],
)
def test_bad_channels_are_one_line_naming_the_field(channel, why):
    message = refusal("@a", channel)
    assert ALERTS in message and why in message


def test_a_token_in_the_channel_is_never_echoed():
    message = refusal("@a", "https://bot:s3cr3t-token@hooks.example.com/x")
    assert "s3cr3t" not in message and "user name or password" in message
    found = owners.parse(DEPT, "@a", "https://hooks.example.com/services/T0/B0/s3cr3t")
    assert "s3cr3t" not in found.shown_alerts


def test_installed_metadata_gives_the_owner_tags(tmp_path, monkeypatch):
    declared = {"airnub.owners": "@acme/data @bob", "airnub.alerts": "#data-alerts"}
    folder = write_department_project(tmp_path, DEPT, "Owned Team", {}, owners=declared)
    assert owners.declared(DEPT) is None  # not on the path: not installed
    monkeypatch.syspath_prepend(str(folder / "src"))
    found = owners.declared(DEPT)
    assert found is not None and found.alerts == "#data-alerts"
    assert conventions.owner_tags(DEPT) == ["owner:@acme/data", "owner:@bob"]
    assert Identity(DEPT, "ingestion", "feed").tags == [
        DEPT, "ingestion", "feed", "owner:@acme/data", "owner:@bob"
    ]  # fmt: skip


def test_invalid_installed_metadata_is_refused_not_tagged(tmp_path, monkeypatch):
    declared = {"airnub.owners": "@acme/data $(id)", "airnub.alerts": "#data-alerts"}
    folder = write_department_project(tmp_path, DEPT, "Owned Team", {}, owners=declared)
    monkeypatch.syspath_prepend(str(folder / "src"))
    with pytest.raises(ConventionError, match=r"dept_owned: '\$\(id\)' is not a GitHub user"):
        _ = Identity(DEPT, "ingestion").tags


def test_an_alert_channel_without_owners_is_refused(tmp_path, monkeypatch):
    folder = write_department_project(
        tmp_path, DEPT, "Owned Team", {}, owners={"airnub.alerts": "#data-alerts"}
    )
    monkeypatch.syspath_prepend(str(folder / "src"))
    with pytest.raises(ConventionError) as caught:
        owners.declared(DEPT)
    assert str(caught.value) == f"packages/{DEPT}/pyproject.toml: {FIELD}: missing"
