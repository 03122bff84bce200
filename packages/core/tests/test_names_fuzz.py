"""Fuzzing the id rules: whatever text arrives, each check either returns a name that is
safe everywhere it is used (a Python module, a distribution, Prefect's names) or refuses
it with a one-line ConventionError. Anything else escaping is a failure."""

import keyword
import re
from collections.abc import Callable

import pytest
from airnub_core import conventions
from airnub_core.conventions import (
    MAX_ID_LENGTH,
    RESERVED_NAMES,
    STAGES,
    ConventionError,
    Identity,
    check_category,
    check_department,
    check_identifier,
    check_stage,
    department_id,
    identify,
)
from hypothesis import given
from hypothesis import strategies as st
from packaging.utils import canonicalize_name
from prefect.types.names import ArtifactKey, Name, NonEmptyishName, VariableName
from pydantic import TypeAdapter

# Characters that matter to some reader of a name: separators, path and shell syntax,
# look-alikes of a-z and line breaks.
TRICKY = "abcxyz019_-. /\\\n\r\t\0:=#ÀéßK\u0131\u017f\u212a\u0130\u00a0\u2028\ufeff🙂"
KEYWORDS = [*keyword.kwlist, *keyword.softkwlist]

ids = st.one_of(
    st.text(),
    st.text(alphabet=TRICKY, max_size=50),
    st.from_regex(r"[a-z][a-z0-9_]{0,44}", fullmatch=True),
    st.sampled_from([*KEYWORDS, *RESERVED_NAMES, *STAGES, "x" * MAX_ID_LENGTH]),
)
departments = st.one_of(ids, st.builds("dept_".__add__, ids), st.builds("DEPT_".__add__, ids))
# Mostly well-formed ids (keywords and reserved words among them), for the properties of
# what an accepted id derives: arbitrary text would rarely get past all three checks.
plausible = st.from_regex(r"[a-z][a-z0-9]{0,9}(_[a-z0-9]{1,9}){0,4}", fullmatch=True)
plausible_departments = st.one_of(plausible, st.builds("dept_".__add__, plausible))

# Prefect's own validators for the names the conventions derive from ids.
PREFECT = {
    "variable": TypeAdapter(VariableName),
    "artifact": TypeAdapter(ArtifactKey),
    "work pool": TypeAdapter(NonEmptyishName),
    "deployment": TypeAdapter(Name),
}
# PEP 508's name, which a distribution name must be.
DISTRIBUTION = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def accepted(check: Callable[[str], str], value: str) -> str | None:
    """``check(value)``, or None when it refused with a one-line ConventionError."""
    try:
        result = check(value)
    except ConventionError as error:
        message = str(error)
        assert message and len(message.splitlines()) == 1, repr(message)
        return None
    assert result == value or check is department_id
    return result


def assert_safe_id(value: str, limit: int = MAX_ID_LENGTH) -> None:
    assert value.isascii() and value.isidentifier(), value
    assert not keyword.iskeyword(value) and not keyword.issoftkeyword(value)
    assert 0 < len(value) <= limit
    assert value == value.lower() and "__" not in value and not value.endswith("_")


@given(ids)
def test_identifiers_are_safe_python_names_or_refused(value):
    if (found := accepted(check_identifier, value)) is not None:
        assert_safe_id(found)


@given(ids)
def test_categories_are_safe_names_and_never_reserved_or_refused(value):
    if (found := accepted(check_category, value)) is not None:
        assert_safe_id(found)
        assert found not in RESERVED_NAMES


@given(ids)
def test_stages_are_one_of_the_three_or_refused(value):
    if (found := accepted(check_stage, value)) is not None:
        assert found in STAGES


@given(departments)
def test_department_checks_agree(value):
    """check_department takes only the full id; department_id also takes it bare."""
    full = accepted(check_department, value)
    given_either = accepted(department_id, value)
    if full is not None:
        assert given_either == full
    if given_either is not None:
        assert given_either.startswith(conventions.DEPARTMENT_PREFIX)
        assert check_department(given_either) == given_either


@given(plausible_departments, st.sampled_from(STAGES), plausible, plausible)
def test_names_derived_from_accepted_ids_round_trip_and_suit_prefect(
    value, stage, category_value, action_value
):
    department = accepted(department_id, value)
    category = accepted(check_category, category_value)
    action = accepted(check_identifier, action_value)
    if department is None or category is None or action is None:
        return
    assert_safe_id(department, MAX_ID_LENGTH + len(conventions.DEPARTMENT_PREFIX))
    assert_safe_id(department.removeprefix(conventions.DEPARTMENT_PREFIX))

    distribution = conventions.distribution_name(department)
    assert DISTRIBUTION.match(distribution) and canonicalize_name(distribution) == distribution
    assert distribution.replace("-", "_") == department  # back to the import name

    node = Identity(department, stage, category)
    names = {
        "work pool": conventions.work_pool_name(department),
        "deployment": Identity(department, stage).deployment_name,
        "variable": node.variable_name(),
        "artifact": node.artifact_key("summary"),
    }
    for kind, name in names.items():
        assert PREFECT[kind].validate_python(name) == name, kind
    assert node.variable_name().split("-") == [department, stage, category]  # no collisions

    module = f"{department}.{stage}.{category}.{action}{conventions.flow_suffix(department)}"
    assert identify(module) == Identity(department, stage, category, action)


@pytest.mark.parametrize(
    "value",
    ["dept_", "dept_dept_", "DEPT_x", "dept_x\n", "\u017f", "x\u212a", "dept_ok\0", "İ", "a" * 41],
)
def test_look_alikes_and_edges_are_refused(value):
    """Characters that lowercase or normalise to a-z, and a trailing newline (which a
    ``$`` in a pattern lets through), are refused by every department check."""
    for check in (department_id, check_department):
        assert accepted(check, value) is None
