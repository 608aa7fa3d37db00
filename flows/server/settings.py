"""Settings for the temporary Prefect API a run starts when no PREFECT_API_URL is set. Applied before
Prefect is imported (flows/run/flow.py applies them at its import); a user's own environment wins."""
from __future__ import annotations

import os

# Periodic services of Prefect's server (scheduler, late runs, automations...) serve deployments the
# temporary API will never have, and compete with the run for the SQLite file ("database is locked"
# tracebacks, PrefectHQ/prefect#18934): off.
IDLE_SERVICES = ("SCHEDULER", "LATE_RUNS", "FOREMAN", "PAUSE_EXPIRATIONS", "CANCELLATION_CLEANUP", "REPOSSESSOR",
                 "TRIGGERS", "DB_VACUUM")


def quiet_embedded_prefect() -> None:
    """No analytics (offline: an ERROR nobody can act on), no idle services, patient start-up and lock waits,
    a quick server stop at exit. Nothing when PREFECT_API_URL names a server."""
    if os.environ.get("PREFECT_API_URL"):
        return
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_DATABASE_TIMEOUT", "60")
    # Prefect gives its temporary API 20 s to start: not enough on a busy machine. Waiting longer costs nothing.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # At exit uvicorn waits for the run's keep-alive connections to close, which they never do, until
    # Prefect kills it after 5 s; everything is written by then: close them after 1 s.
    os.environ.setdefault("UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN", "1")
    for service in IDLE_SERVICES:
        os.environ.setdefault(f"PREFECT_SERVER_SERVICES_{service}_ENABLED", "false")
