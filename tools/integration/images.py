"""Department images with podman on a machine with no Docker engine and no image registry.

Shared by the container checks (tools/integration) and the image benchmark (bench/):
- `ensure_base_images()` makes the two images the Dockerfile starts from, locally: a
  Debian root file system (debootstrap, from the mirror apt already uses) with Python,
  and a `FROM scratch` image holding the uv binary from PyPI. They stay in podman's
  storage, so later runs on the same machine skip this;
- `build()` builds a department with the project's Dockerfile, unchanged, through its
  BASE_IMAGE and UV_IMAGE build-args;
- `uv run python tools/integration/images.py build dept_<id>` does both by hand, tagging
  the image as docker-compose.yml names the department's worker (airnub/dept-<id>:local);
- `Registry` and `DockerAPI` run Debian's docker-registry and podman's Docker-compatible
  API on loopback, and stop them by PID.

Every command has a deadline. Podman reads containers.conf beside this file (runc,
cgroupfs, no ulimits), through CONTAINERS_CONF, so the machine's own config is untouched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from airnub_platform import local_api

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BASE_IMAGE = "localhost/airnub-base/python:3.11"
UV_REPOSITORY = "localhost/airnub-base/uv"
APT_PACKAGES = ["podman", "runc", "debootstrap", "docker-registry"]
DEBIAN_SUITE = "bookworm"  # the base the Dockerfile's python:3.11-slim default is built on
BUILD_DEADLINE = 900.0  # seconds, for one image: a cold dependency layer downloads wheels


class Unavailable(RuntimeError):
    """Podman cannot run containers on this machine: the checks are skipped with this reason."""


def podman_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "CONTAINERS_CONF": str(HERE / "containers.conf"), **extra}
    env.pop("DOCKER_HOST", None)
    return env


def podman(*args: str, timeout: float = 120.0, env: dict[str, str] | None = None) -> str:
    """Run podman; raise with the command and the tail of its output if it fails."""
    return run(["podman", *args], timeout=timeout, env=env or podman_env())


def run(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env or podman_env()
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{' '.join(cmd[:4])}: no result within {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise RuntimeError(f"{' '.join(cmd[:6])} failed ({done.returncode}):\n{tail}")
    return done.stdout


def install_missing() -> None:
    """apt-get the container tools a fresh machine lacks (quietly; a failure is reported)."""
    missing = [tool for tool in APT_PACKAGES if shutil.which(tool) is None]
    if missing:
        run(["apt-get", "install", "-y", "-qq", *missing], timeout=600)


def check_available() -> None:
    """Raise Unavailable, with the reason, unless podman can run a container here."""
    try:
        install_missing()
    except (OSError, RuntimeError) as error:
        raise Unavailable(f"podman could not be installed: {str(error).splitlines()[0]}") from None
    for tool in APT_PACKAGES:
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not on PATH")
    try:
        podman("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60)
    except RuntimeError as error:
        raise Unavailable(f"podman cannot start here: {str(error).splitlines()[-1]}") from None


def departments_to_check(verb: str) -> list[str] | None:
    """The workspace's departments, sorted; None, having said why, if the check is skipped
    (podman cannot run here, or there is no department to ``verb``)."""
    from airnub_core.conventions import departments

    try:
        check_available()
    except Unavailable as why:
        print(f"SKIPPED: {why}")
        return None
    names = sorted(departments())
    if not names:
        print(f"SKIPPED: the workspace has no department to {verb}")
    return names or None


def print_log_tails(folder: Path, chars: int = 2500) -> None:
    """The end of every log a failed check left in ``folder``, on stderr."""
    for log in sorted(folder.rglob("*.log")):
        tail = log.read_text(errors="replace")[-chars:]
        print(f"--- {log.name} (tail) ---\n{tail}", file=sys.stderr)


def uv_version() -> str:
    """The uv version the Dockerfile's UV_IMAGE default names (one pin, in one place)."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    found = re.search(r"^ARG UV_IMAGE=\S+:(\d+\.\d+\.\d+)$", text, re.MULTILINE)
    if found is None:
        raise RuntimeError("Dockerfile: no `ARG UV_IMAGE=...:X.Y.Z` to take uv's version from")
    return found.group(1)


