"""Client-side settings for runs this process drives (``airnub run`` and the tests).

All are measured in ``bench/README.md``:

* the flow heartbeat is switched off: its thread adds up to a second to every
  flow and subflow, and it only matters for spotting crashed runs under a worker;
* Prefect builds a new verified ``ssl.SSLContext`` for every client it creates,
  parsing the whole CA bundle each time (about 20 ms of CPU, holding the GIL, on
  OpenSSL 3). Every flow and subflow creates clients, so concurrent categories
  queue behind it. Here one verified context per CA file is shared instead; it
  is never modified after creation, and sharing an SSLContext between clients
  is safe. Upstream: PrefectHQ/prefect#19106. The patch itself is
  :data:`airnub_platform.prefect_patches.SHARED_SSL_CONTEXT`.
"""

from __future__ import annotations

from typing import Any

from airnub_platform import prefect_patches


def share_ssl_context() -> None:
    """Make Prefect's clients in this process share one verified SSL context.

    An optional speed-up: on a Prefect it was not written for, one warning and no change."""
    prefect_patches.SHARED_SSL_CONTEXT.apply()


def preload_engine() -> None:
    """Import what Prefect imports lazily on the first flow run (about 0.5 s here),
    so it overlaps with waiting for the API to boot instead of delaying the first run."""
    import prefect.flow_engine
    import prefect.task_engine  # noqa: F401


def local_run_settings() -> dict[Any, Any]:
    """Prefect setting updates for a run driven from this process."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    share_ssl_context()
    # The drains run as the session ends: a moved one fails here, before the run, not there.
    prefect_patches.client_drains()
    return {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
