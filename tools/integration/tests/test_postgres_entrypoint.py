"""The compose Postgres image's entrypoint on hostile POSTGRES_USER/POSTGRES_DB values,
run here with Debian's own initdb as an unprivileged user (initdb refuses root): one line
naming the setting and no cluster, or the name made exactly as given, nothing run from
it; the password file gone however the script ends."""

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "compose" / "postgres-entrypoint.sh"
BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
UNPRIVILEGED = "nobody"
SOCKETS = "/var/run/postgresql"

pytestmark = pytest.mark.skipif(
    not BIN or os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("unshare"),
    reason="needs Debian's postgresql binaries, and root to run them as nobody",
)


@pytest.fixture
def home() -> Iterator[Path]:
    """A folder nobody may write: PGDATA goes in it, the password file in its tmp/.
    Not under pytest's tmp_path, whose parents only root may enter; the script is copied
    beside it for the same reason (a checkout may sit in a folder only root may enter)."""
    with tempfile.TemporaryDirectory(prefix="airnub-entrypoint-test-") as scratch:
        Path(scratch).chmod(0o755)
        shutil.copyfile(SCRIPT, Path(scratch) / SCRIPT.name)
        folder = Path(scratch) / "pg"
        (folder / "tmp").mkdir(parents=True)
        shutil.chown(folder, UNPRIVILEGED)
        shutil.chown(folder / "tmp", UNPRIVILEGED)
        yield folder


def entrypoint(home: Path, *args: str, pgdata: str = "", **settings: str):
    env = {
        "PATH": f"{BIN[-1]}:/usr/bin:/bin",
        "PGDATA": pgdata or str(home / "data"),
        "TMPDIR": str(home / "tmp"),
        "HOME": str(home),
        "POSTGRES_PASSWORD": "local-only",
        **settings,
    }
    drop = ["setpriv", f"--reuid={UNPRIVILEGED}", "--regid=nogroup", "--clear-groups"]
    # The server's socket goes to /var/run/postgresql, as in the image: a private, empty
    # one in a mount namespace of its own, so no server of the machine's is touched.
    private = ["unshare", "--mount", "sh", "-c", f"mount -t tmpfs -o mode=1777 tmpfs {SOCKETS}"
               ' && exec "$@"', "sh"]  # fmt: skip
    return subprocess.run(
        [*private, *drop, "bash", str(home.parent / SCRIPT.name), *args], env=env,
        capture_output=True, text=True, timeout=120, cwd=home,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"POSTGRES_USER": 'u$(id)"x'}, "POSTGRES_USER: must not hold a double quote"),
        ({"POSTGRES_USER": "pg_admin"}, "POSTGRES_USER: names starting with pg_ are reserved"),
        ({"POSTGRES_USER": "a" * 64}, "POSTGRES_USER: longer than 63 bytes"),
        ({"POSTGRES_USER": "a\tb"}, "POSTGRES_USER: must not hold control characters"),
        ({"POSTGRES_DB": "é" * 32}, "POSTGRES_DB: longer than 63 bytes"),
        ({"POSTGRES_DB": "a\rb"}, "POSTGRES_DB: must not hold control characters"),
        ({"POSTGRES_DB": "a\nb"}, "POSTGRES_DB: must be a single line"),
    ],
)
def test_a_name_postgres_would_change_or_initdb_would_break_on_is_refused(home, settings, message):
    done = entrypoint(home, "postgres", "--version", **settings)
    assert done.returncode == 1
    assert done.stderr == f"postgres-entrypoint: {message}\n"
    assert not (home / "data").exists()
    assert list((home / "tmp").iterdir()) == []


def test_the_password_file_is_removed_when_initdb_fails(home):
    done = entrypoint(home, "postgres", "--version", pgdata="/proc/no-cluster-here/data")
    assert done.returncode != 0
    assert "initdb: error: could not create directory" in done.stderr  # after the file
    assert "unbound variable" not in done.stderr
    assert list((home / "tmp").iterdir()) == []


def test_a_database_name_with_quotes_and_substitutions_is_made_as_written(home):
    name = "x\"; DROP DATABASE postgres; --$(touch pwned)`touch pwned`'"
    done = entrypoint(home, "postgres", "--version", POSTGRES_DB=name, POSTGRES_USER="Prefect")
    assert done.returncode == 0, done.stderr
    assert not (home / "pwned").exists()
    assert list((home / "tmp").iterdir()) == []
    listed = subprocess.run(
        ["setpriv", f"--reuid={UNPRIVILEGED}", "--regid=nogroup", "--clear-groups",
         f"{BIN[-1]}/postgres", "--single", "-D", str(home / "data"), "postgres"],
        input="SELECT datname FROM pg_database;\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert f'datname = "{name}"' in listed.stdout
    assert 'datname = "postgres"' in listed.stdout
