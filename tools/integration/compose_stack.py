"""docker-compose.yml, brought up under podman-compose with images made here, for real.

There is no Docker engine and no image registry on these machines; podman runs the
compose file unchanged, through its variables:
1. make the base images if podman's storage lacks them (images.ensure_base_images), then
   Postgres (Debian's `postgresql`, tools/integration/compose/postgres.Containerfile) and
   the Prefect server (the version uv.lock pins, prefect-server.Containerfile), each
   tagged by a hash of what it is made from, so a later run with the same inputs reuses it;
2. build every department's worker image with the project's Dockerfile, under the name
   the compose file gives it (AIRNUB_REGISTRY/dept-<id>:AIRNUB_IMAGE_TAG);
3. `podman-compose up -d` with a project name of its own and a free published port,
   service by service as `depends_on: service_healthy` asks (podman 4.3 ignores that
   condition): Postgres, then the server, each until its own healthcheck passes, then the
   workers, until each department's work pool has a worker;
4. `airnub deploy` the first department (process pool) against the stack's API, trigger
   its ingestion deployment and wait for COMPLETED, run by the stack's worker;
5. find the run's outputs in the compose file's `data` volume;
6. `podman-compose down -v`, whatever happened, and check nothing of the project is left:
   no container, pod, network or volume.

Containers talk over podman-compose's default bridge network (netavark, with aardvark-dns
for the service names), as they would under Docker. Skipped, with the reason, only where
podman cannot run. Prints each phase's time and the total. Exit 0 on success.
Usage: uv run python tools/integration/compose_stack.py
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import images
from airnub_core.conventions import identify, image_reference, work_pool_name
from airnub_platform import local_api, remote
from airnub_platform.testing import unwind_on_stop_signals

COMPOSE_FILE = images.ROOT / "docker-compose.yml"
CONTEXT = images.HERE / "compose"
REPOSITORY = "localhost/airnub-compose"
WORKER_TAG = "check"  # one tag, rebuilt each run from podman's layer cache: nothing piles up
HEALTHY_DEADLINE = 180.0  # seconds, per service: a cold Postgres initializes its cluster
RUN_DEADLINE = 300.0
COMPOSE_DEADLINE = 300.0
# The dev environment's own (a locked dev dependency), whatever PATH holds.
PODMAN_COMPOSE = [sys.executable, "-m", "podman_compose"]
AIRNUB = str(Path(sys.executable).with_name("airnub"))


def content_tag(*parts: str | bytes) -> str:
    """A short hash of what an image is made from: same inputs, same tag, no rebuild."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def locked_version(package: str) -> str:
    lock = tomllib.loads((images.ROOT / "uv.lock").read_text(encoding="utf-8"))
    for entry in lock.get("package", []):
        if entry.get("name") == package:
            return entry["version"]
    raise RuntimeError(f"uv.lock: no package {package!r}")


def build_if_missing(reference: str, containerfile: Path, context: Path, *args: str) -> bool:
    """Build ``reference`` unless podman's storage has it; return whether it was built."""
    if images.image_exists(reference):
        return False
    images.podman(
        "build", "--format", "docker", "--network", "host",
        "--build-arg", f"BASE_IMAGE={images.BASE_IMAGE}", *args,
        "-t", reference, "-f", str(containerfile), str(context),
        timeout=images.BUILD_DEADLINE,
    )  # fmt: skip
    return True


def postgres_image() -> tuple[str, bool]:
    files = [CONTEXT / "postgres.Containerfile", CONTEXT / "postgres-entrypoint.sh"]
    reference = f"{REPOSITORY}/postgres:{content_tag(*(f.read_bytes() for f in files))}"
    return reference, build_if_missing(reference, files[0], CONTEXT)


def server_image(scratch: Path) -> tuple[str, bool]:
    """The Prefect server at uv.lock's version, its dependencies held to the lock's."""
    version = locked_version("prefect")
    constraints = images.run(
        ["uv", "export", "--locked", "--package", "airnub-core", "--no-dev", "--no-hashes",
         "--no-emit-workspace", "--no-header", "--format", "requirements.txt"],
        timeout=120, env=dict(os.environ),
    )  # fmt: skip
    containerfile = CONTEXT / "prefect-server.Containerfile"
    tag = content_tag(containerfile.read_bytes(), constraints)
    reference = f"{REPOSITORY}/prefect-server:{version}-{tag}"
    if images.image_exists(reference):
        return reference, False
    context = scratch / "server-context"
    context.mkdir()
    (context / "constraints.txt").write_text(constraints, encoding="utf-8")
    built = build_if_missing(
        reference, containerfile, context,
        "--build-arg", f"UV_IMAGE={images.uv_image()}",
        "--build-arg", f"PREFECT_VERSION={version}",
    )  # fmt: skip
    return reference, built


