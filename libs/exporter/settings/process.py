"""What every process shares about running: liveness, readiness and the start-up wait
(``Settings.liveness``), and where the embedded servers live (``Settings.local``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class LivenessSettings(BaseModel):
    """Liveness by progress (``exporter.liveness``) and the wait for dependencies at start-up."""

    # A loop whose next pass is this late past its own interval is stalled.
    stall_seconds: float = Field(default=60.0, ge=1, le=3600)
    # One message or batch in hand this long stalls its consumer (a render may last an hour).
    busy_seconds: float = Field(default=7200.0, ge=1, le=86_400)
    # Where a service without HTTP writes its liveness report (None: nowhere), and how often.
    file: Path | None = None
    file_interval_seconds: float = Field(default=5.0, ge=0.1, le=60)
    # At start-up each of MongoDB, Kafka and S3 is tried for up to attempt_seconds at a time,
    # with growing pauses, until it answers or wait_seconds have passed (then the process exits).
    dependency_wait_seconds: float = Field(default=600.0, ge=1, le=86_400)
    dependency_attempt_seconds: float = Field(default=10.0, ge=0.1, le=300)
    # A process stalled this long exits (status 70) for its supervisor to restart it; None: never.
    exit_after_seconds: float | None = Field(default=None, ge=1, le=86_400)
    # Readiness: MongoDB, Kafka and S3 are each checked this often in the background (probes read
    # the latest results), and a check without an answer within the timeout makes it not ready.
    readiness_interval_seconds: float = Field(default=5.0, ge=0.5, le=300)
    readiness_timeout_seconds: float = Field(default=2.0, ge=0.1, le=60)


class LocalServersSettings(BaseModel):
    """Where ``exporter.local`` keeps the embedded servers' data, logs and PIDs."""

    run_dir: Path = Path(".run")
    # How long the embedded MongoDB-wire server keeps a transaction whose client died (see
    # exporter.local.mongo_server): other writers run slowly until it is reaped.
    mongo_transaction_lifetime_seconds: float = Field(default=20.0, ge=5, le=600)
