"""docker-compose.yml's "scaled" profile, checked statically: valid against the compose
spec, the plane Prefect's guide describes (and control_plane.py runs), and nothing of it
in what a plain `docker compose up` starts."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checks, beside us
import control_plane as plane

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "docker-compose.yml"
DATA = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
SERVICES = DATA["services"]
SCALED = {name for name, service in SERVICES.items() if "scaled" in service.get("profiles", [])}
REPLICAS = ["api-1", "api-2"]
SCALED_WORKERS = ["scaled-worker-1", "scaled-worker-2"]
DATABASE = (
    "postgresql+asyncpg://prefect:${POSTGRES_PASSWORD:-prefect-local-only}@postgres:5432/prefect"
)
BIN = Path(sys.executable).parent


def command(name: str) -> list[str]:
    return SERVICES[name].get("command", [])


def rendered(compose_file: Path, *options: str) -> dict:
    """``podman-compose config`` of ``compose_file``: what compose itself makes of it."""
    done = subprocess.run([str(BIN / "podman-compose"), "-f", str(compose_file), *options,
                           "config"], capture_output=True, text=True, timeout=120,
                          cwd=compose_file.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return yaml.safe_load(done.stdout)


needs_podman_compose = pytest.mark.skipif(
    not (BIN / "podman-compose").exists(), reason="podman-compose (a dev dependency) is missing"
)


def test_the_file_is_valid_against_the_compose_spec():
    done = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema",
                           "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_profile_holds_redis_two_replicas_one_services_process_and_a_migration():
    assert {"redis", "prefect-migrate", "prefect-services", *REPLICAS, *SCALED_WORKERS} == SCALED
    for replica in REPLICAS:
        assert command(replica)[:3] == ["prefect", "server", "start"]
        assert "--no-services" in command(replica)
    services = [n for n in SCALED if command(n)[:4] == ["prefect", "server", "services", "start"]]
    assert services == ["prefect-services"]
    assert command("prefect-migrate") == ["prefect", "server", "database", "upgrade", "-y"]
    assert SERVICES["prefect-migrate"]["restart"] == "no"  # a one-off, not restarted when done


def test_every_server_process_has_the_settings_the_loopback_check_runs_with():
    expected = {
        **plane.plane_settings(DATABASE, "redis", 6379),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    for name in ["prefect-migrate", "prefect-services", *REPLICAS]:
        environment = dict(SERVICES[name]["environment"])
        environment.pop("PREFECT_UI_API_URL", None)  # a replica's own address, for its UI
        assert environment == expected, name


def test_the_replicas_run_only_after_the_migration_and_with_redis_healthy():
    for name in ["prefect-services", *REPLICAS]:
        assert SERVICES[name]["depends_on"] == {
            "prefect-migrate": {"condition": "service_completed_successfully"},
            "redis": {"condition": "service_healthy"},
        }
    assert SERVICES["prefect-migrate"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"}
    }


def test_each_scaled_worker_talks_to_one_replica_round_robin():
    urls = [f"http://{replica}:4200/api" for replica in REPLICAS]
    assigned = plane.assign_replicas(SCALED_WORKERS, urls)
    for worker, replica in zip(SCALED_WORKERS, REPLICAS, strict=True):
        assert SERVICES[worker]["environment"]["PREFECT_API_URL"] == assigned[worker]
        assert SERVICES[worker]["depends_on"] == {
            replica: {"condition": "service_healthy"},
            "prefect-services": {"condition": "service_started"},
        }


def test_the_scaled_servers_use_the_default_servers_image_so_one_pin_covers_both():
    for name in ["prefect-migrate", "prefect-services", *REPLICAS]:
        assert SERVICES[name]["image"] == SERVICES["server"]["image"]


def test_the_scaled_workers_are_built_like_the_department_workers():
    shared = DATA["x-build-args"]
    for worker in SCALED_WORKERS:
        build = SERVICES[worker]["build"]
        assert build["context"] == "."
        assert build["args"] == {**shared, "DEPARTMENT": "${AIRNUB_SCALED_DEPARTMENT:-}"}


def test_published_ports_are_on_loopback_only():
    for name in SCALED:
        for port in SERVICES[name].get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_redis_keeps_nothing_on_disk():
    assert command("redis") == ["redis-server", "--save", "", "--appendonly", "no"]
    assert "volumes" not in SERVICES["redis"]


def test_no_default_service_depends_on_the_profile():
    for name, service in SERVICES.items():
        if name not in SCALED:
            assert not set(service.get("depends_on", {})) & SCALED, name


@needs_podman_compose
def test_compose_renders_the_profile_only_when_asked(tmp_path):
    default = rendered(COMPOSE)["services"]
    assert set(default) == set(SERVICES) - SCALED
    scaled = rendered(COMPOSE, "--profile", "scaled")["services"]
    assert set(scaled) == set(SERVICES)
    assert scaled["api-2"]["environment"]["PREFECT_UI_API_URL"] == "http://127.0.0.1:4202/api"


@needs_podman_compose
def test_a_plain_up_renders_exactly_what_the_file_without_the_profile_renders(tmp_path):
    """The profile adds nothing to what `docker compose up` starts, byte for byte."""
    without = {k: v for k, v in DATA.items() if not k.startswith("x-scaled")}
    without["services"] = {k: v for k, v in SERVICES.items() if k not in SCALED}
    copy = tmp_path / "docker-compose.yml"
    copy.write_text(yaml.safe_dump(without, sort_keys=False), encoding="utf-8")
    theirs, ours = rendered(copy)["services"], rendered(COMPOSE)["services"]
    for service in [*theirs.values(), *ours.values()]:
        # the one difference allowed: the build context, relative to each file's folder
        assert service.get("build", {}).pop("context", str(tmp_path)) in {str(tmp_path), str(REPO)}
    assert ours == theirs
