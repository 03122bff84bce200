"""Trigger deployments on a Prefect API and wait for their runs, over plain HTTP.

Used by the integration checks (a real server and workers), which talk to an API
that is not the one this process's Prefect settings point at.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import httpx

FINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


def trigger(api_url: str, deployment: str, parameters: dict | None = None) -> str:
    """Create a run of ``'flow name/deployment name'`` (with ``parameters`` over the
    deployment's own, if given); returns the flow run id."""
    with httpx.Client(base_url=api_url, timeout=30) as api:
        found = api.get(f"/deployments/name/{quote(deployment, safe='/')}")
        if found.status_code == 404:
            raise LookupError(f"{api_url}: no deployment named {deployment!r}")
        found.raise_for_status()
        created = api.post(f"/deployments/{found.json()['id']}/create_flow_run",
                           json={"parameters": parameters} if parameters else {})  # fmt: skip
        created.raise_for_status()
        return created.json()["id"]


def wait_for(api_url: str, run_ids: list[str], timeout: float = 180) -> dict[str, str]:
    """Each run's final state type, or its last state with '(timed out)'."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    with httpx.Client(base_url=api_url, timeout=30) as api:
        while True:
            states = {i: api.get(f"/flow_runs/{i}").json()["state_type"] for i in run_ids}
            if all(state in FINAL for state in states.values()):
                return states
            if time.monotonic() > deadline:
                return {i: s if s in FINAL else f"{s} (timed out)" for i, s in states.items()}
            time.sleep(0.5)
