"""Fuzzing the secret detector and the config loader (issue 10, item 8): bounded and
repeatable (the airnub hypothesis profile). Each property holds, or fails as a one-line
error naming the file."""

import string

import pytest
import yaml
from airnub_core import config
from airnub_core.config import ConfigError
from airnub_core.secrets_scan import find_secrets, is_strict_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# A value mark that no key, index or fixed message text holds: seeing it means a leak.
MARK = "§"
SPELLINGS = [
    "password", "passwd", "Password", "db_password", "DB-PASSWORD", "dbPassword", "password2",
    "passwords", "secret", "client_secret", "clientSecret", "token", "api_token", "accessToken",
    "ACCESS_TOKEN", "api_key", "apiKey", "APIKey", "x-api-key", "X-Api-Key", "apikey",
    "private.key", "secret_access_key", "Authorization", "authorization", "auth", "bearer",
    "credentials", "cookie", "signature", "passphrase", "api_key_value",
]  # fmt: skip
# Names no rule reads as a secret, for the structure around a planted one.
SAFE_KEYS = st.sampled_from(["alpha", "records_key", "next_key", "token_count", "url", "key",
                             "max_tokens", "secret_name", "password_min_length"])  # fmt: skip
SAFE_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(["x", "next"]))

marked_text = st.text(max_size=20).map(lambda text: MARK + text)
secret_text = st.text(string.ascii_letters + string.digits, min_size=8, max_size=16).map(
    lambda text: f"{MARK}{text}9"
)
credentialed_url = st.one_of(
    st.builds("https://bob:{}@h.example/x".format, secret_text),
    st.builds("https://h.example/x?api_key={}&city=a".format, secret_text),
    st.builds("http://127.0.0.1:8080/p#access_token={}".format, secret_text),
    st.builds("Bearer {}".format, secret_text),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), marked_text,
                    credentialed_url)  # fmt: skip
keys = st.one_of(st.text(string.ascii_letters + "-_. ", max_size=12), st.sampled_from(SPELLINGS),
                 st.integers())  # fmt: skip
yaml_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@given(yaml_like)
def test_the_detector_never_raises_nor_shows_a_value(data):
    for finding in find_secrets(data):
        assert MARK not in finding.key and MARK not in finding.why
        assert "\n" not in finding.why
    try:
        config.refuse_secrets(data, "here.yaml")
    except ConfigError as error:
        message = str(error)
        assert message.startswith("here.yaml:") and MARK not in message


@st.composite
def planted(draw):
    """(data, the dotted key the secret must be reported under): a secret under any
    spelling, as a scalar, a list or a mapping, at any depth of mappings and lists."""
    name = draw(st.sampled_from(SPELLINGS))
    shape = draw(st.sampled_from(["scalar", "list", "mapping", "number"]))
    secret = draw(secret_text)
    value, tail = {
        "scalar": (secret, ""),
        "list": ([secret, secret], ""),
        "mapping": ({"user": secret}, ".user"),
        # a number is a secret only under a password-like name (``pin: 1234``, not
        # ``tokens: 4096``)
        "number": (draw(st.integers(min_value=1)) if is_strict_name(name) else secret, ""),
    }[shape]
    data, path = {name: value}, [name]
    for wrapper in draw(st.lists(st.sampled_from(["map", "list"]), max_size=6)):
        noise = draw(st.dictionaries(SAFE_KEYS, SAFE_VALUES, max_size=3))
        if wrapper == "map":
            key = draw(SAFE_KEYS)
            data, path = {**noise, key: data}, [key, *path]
        else:
            before = draw(st.lists(SAFE_VALUES, max_size=3))
            data, path = [*before, data, noise], [str(len(before)), *path]
    return data, ".".join(path) + tail


@given(planted())
def test_a_planted_secret_is_found_at_any_depth_under_any_spelling(case):
    data, key = case
    assert [finding.key for finding in find_secrets(data)] == [key]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=200), yaml_like.map(yaml.safe_dump)))
def test_the_loader_returns_a_mapping_or_one_line_naming_the_file(tmp_path, text):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    for load in (config.read_yaml, lambda p: config.load_yaml_config(p, "local")[1]):
        try:
            data = load(path)
        except ConfigError as error:
            message = str(error)
            assert message.startswith(str(path)) and "\n" not in message, message
            assert MARK not in message.split("invalid YAML", 1)[0]
        else:
            assert isinstance(data, dict)


def test_hostile_yaml_is_a_one_line_error_or_scanned_once(tmp_path):
    """Found by the fuzz pass: dates that do not exist and deep nesting escaped as raw
    ValueError / RecursionError; a node that contains itself looped the detector."""
    path = tmp_path / "hostile.yaml"
    for text in ("when: 2001-02-30\n", "deep: " + "[" * 5000 + "\n"):
        path.write_text(text)
        try:
            config.load_yaml_config(path, "local")
        except ConfigError as error:
            assert str(error).startswith(f"{path}: invalid YAML: ")
            assert "\n" not in str(error)
        else:
            raise AssertionError(f"{text[:20]!r} was accepted")
    path.write_text("loop: &a [*a, {password: hunter2}]\nlaughs: &b [*a, *a, *a, *a]\n")
    with pytest.raises(ConfigError) as error:
        config.load_yaml_config(path, "local")
    assert str(error.value).startswith(f"{path}:loop.1.password: looks like a secret")
    assert "hunter2" not in str(error.value)
