"""Department images, built, pushed, pulled and run through a Docker work pool, for real.

With podman (there is no Docker engine here) and real parts on loopback:
1. make the base images locally if podman's storage lacks them (debootstrap; uv from PyPI);
2. build every department's image with the project's Dockerfile, unchanged;
3. start Debian's docker-registry, push each image, delete the local copy, pull it back;
4. start a Prefect server and podman's Docker API, create a Docker work pool whose jobs
   mount a scratch data root, `airnub deploy --pool-type docker` pinning the pushed image,
   and start prefect-docker's worker against that API;
5. run the first department's ingestion deployment in its pulled image to COMPLETED and
   find its outputs on the mounted data root;
6. stop everything it started, by PID.

Skipped, with the reason, only where podman cannot run. Exit 0 on success.
Usage: uv run python tools/integration/docker_pool.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import images
from airnub_core.conventions import identify, image_reference, work_pool_name
from airnub_platform import local_api, remote
from airnub_platform.testing import unwind_on_stop_signals

DATA_IN_CONTAINER = "/data"  # the Dockerfile's AIRNUB_DATA_ROOT
WORKER_POLL_SECONDS = "2"


def commit_tag() -> str:
    """The commit's short SHA, as CI tags images (``local`` outside a git checkout)."""
    done = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=images.ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 else "local"


def build_all(names: list[str], registry: str, tag: str, logs: Path) -> dict[str, str]:
    """Build each department's image; print its size and layers; return name -> reference."""
    built = {}
    for name in names:
        reference = image_reference(name, registry, tag)
        took = images.build(name, reference, log=logs / f"build-{name}.log")
        check_contents(reference, name, others=[n for n in names if n != name])
        layers = images.layers(reference)
        total = sum(layer.size for layer in layers) / 1e6
        print(f"built {reference} in {took:.1f} s: {total:.0f} MB, {len(layers)} layers, "
              f"department layer {layers[-1].size / 1e6:.2f} MB")  # fmt: skip
        built[name] = reference
    return built


# Run inside each image, with no network: what a production image must and must not hold.
CONTENTS_PROBE = """
import importlib.util, os, shutil, sys
department, others = sys.argv[1], sys.argv[2:]
problems = [f"{m} is missing" for m in (department, "airnub_core", "prefect")
            if importlib.util.find_spec(m) is None]
problems += [f"{m} is installed" for m in ("airnub_platform", "pytest", "ruff", *others)
             if importlib.util.find_spec(m) is not None]
problems += [f"{tool} is on PATH" for tool in ("uv", "airnub") if shutil.which(tool)]
if os.getuid() == 0:
    problems.append("it runs as root")
print("; ".join(problems))
"""


def check_contents(reference: str, name: str, others: list[str]) -> None:
    """The department, the runtime and their dependencies; no platform, dev tool or other
    department; a non-root user."""
    found = images.podman(
        "run", "--rm", "--network", "none", reference, "python", "-c", CONTENTS_PROBE,
        name, *others, timeout=120,
    ).strip()  # fmt: skip
    if found:
        raise RuntimeError(f"{reference}: {found}")


def push_and_pull_back(references: list[str]) -> None:
    """Push each image, delete the local copy, pull it back from the registry."""
    for reference in references:
        started = time.monotonic()
        images.podman("push", "--tls-verify=false", reference, timeout=300)
        images.podman("rmi", reference, timeout=60)
        if images.image_exists(reference):
            raise RuntimeError(f"{reference}: still present after podman rmi")
        images.podman("pull", "--tls-verify=false", reference, timeout=300)
        print(f"pushed, removed and pulled back {reference} in {time.monotonic() - started:.1f} s")


def docker_pool_template(data: Path) -> dict:
    """prefect-docker's own default template, with the operator's choices for this host."""
    from prefect_docker.worker import DockerWorker

    template = DockerWorker.get_default_base_job_template()
    defaults = template["variables"]["properties"]
    defaults["volumes"]["default"] = [f"{data}:{DATA_IN_CONTAINER}"]
    defaults["network_mode"]["default"] = "host"  # the server listens on loopback
    defaults["auto_remove"]["default"] = True
    return template


