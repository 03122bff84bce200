"""The screenshot script's offline parts: what a hostile notification can do to the page it
is rendered in, what the scratch commands inherit, and that a failed run never leaves half
a set of images. No browser and no server here (the script itself runs them)."""

import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the script, beside us
import screenshots


class Elements(HTMLParser):
    """The element names of a page, as a browser's parser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.found.append(tag)


def elements(page: str) -> list[str]:
    parser = Elements()
    parser.feed(page)
    return parser.found


EXPECTED = ["html", "head", "meta", "title", "style", "body", "div", "main", "h3", "pre",
            "code", "p", "code"]  # fmt: skip


@given(st.text(max_size=200), st.text(max_size=400), st.text(max_size=40))
def test_no_notification_text_becomes_markup(subject, body, block):
    """A flow run's error message is the source's text: it can carry any HTML."""
    page = screenshots.notification_page({"subject": subject, "body": body, "block": block})
    assert elements(page) == EXPECTED


def test_a_script_in_a_notification_is_shown_as_text():
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    page = screenshots.notification_page({"subject": hostile, "body": hostile, "block": "b"})
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert elements(page) == EXPECTED


def test_a_notification_without_the_expected_keys_still_renders():
    assert elements(screenshots.notification_page({})) == EXPECTED


def test_the_plan_is_rendered_as_github_renders_its_tables():
    page = screenshots.plan_page("### Variables\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert {"h3", "table", "th", "td"} <= set(elements(page))


def test_the_scratch_commands_never_inherit_the_callers_prefect_or_airnub_settings(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("PREFECT_API_URL", "https://api.prefect.cloud/api/accounts/prod")
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_not-for-a-screenshot")
    monkeypatch.setenv("AIRNUB_DATA_ROOT", "s3://production-bucket/data")
    monkeypatch.setenv("AIRNUB_ALERT_WEBHOOK_DEPT_SCRATCH", "https://hooks.slack.com/real")
    env = screenshots.scratch_env(tmp_path, "http://127.0.0.1:9/alerts")
    assert "PREFECT_API_URL" not in env and "PREFECT_API_KEY" not in env
    assert env["AIRNUB_DATA_ROOT"] == str(tmp_path / "data")
    assert env["PREFECT_HOME"] == str(tmp_path / "home")
    assert env["AIRNUB_ALERT_WEBHOOK_DEPT_SCRATCH"] == "http://127.0.0.1:9/alerts"
    assert "pnu_not-for-a-screenshot" not in env.values()


def test_publishing_a_partial_set_refuses_and_leaves_the_old_images(tmp_path):
    staged, out = tmp_path / "staged", tmp_path / "images"
    staged.mkdir()
    out.mkdir()
    for name in screenshots.SHOTS:
        (out / name).write_bytes(b"old")
    for name in screenshots.SHOTS[:-1]:
        (staged / name).write_bytes(b"new")
    with pytest.raises(RuntimeError, match=f"not made: {screenshots.SHOTS[-1]}"):
        screenshots.publish(staged, out)
    assert all((out / name).read_bytes() == b"old" for name in screenshots.SHOTS)
    assert sorted(p.name for p in out.iterdir()) == sorted(screenshots.SHOTS)


def test_publishing_a_whole_set_replaces_each_image_and_leaves_no_partial_file(tmp_path):
    staged, out = tmp_path / "staged", tmp_path / "images"
    staged.mkdir()
    for name in screenshots.SHOTS:
        (staged / name).write_bytes(name.encode())
    made = screenshots.publish(staged, out)
    assert made == [out / name for name in screenshots.SHOTS]
    assert sorted(p.name for p in out.iterdir()) == sorted(screenshots.SHOTS)
    assert all((out / name).read_bytes() == name.encode() for name in screenshots.SHOTS)
