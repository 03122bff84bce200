"""Secrets are found wherever they hide (issue 10, item 2): in settings files, hand-made
Variables and flow parameters they are refused naming ``origin:key``, never the value;
credentials in URLs are redacted from every log line, stored parameter and source error."""

import io
import logging
import re
import sys
import textwrap

import pytest
from airnub_core import config
from airnub_core.config import ConfigError
from airnub_core.flows import ConventionFlow
from airnub_core.secrets_scan import find_secrets, redact
from airnub_core.sources import SourceError, TransientSourceError
from airnub_platform.cli import app
from airnub_platform.testing import department_pyproject, published_anywhere
from typer.testing import CliRunner

SECRET = "s3cr3t-Zq81-never-shown"
DEPT = "dept_hideout"

# Settings that hide a secret, and the dotted key each must be reported under.
HIDDEN = [
    ({"url": f"https://user:{SECRET}@host.example/x"}, "url"),
    ({"pages": [f"https://h.example/x?api_key={SECRET}"]}, "pages.0"),
    ({"url": f"https://h.example/x?city=a&X-Amz-Signature={SECRET}"}, "url"),
    ({"url": f"https://h.example/x?key={SECRET}"}, "url"),
    ({"url": f"https://h.example/cb#access_token={SECRET}"}, "url"),
    ({"url": f"https://ghp{SECRET}@github.com/x"}, "url"),  # a token as the user
    ({"headers": {"x-api-key": SECRET}}, "headers.x-api-key"),
    ({"headers": {"Authorization": f"Bearer {SECRET}"}}, "headers.Authorization"),
    ({"bearer": SECRET}, "bearer"),
    ({"apiKey": SECRET}, "apiKey"),
    ({"APIKey": SECRET}, "APIKey"),
    ({"clients": [{"clientSecret": SECRET}]}, "clients.0.clientSecret"),
    ({"password": [SECRET, "other"]}, "password"),
    ({"credentials": {"user": "bob", "pass": SECRET}}, "credentials.user"),
    ({"db": {"password": 123456}}, "db.password"),
    ({"password2": SECRET}, "password2"),
    ({"AWS_SECRET_ACCESS_KEY": SECRET}, "AWS_SECRET_ACCESS_KEY"),
    ({"api_key_value": SECRET}, "api_key_value"),
    ({"steps": [["x", {"auth": SECRET}]]}, "steps.0.1.auth"),
    ({"extra_headers": [f"Basic {SECRET}"]}, "extra_headers.0"),
    ({f"https://bob:{SECRET}@h.example": 1}, "https://***@h.example"),  # a URL as a key
    # found by a hostile review: no scheme, a port out of range, ";" between parameters,
    # a short token with punctuation, words the first rules missed
    ({"sources": [f"//alice:{SECRET}@127.0.0.1:8000/x.csv"]}, "sources.0"),
    ({"url": f"http://alice:{SECRET}@127.0.0.1:65536/x.csv"}, "url"),
    ({"url": f"https://h.example/x.csv;api_key={SECRET}"}, "url"),
    ({"url": f"https://h.example/x?a=1;token={SECRET}"}, "url"),
    ({"headers": ["Authorization: Bearer abc.def-ghi_jkl"]}, "headers.0"),
    ({"pin": 1234}, "pin"),
    ({"passcode": "0000"}, "passcode"),
    ({"creds": {"user": "bob"}}, "creds.user"),
    ({"sessionid": SECRET}, "sessionid"),
]
# Names that describe a secret or something else, and values that only look alike.
PLAIN = {
    "records_key": "results",
    "next_key": "next",
    "key": "station_id",
    "token_count": 3,
    "max_tokens": 100,
    "token_url": "https://auth.example/token",
    "password_min_length": 8,
    "secret_name": "prod-db",
    "api_key_block": "dept-x-api-key",
    "credentials": {"username_block": "a", "password_block": "b"},
    "auth": True,
    "password": None,
    "title": "Basic statistics",
    "note": "Bearer of news",
    "url": "https://api.example-air-quality.org/v2/readings?city=harbourtown&page=2",
    "repo": "ssh://git@github.com/org/repo.git",
    "mail": "mailto:someone@example.org",
    # settings a hostile review found refused: short values and numbers under names that
    # are secret only when they hold a real token, pagination cursors, a plain user name
    "auth_mode": {"auth": "none"},
    "signature": "v4",
    "tokens": 4096,
    "context_tokens": 4096,
    "stop_tokens": ["###"],
    "session_key": "created",
    "cookies": ["a"],
    "mirror": "https://someuser12@h.example/x",
    "feed": "https://h.example/x?pageToken=abc&nextToken=def",
}