def main() -> int:
    names = images.departments_to_check("build")
    if names is None:
        return 0
    started = time.monotonic()
    made = images.ensure_base_images()
    print(f"base images: {', '.join(made) or 'cached'} ({time.monotonic() - started:.1f} s)")
    scratch = Path(tempfile.mkdtemp(prefix="airnub-docker-pool-"))
    built: dict[str, str] = {}
    try:
        tag = commit_tag()
        with images.Registry(scratch / "registry") as registry:
            built.update(build_all(names, registry.address, tag, scratch))
            push_and_pull_back(list(built.values()))
            run_in_docker_pool(names[0], registry, tag, scratch)
        return 0
    except Exception as error:  # reported with the logs, then exit 1
        print(f"docker pool check failed: {error}", file=sys.stderr)
        images.print_log_tails(scratch)
        return 1
    finally:
        # The registry's port is this run's: drop its names; the layers stay as build cache.
        for reference in built.values():
            subprocess.run(["podman", "untag", reference, reference], env=images.podman_env(),
                           capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(scratch, ignore_errors=True)
        print(f"total {time.monotonic() - started:.1f} s")


def run_in_docker_pool(name: str, registry: images.Registry, tag: str, scratch: Path) -> None:
    data = scratch / "data"
    data.mkdir(mode=0o777)
    data.chmod(0o777)  # the image runs as uid 10001; the scratch parent is root's, 0700
    api = local_api.start(scratch / "prefect.db")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_API_URL": api.url,
        "PREFECT_HOME": str(scratch / "home"),
        "PREFECT_WORKER_QUERY_SECONDS": WORKER_POLL_SECONDS,
        "DO_NOT_TRACK": "1",
    }
    service_env = images.podman_env(CONTAINERS_REGISTRIES_CONF=str(registry.registries_conf()))
    try:
        api.wait_healthy()
        with images.DockerAPI(scratch, service_env) as docker:
            pool = work_pool_name(name)
            template = scratch / "docker-pool.json"
            template.write_text(json.dumps(docker_pool_template(data)), encoding="utf-8")
            images.run(["prefect", "work-pool", "create", pool, "--type", "docker",
                        "--base-job-template", str(template)], timeout=120, env=env)  # fmt: skip
            deployed = images.run(
                ["airnub", "deploy", name, "--pool-type", "docker",
                 "--registry", registry.address, "--tag", tag],
                timeout=300, env=env,
            )  # fmt: skip
            print(f"airnub deploy {name} --pool-type docker: {deployed.count('create')} created")
            log = (scratch / "worker.log").open("w")
            worker = subprocess.Popen(
                ["prefect", "worker", "start", "--pool", pool, "--type", "docker"],
                env={**env, "DOCKER_HOST": docker.docker_host},
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:  # the worker stops before the Docker API it talks to
                run_ingestion(name, api.url, data)
            finally:
                images.stop(worker, "docker worker")
    finally:
        api.stop(settle=False)


def run_ingestion(name: str, api_url: str, data: Path) -> None:
    """Trigger the department's ingestion deployment; it must complete and write outputs."""
    stage = identify(f"{name}.ingestion_flow_{name}")
    triggered = time.monotonic()
    run_id = remote.trigger(api_url, f"{stage.flow_name}/{stage.deployment_name}")
    state = remote.wait_for(api_url, [run_id], timeout=300)[run_id]
    print(f"{stage.deployment_name} in its pulled image: {state} "
          f"after {time.monotonic() - triggered:.1f} s")  # fmt: skip
    outputs = sorted(p.relative_to(data) for p in (data / name).rglob("*") if p.is_file())
    if state != "COMPLETED" or not outputs:
        raise RuntimeError(f"state {state}; outputs on the data root: {outputs or 'none'}")
    print(f"outputs on the mounted data root: {', '.join(map(str, outputs[:5]))}")


if __name__ == "__main__":
    unwind_on_stop_signals()  # .ci/run runs it in the background, and stops it with SIGTERM
    sys.exit(main())
