"""Every Prometheus metric family of the services, declared once, in one registry per process.

Names follow Prometheus' conventions: the ``exporter_`` prefix, the unit in the name
(``_seconds``, ``_bytes``), ``_total`` on counters. Label values are always from a closed set (route
templates, registered topics, enums, consumer groups of our configuration, partition numbers):
never a tenant, job, user or anything a request or a message chose, so that no one can grow
the number of series.

The process-wide registry (not prometheus_client's global one) holds only these families and
FastStream's consumer families (``exporter_received_*``, ``exporter_published_*``, see
``exporter.adapters.kafka.make_broker``); the integration tests, which run several services in
one process, read the counters' increments, never their absolute values.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exporter.contracts.job import JobResult
from exporter.domain.job_life import JobStatus
from exporter.topics import all_topic_names

REGISTRY = CollectorRegistry(auto_describe=True)
PREFIX = "exporter"
# Label values for what falls outside the closed sets.
OTHER = "other"
UNMATCHED = "unmatched"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Latency buckets from a cached read (a few ms) to a slow create under load.
HTTP_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Renders last from a fraction of a second to an hour.
RENDER_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
# How late a run is fired: a poll interval at best, hours after an outage.
FIRE_LAG_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0, 3600.0, 86_400.0)
FLUSH_BUCKETS = (10, 100, 1_000, 10_000, 50_000, 100_000, 500_000, 1_000_000)

HTTP_REQUESTS = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests answered by the request-api, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time from a request's arrival to its answer's last byte, by method and route template.",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
    registry=REGISTRY,
)
DEAD_LETTERED = Counter(
    f"{PREFIX}_dead_lettered_messages",
    "Consumed records parked on <topic>.dlq, by source topic.",
    ["topic"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    f"{PREFIX}_consumer_lag_messages",
    "Records on a partition not yet committed by a consumer group (end offset minus committed).",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    f"{PREFIX}_outbox_pending_events", "Events in the outbox not yet published.", registry=REGISTRY
)
OUTBOX_OLDEST_AGE = Gauge(
    f"{PREFIX}_outbox_oldest_age_seconds",
    "Age of the oldest outbox entry (0 when the outbox is empty).",
    registry=REGISTRY,
)
JOBS = Gauge(f"{PREFIX}_jobs", "Jobs in the store, by status.", ["status"], registry=REGISTRY)
JOBS_FINISHED = Counter(
    f"{PREFIX}_jobs_finished",
    "Jobs the renderer finished, by outcome (done, failed) and format.",
    ["status", "format"],
    registry=REGISTRY,
)
RENDER_DURATION = Histogram(
    f"{PREFIX}_render_duration_seconds",
    "Time to render a job's files into the object store, by format.",
    ["format"],
    buckets=RENDER_BUCKETS,
    registry=REGISTRY,
)
RENDER_ROWS = Counter(
    f"{PREFIX}_render_rows", "Rows written in rendered files, by format.", ["format"], registry=REGISTRY
)
RENDER_BYTES = Counter(
    f"{PREFIX}_render_bytes", "Bytes of rendered files stored, by format.", ["format"], registry=REGISTRY
)
DELIVERIES = Counter(
    f"{PREFIX}_deliveries",
    "Notification delivery attempts recorded, by medium and outcome (the delivery's status after it).",
    ["medium", "outcome"],
    registry=REGISTRY,
)
FIRE_LAG = Histogram(
    f"{PREFIX}_scheduler_fire_lag_seconds",
    "How long after its due time the scheduler fired a request's run.",
    buckets=FIRE_LAG_BUCKETS,
    registry=REGISTRY,
)
DUE_BACKLOG = Gauge(
    f"{PREFIX}_scheduler_due_requests", "Requests due now and not fired yet.", registry=REGISTRY
)
INGESTED = Counter(
    f"{PREFIX}_ingested_records",
    "Records stored by the ingestor (readings, things, entities), by topic; rate() gives records/s.",
    ["topic"],
    registry=REGISTRY,
)
FLUSH_SIZE = Histogram(
    f"{PREFIX}_ingest_flush_records",
    "Readings stored per flush of the measurements' consumer.",
    buckets=FLUSH_BUCKETS,
    registry=REGISTRY,
)

_TOPICS = frozenset(all_topic_names())


def job_finished(extension: str, result: JobResult) -> None:
    """A rendered job's outcome; its time, rows and bytes when done."""
    JOBS_FINISHED.labels(result.status.value, extension).inc()
    if result.status is JobStatus.DONE:
        if result.started_at is not None and result.completed_at is not None:
            seconds = (result.completed_at - result.started_at).total_seconds()
            RENDER_DURATION.labels(extension).observe(max(0.0, seconds))
        RENDER_ROWS.labels(extension).inc(result.row_count or 0)
        RENDER_BYTES.labels(extension).inc(result.size_in_bytes or 0)


def topic_label(name: object) -> str:
    """A registered topic's name, else ``other``: a record's topic is the broker's word, not ours."""
    return name if isinstance(name, str) and name in _TOPICS else OTHER


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else OTHER