def uv_image() -> str:
    return f"{UV_REPOSITORY}:{uv_version()}"


def image_exists(reference: str) -> bool:
    return (
        subprocess.run(
            ["podman", "image", "exists", reference], env=podman_env(), timeout=60
        ).returncode
        == 0
    )


def debian_mirror() -> str:
    """The Debian mirror apt already uses (this machine reaches no other)."""
    sources = [*Path("/etc/apt/sources.list.d").glob("*"), Path("/etc/apt/sources.list")]
    for path in sources:
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        for url in re.findall(r"(?:URIs:|^deb)\s+(https?://\S+/debian)\s*$", text, re.MULTILINE):
            return url
    return "http://deb.debian.org/debian"


def ensure_base_images() -> list[str]:
    """Make the base images that are missing; return what was made (empty: all cached)."""
    made = []
    if not image_exists(BASE_IMAGE):
        _make_python_base()
        made.append(BASE_IMAGE)
    if not image_exists(uv_image()):
        _make_uv_image()
        made.append(uv_image())
    return made


def _make_python_base() -> None:
    with tempfile.TemporaryDirectory(prefix="airnub-base-", dir="/var/tmp") as scratch:
        root = Path(scratch) / "root"
        run(
            ["debootstrap", "--variant=minbase", "--include=python3.11,ca-certificates",
             DEBIAN_SUITE, str(root), debian_mirror()],
            timeout=900,
        )  # fmt: skip
        # Registries are reached through the host's (possibly TLS-inspecting) proxy: the
        # image trusts what the host trusts.
        host_bundle = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
        if Path(host_bundle).is_file():
            shutil.copyfile(host_bundle, root / "etc/ssl/certs/ca-certificates.crt")
        tarball = Path(scratch) / "root.tar"
        run(["tar", "-C", str(root), "-cf", str(tarball), "."], timeout=300)
        podman(
            "import", "--change", "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            str(tarball), BASE_IMAGE, timeout=300,
        )  # fmt: skip


def _make_uv_image() -> None:
    with tempfile.TemporaryDirectory(prefix="airnub-uv-", dir="/var/tmp") as scratch:
        target = Path(scratch) / "wheel"
        run(["uv", "pip", "install", "--quiet", "--target", str(target),
             f"uv=={uv_version()}"], timeout=300)  # fmt: skip
        context = Path(scratch) / "context"
        context.mkdir()
        shutil.copy2(target / "bin" / "uv", context / "uv")
        (context / "Containerfile").write_text("FROM scratch\nCOPY uv /uv\n", encoding="utf-8")
        podman("build", "--quiet", "-t", uv_image(), str(context), timeout=300)


def build_args(department: str) -> list[str]:
    return [
        "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
        "--build-arg", f"UV_IMAGE={uv_image()}",
        "--build-arg", f"DEPARTMENT={department}",
    ]  # fmt: skip


def build(department: str, tag: str, context: Path = ROOT, log: Path | None = None) -> float:
    """Build ``department`` with the project's Dockerfile; return the seconds it took.

    ``--format docker`` so podman honours the Dockerfile's SHELL (pipefail); host network
    for the build's own downloads (PyPI through the host's proxy).
    """
    started = time.monotonic()
    output = podman(
        "build", "--format", "docker", "--network", "host", *build_args(department),
        "-t", tag, "-f", str(context / "Dockerfile"), str(context),
        timeout=BUILD_DEADLINE,
    )  # fmt: skip
    if log is not None:
        log.write_text(output, encoding="utf-8")
    return time.monotonic() - started


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int  # bytes, uncompressed