def worker_image(name: str) -> str:
    """The name docker-compose.yml gives the department's worker image."""
    return image_reference(name, REPOSITORY, WORKER_TAG)


@dataclass
class Stack:
    """One podman-compose project of docker-compose.yml: its name, variables and phases."""

    variables: dict[str, str]
    project: str = field(default_factory=lambda: f"airnub-compose-{secrets.token_hex(4)}")
    port: int = field(default_factory=local_api.free_port)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def compose(self, *args: str) -> str:
        env = images.podman_env(**self.variables, AIRNUB_PREFECT_PORT=str(self.port))
        command = [*PODMAN_COMPOSE, "-p", self.project, "-f", str(COMPOSE_FILE), *args]
        return images.run(command, timeout=COMPOSE_DEADLINE, env=env)

    def container(self, service: str) -> str:
        names = images.podman(
            "ps", "-a", "--format", "{{.Names}}",
            "--filter", f"label=io.podman.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}",
        ).split()  # fmt: skip
        if len(names) != 1:
            raise RuntimeError(f"{self.project}: {len(names)} containers for {service}")
        return names[0]

    def wait_healthy(self, service: str) -> None:
        """Run the service's own compose healthcheck until it passes (no systemd here to
        run it on its interval); fail early if the container stops."""
        container = self.container(service)

        def healthy() -> bool:
            state = images.podman("inspect", "--format", "{{.State.Status}}", container)
            if state.strip() not in {"running", "created"}:
                tail = subprocess.run(
                    ["podman", "logs", "--tail", "20", container], env=images.podman_env(),
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
                ).stdout  # fmt: skip
                raise RuntimeError(f"{service} is {state.strip()}:\n{tail}")
            check = subprocess.run(
                ["podman", "healthcheck", "run", container],
                capture_output=True, env=images.podman_env(), timeout=60,
            )  # fmt: skip
            return check.returncode == 0

        poll(healthy, HEALTHY_DEADLINE, f"{service}'s healthcheck")

    def logs(self) -> str:
        """The last lines of every service's log, for a failure's report (best effort)."""
        try:
            return self.compose("logs", "--no-color", "--tail", "25")
        except RuntimeError as error:
            return f"(no logs: {str(error).splitlines()[0]})"

    def volume_path(self, volume: str) -> Path:
        found = images.podman(
            "volume", "inspect", "--format", "{{.Mountpoint}}", f"{self.project}_{volume}"
        )
        return Path(found.strip())

    def leftovers(self) -> list[str]:
        """Whatever of this project podman still has: containers, pods, networks, volumes."""
        label = f"label=io.podman.compose.project={self.project}"
        found = images.podman("ps", "-a", "--filter", label, "--format", "container {{.Names}}")
        found += images.podman("pod", "ps", "--format", "pod {{.Name}}")
        found += images.podman("network", "ls", "--format", "network {{.Name}}")
        found += images.podman("volume", "ls", "--format", "volume {{.Name}}")
        return [line for line in found.splitlines() if self.project in line]


def poll(ready: Callable[[], bool], deadline: float, what: str) -> None:
    ends = time.monotonic() + deadline
    while time.monotonic() < ends:
        if ready():
            return
        time.sleep(1)
    raise RuntimeError(f"{what}: not ready within {deadline:.0f} s")


def api_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def has_worker(url: str, pool: str) -> bool:
    try:
        found = httpx.post(f"{url}/work_pools/{pool}/workers/filter", json={}, timeout=5)
    except httpx.HTTPError:
        return False
    return found.status_code == 200 and bool(found.json())


