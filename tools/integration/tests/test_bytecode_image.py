"""The images ship compiled bytecode, read from the Dockerfile without building it.

An image runs as uid 10001, which cannot write ``__pycache__`` under /opt/venv: without
``.pyc`` files from the build, every flow run would compile Prefect again before it starts.
Every ``uv`` command that installs into the image must therefore see
``UV_COMPILE_BYTECODE=1``, set in its own stage or one it is built ``FROM``.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
INSTALLS = re.compile(r"\buv (sync|pip install)\b")


def stages(text: str) -> dict[str, tuple[str, list[str]]]:
    """Each stage's name -> (the stage it is built from, its instructions, one per line)."""
    joined = re.sub(r"\\\n\s*", " ", text)  # continuation lines join their instruction
    found: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in joined.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0].upper() == "FROM":
            named = len(words) >= 4 and words[-2].upper() == "AS"
            current = words[-1] if named else f"final:{len(found)}"
            found[current] = (words[1], [])
        elif current:
            found[current][1].append(line)
    return found


def env_of(name: str, found: dict[str, tuple[str, list[str]]]) -> dict[str, str]:
    """What ENV gives a stage: its parent stage's first, then its own."""
    parent, lines = found[name]
    values = env_of(parent, found) if parent in found else {}
    for line in lines:
        if line.split()[0].upper() == "ENV":
            values |= dict(re.findall(r"(\w+)=(\S+)", line))
    return values


def test_every_install_in_the_image_compiles_bytecode():
    found = stages((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    installing = [n for n, (_, lines) in found.items() if any(INSTALLS.search(x) for x in lines)]
    assert installing, "the Dockerfile installs nothing with uv: this check reads it wrongly"
    for name in installing:
        assert env_of(name, found).get("UV_COMPILE_BYTECODE") == "1", name


def test_the_reader_sees_a_stage_that_would_not_compile():
    text = (
        "FROM base AS deps\nENV UV_LINK_MODE=copy \\\n    UV_COMPILE_BYTECODE=1\n"
        "FROM deps AS members\nRUN uv pip install x\n"
        "FROM base AS other\nENV UV_COMPILE_BYTECODE=0\nRUN uv sync --locked\n"
    )
    found = stages(text)
    assert env_of("members", found)["UV_COMPILE_BYTECODE"] == "1"
    assert env_of("other", found)["UV_COMPILE_BYTECODE"] == "0"