def layers(image: str) -> list[Layer]:
    """The image's file system layers, bottom first, with their uncompressed sizes."""
    digests = podman("inspect", "--format", "{{range .RootFS.Layers}}{{println .}}{{end}}", image)
    history = json.loads(podman("history", "--format", "json", image))
    # history lists every instruction (top first); only those with content made a layer
    nonempty = [int(step["size"]) for step in reversed(history) if int(step["size"]) > 0]
    found = [d for d in digests.split() if d]
    if len(nonempty) != len(found):
        nonempty = [0] * len(found)  # sizes unknown rather than wrongly paired
    return [Layer(d, s) for d, s in zip(found, nonempty, strict=True)]


def wait_until(
    ready: Callable[[], bool], deadline: float, what: str, process: subprocess.Popen
) -> None:
    """Poll ``ready()`` until it is true; raise if ``process`` exits or time runs out."""
    ends = time.monotonic() + deadline
    while time.monotonic() < ends:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}) before it was ready")
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} was not ready within {deadline:.0f} s")


def stop(process: subprocess.Popen, name: str, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds: by PID, whatever state it is in."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
        print(f"{name} (pid {process.pid}) had to be killed")


@dataclass
class Registry:
    """Debian's docker-registry (the CNCF distribution registry) on a loopback port."""

    directory: Path
    port: int = field(default_factory=local_api.free_port)
    process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Registry:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "registry.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.directory / 'data'}\n"
            f"http:\n  addr: {self.address}\n",
            encoding="utf-8",
        )
        log = (self.directory / "registry.log").open("w")
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(lambda: _answers(f"http://{self.address}/v2/"), 30, "docker-registry",
                   self.process)  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            stop(self.process, "docker-registry")

    def registries_conf(self) -> Path:
        """A registries.conf that lets podman push to and pull from it over plain HTTP."""
        path = self.directory / "registries.conf"
        path.write_text(
            f'[[registry]]\nlocation = "{self.address}"\ninsecure = true\n', encoding="utf-8"
        )
        return path


@dataclass
class DockerAPI:
    """``podman system service``: the Docker Engine API on a Unix socket, for Docker clients."""

    directory: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def __enter__(self) -> DockerAPI:
        log = (self.directory / "podman-service.log").open("w")
        self.process = subprocess.Popen(
            ["podman", "system", "service", "--time=0", self.docker_host],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_until(self._answers, 30, "podman system service", self.process)
        return self

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(2)
            try:
                client.connect(str(self.socket))
                client.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return b"OK" in client.recv(1024)
            except OSError:
                return False

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            stop(self.process, "podman system service")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def main(argv: list[str]) -> int:
    """``images.py build DEPT [DEPT ...]``: a department's image, here, by hand."""
    from airnub_core.conventions import ConventionError, check_department, distribution_name

    if len(argv) < 2 or argv[0] != "build":
        print("usage: uv run python tools/integration/images.py build dept_<id> [dept_<id> ...]")
        return 2
    try:
        names = [check_department(name) for name in argv[1:]]
        check_available()
    except (ConventionError, Unavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ConventionError) else 1
    try:
        made = ensure_base_images()
        print(f"base images: {', '.join(made) or 'cached'} ({BASE_IMAGE}, {uv_image()})")
        for name in names:
            # the name docker-compose.yml gives the department's worker by default
            tag = f"airnub/{distribution_name(name)}:local"
            took = build(name, tag)
            found = layers(tag)
            total = sum(layer.size for layer in found) / 1e6
            print(f"{tag}: built in {took:.1f} s, {total:.0f} MB, {len(found)} layers, "
                  f"department layer {found[-1].size / 1e6:.2f} MB")  # fmt: skip
    except RuntimeError as error:
        print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # subprocess.run has stopped the build it was waiting on
        print("interrupted: the build was stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