@pytest.mark.parametrize(("data", "key"), HIDDEN)
def test_a_secret_is_found_by_its_key_and_never_shown(data, key):
    findings = list(find_secrets(data))
    assert findings and findings[0].key == key
    assert SECRET not in repr(findings)


def test_names_and_values_that_only_look_like_secrets_pass():
    assert list(find_secrets(PLAIN)) == []


def test_redact_masks_userinfo_secret_parameters_and_header_values():
    text = (
        f"GET https://bob:{SECRET}@h.example/x?api_key={SECRET}&city=a#access_token={SECRET}"
        f" failed: HTTP 500 (Authorization: Bearer {SECRET})."
    )
    assert redact(text) == (
        "GET https://***@h.example/x?api_key=***&city=a#access_token=***"
        " failed: HTTP 500 (Authorization: Bearer ***)."
    )
    assert redact("https://h.example/x?city=a and Basic statistics") == (
        "https://h.example/x?city=a and Basic statistics"
    )
    # whatever urlsplit makes of it: no scheme, a bad port, file:////, ";", an encoded name
    assert redact(f"//a:{SECRET}@h:99999/x file:////a:{SECRET}@h/y") == (
        "//***@h:99999/x file:////***@h/y"
    )
    assert redact(f"HTTPS://h/x;api_key={SECRET}?api%5Fkey={SECRET}") == (
        "HTTPS://h/x;api_key=***?api%5Fkey=***"
    )


def test_source_errors_redact_their_own_message():
    url = f"http://bob:{SECRET}@127.0.0.1:9/x?token={SECRET}"
    for error in (SourceError(f"{url}: HTTP 500"), TransientSourceError(f"{url}: timed out")):
        assert SECRET not in str(error) and SECRET not in repr(error)
        assert "http://***@127.0.0.1:9/x?token=***" in str(error)


