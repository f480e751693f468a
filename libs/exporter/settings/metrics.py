"""Where each process serves its Prometheus metrics, and who may read them."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class MetricsSettings(BaseModel):
    # Off: no HTTP or consumer middleware and no listener (the benchmarks' "without" run).
    enabled: bool = True
    # The metrics listener of this process; None: none. Loopback by default: metrics name topics,
    # routes and volumes, so a deployment opens them to its scraper's network on purpose.
    host: str = Field(default="127.0.0.1", min_length=1, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65_535)
    # The request-api also answers ``GET /metrics`` on its public port, to this bearer token only;
    # None: it answers 404 there.
    token: SecretStr | None = Field(default=None, min_length=16, max_length=256)
    # Gauges read from MongoDB and Kafka (outbox, jobs, due backlog, lag) are refreshed this often
    # in the background, each read cut off after ``query_timeout_seconds``.
    refresh_seconds: float = Field(default=15.0, ge=1.0, le=3600.0)
    query_timeout_seconds: float = Field(default=5.0, ge=0.1, le=60.0)
