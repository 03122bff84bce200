"""`airnub dev` brings the platform up on loopback, runs every department, and stops clean."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

AIRNUB = str(Path(sys.executable).with_name("airnub"))
DEPLOYMENTS = [
    "Ingestion Flow (Project Alpha)/dept-project-alpha-ingestion",
    "Ingestion Flow (Project Beta)/dept-project-beta-ingestion",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("dev")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(scratch / "home"), "AIRNUB_DATA_ROOT": str(scratch / "data")}
    port = free_port()
    log = (scratch / "dev.log").open("w")
    process = subprocess.Popen([AIRNUB, "dev", "--port", str(port)], env=env, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
    state_path = scratch / "home" / "airnub-dev.json"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if state_path.exists() and json.loads(state_path.read_text()).get("ready"):
            break
        time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"airnub dev did not get ready:\n{(scratch / 'dev.log').read_text()[-3000:]}")
    yield {"env": env, "url": f"http://127.0.0.1:{port}/api", "scratch": scratch,
           "state": json.loads(state_path.read_text()), "process": process}  # fmt: skip
    if process.poll() is None:
        process.kill()


def airnub(platform, *args):
    return subprocess.run([AIRNUB, *args], env=platform["env"], capture_output=True, text=True)


def test_a_second_one_says_it_is_running(platform):
    status = airnub(platform, "dev", "--status")
    assert status.returncode == 0
    assert "ready" in status.stdout and "2 workers" in status.stdout
    second = airnub(platform, "dev", "--port", str(free_port()))
    assert second.returncode == 1
    assert "airnub dev is already running" in second.stderr


def test_each_departments_deployment_runs_to_completion(platform):
    url = platform["url"]
    with httpx.Client(base_url=url, timeout=10) as api:
        runs = {}
        for name in DEPLOYMENTS:
            deployment = api.get(f"/deployments/name/{quote(name, safe='/')}").json()
            run = api.post(f"/deployments/{deployment['id']}/create_flow_run", json={}).json()
            runs[name] = run["id"]
        deadline = time.monotonic() + 180
        states = {}
        while time.monotonic() < deadline:
            states = {n: api.get(f"/flow_runs/{i}").json()["state_type"] for n, i in runs.items()}
            if all(s in ("COMPLETED", "FAILED", "CRASHED") for s in states.values()):
                break
            time.sleep(1)
    assert states == dict.fromkeys(DEPLOYMENTS, "COMPLETED")
    data = platform["scratch"] / "data"
    assert (data / "dept_project_alpha/ingestion/public_api_data/records.json").is_file()
    assert (data / "dept_project_beta/ingestion/weather_observations/observations.json").is_file()


def test_stop_leaves_no_process_behind(platform):
    pids = [platform["state"]["pid"], *platform["state"]["children"].values()]
    stopped = airnub(platform, "dev", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    platform["process"].wait(timeout=30)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (platform["scratch"] / "home" / "airnub-dev.json").exists()
    assert airnub(platform, "dev", "--status").returncode == 1