@contextmanager
def phase(name: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[name] = time.monotonic() - started
        print(f"{name}: {timings[name]:.1f} s", flush=True)


def bring_up(stack: Stack, names: list[str]) -> None:
    """Each service after what it depends on is healthy, as compose's conditions ask."""
    stack.compose("up", "-d", "--no-build", "postgres")
    stack.wait_healthy("postgres")
    stack.compose("up", "-d", "--no-build", "server")
    stack.wait_healthy("server")
    poll(lambda: api_answers(stack.api_url), HEALTHY_DEADLINE, "the published API")
    stack.compose("up", "-d", "--no-build")
    for name in names:
        pool = work_pool_name(name)
        poll(lambda pool=pool: has_worker(stack.api_url, pool), HEALTHY_DEADLINE,
             f"a worker on {pool}")  # fmt: skip


def run_first(stack: Stack, name: str, scratch: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_API_URL": stack.api_url,
        "PREFECT_HOME": str(scratch / "home"),
        "DO_NOT_TRACK": "1",
    }
    images.run([AIRNUB, "deploy", name], timeout=300, env=env)
    stage = identify(f"{name}.ingestion_flow_{name}")
    run_id = remote.trigger(stack.api_url, f"{stage.flow_name}/{stage.deployment_name}")
    state = remote.wait_for(stack.api_url, [run_id], timeout=RUN_DEADLINE)[run_id]
    data = stack.volume_path("data")
    outputs = sorted(p.relative_to(data) for p in (data / name).rglob("*") if p.is_file())
    print(f"{stage.deployment_name} through the stack's worker: {state}")
    if state != "COMPLETED" or not outputs:
        raise RuntimeError(f"state {state}; outputs in the data volume: {outputs or 'none'}")
    print(f"outputs in the data volume: {', '.join(map(str, outputs[:5]))}")


def tear_down(stack: Stack, attempts: int = 3) -> None:
    """`down -v` until nothing of the project is left: a container in a restart loop
    (`restart: unless-stopped`) can come back between podman-compose's stop and rm."""
    problem = ""
    for _ in range(attempts):
        try:
            stack.compose("down", "-v")
        except RuntimeError as error:
            problem = f" ({str(error).splitlines()[0]})"
        left = stack.leftovers()
        if not left:
            print(f"{stack.project}: nothing left (containers, pods, networks, volumes)")
            return
    raise RuntimeError(f"left after podman-compose down -v{problem}: {', '.join(left)}")


def check(names: list[str], scratch: Path, timings: dict[str, float]) -> None:
    with phase("base images", timings):
        made = images.ensure_base_images()
        print(f"base images: {', '.join(made) or 'cached'}")
    with phase("postgres and server images", timings):
        postgres, built_postgres = postgres_image()
        server, built_server = server_image(scratch)
        for reference, built in ((postgres, built_postgres), (server, built_server)):
            print(f"{reference}: {'built' if built else 'cached'}")
    with phase("department images", timings):
        for name in names:
            images.build(name, worker_image(name), log=scratch / f"build-{name}.log")
    stack = Stack({
        "AIRNUB_POSTGRES_IMAGE": postgres,
        "AIRNUB_PREFECT_IMAGE": server,
        "AIRNUB_BASE_IMAGE": images.BASE_IMAGE,
        "AIRNUB_UV_IMAGE": images.uv_image(),
        "AIRNUB_REGISTRY": REPOSITORY,
        "AIRNUB_IMAGE_TAG": WORKER_TAG,
    })  # fmt: skip
    print(f"project {stack.project}, API {stack.api_url}")
    try:
        with phase("up (postgres and server healthy, a worker on each pool)", timings):
            bring_up(stack, names)
        with phase("deploy, run to COMPLETED, outputs found", timings):
            run_first(stack, names[0], scratch)
    except BaseException:
        print(stack.logs(), file=sys.stderr)
        try:
            tear_down(stack)
        except Exception as error:  # the first failure is the one to report
            print(f"and the tear-down failed too: {error}", file=sys.stderr)
        raise
    with phase("down -v, nothing left", timings):
        tear_down(stack)


def main() -> int:
    unwind_on_stop_signals()  # SIGTERM and Ctrl-C still take the stack down
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # phases as they end
    names = images.departments_to_check("run")
    if names is None:
        return 0
    started, timings = time.monotonic(), {}
    scratch = Path(tempfile.mkdtemp(prefix="airnub-compose-"))
    try:
        check(names, scratch, timings)
        return 0
    except Exception as error:  # reported with the build logs, then exit 1
        print(f"compose stack check failed: {error}", file=sys.stderr)
        images.print_log_tails(scratch, chars=2000)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        print(f"total {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
