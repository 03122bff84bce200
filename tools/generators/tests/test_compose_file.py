"""docker-compose.yml's worker services, as the generators write and remove them, and the
file's defaults kept equal to what they repeat (the Dockerfile's build-args, uv.lock's
Prefect). The round trips run the generators' own functions on the repository's compose
file, copied; departments are made-up ids, never the shipped ones."""

import re
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml
from airnub_core.conventions import distribution_name
from airnub_core.inventory import folders
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the generators, beside us
import scaffold

REPO = Path(__file__).resolve().parents[3]
COMPOSE = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
# What the file looked like before the shared build-args: an older clone's compose file.
OLDER = re.sub(r"\nx-build-args: &build-args\n(?:  .*\n)+", "\n", COMPOSE)
OLDER = re.sub(r"\n +<<: \*build-args\n", "\n", OLDER)

ids = st.from_regex(r"dept_[a-z][a-z0-9]{0,8}(_[a-z0-9]{1,6}){0,2}", fullmatch=True)


def parsed(text: str) -> dict:
    return yaml.safe_load(text)


def service(text: str, department: str) -> dict:
    return parsed(text)["services"][f"worker-{distribution_name(department)}"]


def added(compose_text: str, department: str) -> str:
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "docker-compose.yml").write_text(compose_text, encoding="utf-8")
        edited = scaffold.add_compose_worker(Path(root), department)
    assert edited is not None
    return edited


def removed(compose_text: str, department: str) -> str | None:
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "docker-compose.yml").write_text(compose_text, encoding="utf-8")
        return scaffold.remove_compose_worker(Path(root), department)


def dockerfile_defaults() -> dict[str, str]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    return dict(re.findall(r"^ARG (BASE_IMAGE|UV_IMAGE)=(\S+)$", text, re.MULTILINE))


def compose_default(value: str) -> str:
    """``${VARIABLE:-default}`` -> default: what a user with no variables set gets."""
    found = re.fullmatch(r"\$\{[A-Z_]+:-([^}]+)\}", value)
    assert found, f"{value!r} is not ${{VARIABLE:-default}}"
    return found.group(1)


def test_the_build_args_default_to_the_dockerfiles_own():
    shared = parsed(COMPOSE)["x-build-args"]
    assert {k: compose_default(v) for k, v in shared.items()} == dockerfile_defaults()


def test_the_public_prefect_image_is_the_locked_version():
    lock = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
    version = next(p["version"] for p in lock["package"] if p["name"] == "prefect")
    image = compose_default(parsed(COMPOSE)["services"]["server"]["image"])
    assert image == f"prefecthq/prefect:{version}-python3.11"


def test_every_department_has_a_worker_with_its_image_and_build_args():
    # the working tree's departments, not the installed ones: other tests install their own
    for department in folders(REPO):
        worker = service(COMPOSE, department)
        assert worker["image"] == scaffold.compose_worker_image(department)
        assert worker["build"]["args"] == {
            **parsed(COMPOSE)["x-build-args"],
            "DEPARTMENT": department,
        }


@given(ids)
def test_a_worker_is_added_in_the_shape_of_the_others_and_removed_byte_for_byte(department):
    if department in folders(REPO):
        return
    edited = added(COMPOSE, department)
    worker = service(edited, department)
    assert worker["image"] == (
        f"${{AIRNUB_REGISTRY:-airnub}}/{distribution_name(department)}:${{AIRNUB_IMAGE_TAG:-local}}"
    )
    assert worker["build"] == {
        "context": ".", "args": {**parsed(COMPOSE)["x-build-args"], "DEPARTMENT": department}
    }  # fmt: skip
    assert worker["restart"] == "unless-stopped"  # the shared x-worker settings
    assert removed(edited, department) == COMPOSE


def test_an_older_compose_file_without_shared_build_args_still_gets_its_worker():
    assert "x-build-args" not in parsed(OLDER) and "*build-args" not in OLDER
    edited = added(OLDER, "dept_older_clone")
    worker = service(edited, "dept_older_clone")
    assert worker["build"]["args"] == {"DEPARTMENT": "dept_older_clone"}
    assert worker["image"] == scaffold.compose_worker_image("dept_older_clone")
    assert removed(edited, "dept_older_clone") == OLDER


def test_an_anchor_named_only_in_a_comment_is_not_merged():
    commented = OLDER.replace("\nservices:\n", "\n# x-build-args: &build-args\nservices:\n", 1)
    edited = added(commented, "dept_commented")
    assert service(edited, "dept_commented")["build"]["args"] == {"DEPARTMENT": "dept_commented"}


def refusal(text: str, edit, department: str) -> str:
    """The one-line error ``edit`` (add or remove a worker) gives for a compose file holding
    ``text``, with the file left exactly as it was; the file's path reads ``FILE``."""
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "docker-compose.yml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(scaffold.ScaffoldError) as refused:
            edit(Path(root), department)
        assert path.read_text(encoding="utf-8") == text
    return str(refused.value).replace(str(path), "FILE")


def test_a_build_args_anchor_that_is_not_a_mapping_is_refused_and_nothing_written():
    hostile = OLDER.replace("\nservices:\n", "\nx-build-args: &build-args\n  - a\nservices:\n", 1)
    assert refusal(hostile, scaffold.add_compose_worker, "dept_hostile") == (
        "FILE: could not add the worker-dept-hostile service; add it by hand"
    )


def _reindented(text: str) -> str:
    """The same file with every indent doubled: valid YAML, not the generator's shape."""
    return re.sub(r"^( +)", lambda m: m.group(1) * 2, text, flags=re.MULTILINE)


KEY = "  worker-dept-hand-edited:\n"
LAST_ARG = "        DEPARTMENT: dept_hand_edited\n"
HAND_EDITS = {
    "indented by four": _reindented,
    "quoted key": lambda text: text.replace(KEY, '  "worker-dept-hand-edited":\n'),
    "comment at column 0": lambda text: text.replace(
        f"{KEY}    <<: *worker\n", f"{KEY}    <<: *worker\n# pinned by hand\n"
    ),
    "three-space comment": lambda text: text.replace(LAST_ARG, f"{LAST_ARG}   # odd indent\n"),
}


@pytest.mark.parametrize("edit", HAND_EDITS.values(), ids=HAND_EDITS.keys())
def test_a_hand_edited_worker_is_refused_on_removal_and_nothing_written(edit):
    hostile = edit(added(COMPOSE, "dept_hand_edited"))
    assert "worker-dept-hand-edited" in parsed(hostile)["services"]  # still valid compose
    assert refusal(hostile, scaffold.remove_compose_worker, "dept_hand_edited") == (
        "FILE: the worker-dept-hand-edited service is not as add_department wrote it;"
        " remove it by hand"
    )


def test_a_file_without_the_worker_is_left_as_it_is():
    assert removed(COMPOSE, "dept_never_added") is None