def test_every_log_record_is_redacted_whatever_handler_writes_it():
    """The redaction sits where records are made, so a handler added by anyone gets it,
    for the message, its arguments and the traceback."""
    assert ConventionFlow  # importing the flows module installs the redaction
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("airnub.test_secrets")
    logger.addHandler(handler)
    try:
        url = f"https://bob:{SECRET}@h.example/x"
        logger.warning("reading %s", url)
        logger.warning(f"reading {url}?api_key={SECRET}")
        try:
            raise RuntimeError(f"could not read {url}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert SECRET not in written
    assert written.count("https://***@h.example/x") == 3, written  # message, args, traceback


# --- refused by the loader, `check` and `variables sync` -------------------------------


def write_config(folder, name, text):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("overlay", [False, True])
def test_the_loader_refuses_a_credentialed_url_naming_file_and_key(tmp_path, overlay):
    base = write_config(tmp_path, "feed.yaml", "url: https://h.example/x\n")
    hostile = f"fetch:\n  url: https://bob:{SECRET}@h.example/x\n"
    target = write_config(tmp_path, "feed.qa.yaml" if overlay else "feed.yaml", hostile)
    with pytest.raises(ConfigError) as error:
        config.load_yaml_config(base, "qa")
    message = str(error.value)
    assert message.startswith(f"{target}:fetch.url: a URL with a password in it")
    assert SECRET not in message and "\n" not in message


@pytest.fixture
def hideout(make_department, tmp_path, monkeypatch):
    """A throwaway department in a workspace of its own, whose one category reads a
    ``Source`` URL and logs it with credentials built in code, then fails."""
    folder = make_department(DEPT, {"ingestion": ["feed"]})
    (folder.parents[1] / "uv.lock").touch()
    (folder.parents[1] / "pyproject.toml").write_text(
        '[tool.airnub]\nenvironments = ["local", "prod"]\n'
    )
    (folder / "pyproject.toml").write_text(PYPROJECT)
    package = folder / "src" / DEPT
    module = package / "ingestion" / "feed" / f"make_feed_flow_{DEPT}.py"
    module.write_text(textwrap.dedent(FEED))
    configs = package / "configs" / "variables" / "ingestion"
    (configs / "feed.yaml").write_text("url: https://h.example/x\n")
    monkeypatch.chdir(folder.parents[1])
    forget_modules()  # each test gets this test's files, not a former test's import
    yield configs
    forget_modules()


def forget_modules():
    for name in [n for n in sys.modules if n == DEPT or n.startswith(f"{DEPT}.")]:
        del sys.modules[name]


PYPROJECT = department_pyproject(DEPT, "Hideout")
FEED = f"""
from airnub_core.config import Settings, Source
from airnub_core.flows import category_flow, settings_for
from airnub_core.sources import SourceError
from prefect import get_run_logger

PASSWORD = {SECRET!r}  # as if read from a Secret block


class FeedSettings(Settings):
    url: Source


@category_flow
def make_feed(overrides: dict | None = None) -> dict:
    settings = settings_for(FeedSettings, __name__, overrides)
    url = settings.url.replace("://", f"://bob:{{PASSWORD}}@", 1)
    logger = get_run_logger()
    logger.info("reading %s", url)
    try:
        raise RuntimeError(f"connection reset by {{url}}?api_key={{PASSWORD}}")
    except RuntimeError:
        logger.exception("retrying")
    raise SourceError(f"{{url}}: HTTP 500")
"""


def test_check_and_variables_sync_refuse_a_secret_with_exit_1(hideout):
    (hideout / "feed.yaml").write_text(f"url: https://h.example/x?access_token={SECRET}\n")
    (hideout / "feed.prod.yaml").write_text(f"headers:\n  Authorization: Bearer {SECRET}\n")
    for command in (["check", DEPT], ["variables", "sync", DEPT, "--dry-run"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1, result.output
        assert SECRET not in result.output
        # check shows "file: key", sync "file:key"
        assert re.search(r"feed\.yaml: ?url: a URL whose query parameter 'access_token'",
                         result.output), result.output  # fmt: skip
    result = CliRunner().invoke(app, ["check", DEPT])
    assert "feed.prod.yaml: headers.Authorization: looks like a secret" in result.output


# --- refused at run time, redacted in everything the run publishes ----------------------


def feed_flow():
    import importlib

    module = importlib.import_module(f"{DEPT}.ingestion.feed.make_feed_flow_{DEPT}")
    return module.make_feed


@pytest.mark.usefixtures("prefect_api")
def test_a_run_logs_and_fails_with_credentials_that_never_reach_the_api(hideout):
    state = feed_flow()(return_state=True)
    assert state.is_failed()
    published = published_anywhere(state)
    assert "reading https://***@h.example/x" in published
    assert "connection reset by https://***@h.example/x?api_key=***" in published
    assert SECRET not in published
    assert SECRET not in state.message
    assert "https://***@h.example/x: HTTP 500" in state.message


@pytest.mark.usefixtures("prefect_api")
def test_a_credentialed_source_in_flow_parameters_is_refused_and_not_stored(hideout):
    url = f"https://bob:{SECRET}@h.example/x"
    state = feed_flow()(overrides={"url": url}, return_state=True)
    assert state.is_failed()
    assert "flow parameters:url: a URL with a password in it" in state.message
    assert SECRET not in state.message
    assert SECRET not in published_anywhere(state)  # the stored parameters are redacted


@pytest.mark.usefixtures("prefect_api")
def test_a_hand_made_variable_with_a_secret_fails_the_run_naming_it(hideout):
    from airnub_core.conventions import Identity
    from prefect.variables import Variable

    name = Identity(DEPT, "ingestion", "feed").variable_name()
    Variable.set(name, {"url": "https://h.example/x", "x-api-key": SECRET}, overwrite=True)
    try:
        state = feed_flow()(return_state=True)
    finally:
        Variable.unset(name)
    assert state.is_failed()
    assert f"Prefect Variable {name!r}:x-api-key: looks like a secret" in state.message
    assert SECRET not in state.message and SECRET not in published_anywhere(state)


def test_a_source_field_refuses_credentials_however_it_is_fed(hideout):
    import importlib

    module = importlib.import_module(f"{DEPT}.ingestion.feed.make_feed_flow_{DEPT}")
    with pytest.raises(ConfigError) as error:
        config.validate(module.FeedSettings, {"url": f"https://b:{SECRET}@h.x/"}, "here", DEPT)
    assert str(error.value).startswith("here: url: Value error, a URL with a password in it")
    assert SECRET not in str(error.value)
