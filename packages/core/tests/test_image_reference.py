"""The one rule naming a department's image: REGISTRY/<distribution name>:TAG."""

import re

import pytest
from airnub_core.conventions import (
    ConventionError,
    check_registry,
    check_tag,
    image_reference,
)
from hypothesis import given
from hypothesis import strategies as st

# What a container engine accepts as a reference (the distribution reference grammar,
# lowercase hosts): every reference the rule makes must parse as one.
REFERENCE = re.compile(
    r"(?P<name>[a-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+)"
    r":(?P<tag>[\w][\w.-]{0,127})"
)


def test_the_image_of_a_department():
    assert (
        image_reference("dept_project_gamma", "ghcr.io/acme", "3f2a9c")
        == "ghcr.io/acme/dept-project-gamma:3f2a9c"
    )
    assert image_reference("dept_x", "127.0.0.1:5000", "v1.2") == "127.0.0.1:5000/dept-x:v1.2"


@pytest.mark.parametrize(
    ("registry", "why"),
    [
        ("", "is empty"),
        ("https://ghcr.io/acme", "must not have a scheme"),
        ("user:secret-token@ghcr.io", "must not hold a user name or password"),
        ("GHCR.io/Acme", "must be lowercase"),
        ("ghcr.io/acme ", "whitespace"),
        ("ghcr.io/ac\nme", "whitespace"),
        ("ghcr", "must be host[:port][/path]"),
        ("ghcr.io:0", "must be host[:port][/path]"),
        ("ghcr.io:65536", "must be host[:port][/path]"),
        ("ghcr.io/", "must be host[:port][/path]"),
        ("ghcr.io//acme", "must be host[:port][/path]"),
        ("ghcr.io/acme..x", "must be host[:port][/path]"),
        ("-ghcr.io", "must be host[:port][/path]"),
        ("ghcr.io/" + "a" * 300, "too long"),
    ],
)
def test_a_hostile_registry_is_one_line_naming_it(registry, why):
    with pytest.raises(ConventionError) as error:
        image_reference("dept_x", registry, "v1")
    message = str(error.value)
    assert message.startswith("registry ")
    assert why in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "registry", ["robot:s3cr3t@ghcr.io", "https://robot:s3cr3t@ghcr.io/acme", "s3cr3t@ghcr.io"]
)
def test_userinfo_is_refused_without_echoing_any_of_it(registry):
    with pytest.raises(ConventionError, match="must not hold a user name or password") as error:
        check_registry(registry)
    assert "s3cr3t" not in str(error.value)
    assert "robot" not in str(error.value)


@pytest.mark.parametrize("tag", ["", ".hidden", "-flag", "a" * 129, "v 1", "x:y", "é"])
def test_a_hostile_tag_is_refused(tag):
    with pytest.raises(ConventionError, match=r"^tag .* must be 1-128 characters"):
        check_tag(tag)


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_path = st.from_regex(r"[a-z0-9]{1,6}([._-][a-z0-9]{1,6}){0,2}", fullmatch=True)
_registry = st.builds(
    lambda labels, port, path: ".".join(labels) + port + "".join(f"/{p}" for p in path),
    st.lists(_label, min_size=2, max_size=4),
    st.one_of(st.just(""), st.integers(1, 65535).map(lambda n: f":{n}")),
    st.lists(_path, max_size=3),
)
_department = st.from_regex(r"dept_[a-z][a-z0-9]{0,8}(_[a-z0-9]{1,5}){0,2}", fullmatch=True)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)


@given(_department, _registry, _tag)
def test_every_valid_reference_parses_back_to_its_parts(department, registry, tag):
    reference = image_reference(department, registry, tag)
    parsed = REFERENCE.fullmatch(reference)
    assert parsed is not None, reference
    assert parsed["name"] == f"{registry}/{department.replace('_', '-')}"
    assert parsed["tag"] == tag


@given(st.text(max_size=60))
def test_any_text_is_a_registry_or_a_one_line_refusal(text):
    try:
        check_registry(text)
    except ConventionError as error:
        assert "\n" not in str(error)
        assert str(error).startswith("registry ")
    else:
        assert text == text.lower()
        assert not any(c.isspace() or c in "@" for c in text)
        assert "://" not in text


@pytest.mark.parametrize(
    "registry", ["registry:5000", "registry:5000/team", "localhost", "localhost/x", "ghcr.io/acme"]
)
def test_a_host_is_what_docker_takes_for_one(registry):
    """A dot, localhost, or a port makes the first part a host: a one-label compose or
    in-cluster registry works with its port."""
    assert check_registry(registry) == registry


@pytest.mark.parametrize("registry", ["registry", "myorg/team", "registry:0", "registry:65536"])
def test_a_one_label_name_without_a_port_is_a_namespace_not_a_host(registry):
    with pytest.raises(ConventionError, match="must be host"):
        check_registry(registry)
