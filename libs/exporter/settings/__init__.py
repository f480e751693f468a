"""The one settings object: every service, script and test reads its configuration from here.

Values come from environment variables prefixed ``EXPORTER_``; nested groups use ``__``
(``EXPORTER_MONGO__URI``, ``EXPORTER_STORAGE__SECRET_KEY``). The defaults are the embedded
local servers that ``make run`` starts, so a fresh checkout runs with no configuration.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from exporter.domain.access import Action
from exporter.settings.ingestor import IngestorSettings
from exporter.settings.metrics import MetricsSettings
from exporter.settings.mews import MewsSettings
from exporter.settings.notifier import NotifierSettings
from exporter.settings.process import LivenessSettings, LocalServersSettings
from exporter.settings.transfer import LOCAL_SEALING_KEY, TransferSettings
from exporter.topics import Topic

KeyId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
# Only for make run and tests; Settings._safe_in_production refuses it.
LOCAL_SIGNING_SECRET = "exporter-local-signing-secret"  # noqa: S105


def _known_topics(topics: list[str]) -> list[str]:
    """A typo here would switch a topic's checks off: only registered topic names (or "*") pass."""
    known = {topic.value for topic in Topic}
    if unknown := [topic for topic in topics if topic != "*" and topic not in known]:
        raise ValueError(f"unknown topics {unknown}; known: {sorted(known)}")
    return topics


TopicNames = Annotated[list[str], AfterValidator(_known_topics)]


class ProducerSettings(BaseModel):
    """An upstream system trusted to publish signed records on ``topics`` for ``tenants`` ("*": any)."""

    secret: SecretStr = Field(min_length=16)
    topics: TopicNames = Field(min_length=1)
    tenants: list[str] = Field(min_length=1)


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:19092"
    client_id: str = "exporter"
    # The embedded broker (Tansu) does not support the idempotent producer; a real cluster may.
    enable_idempotence: bool = False
    # Producer acknowledgements: "all" waits for every in-sync replica, so an event the outbox
    # deletes as published survives the loss of the partition's leader. The idempotent producer
    # requires "all".
    acks: Literal["all", 1, 0] = "all"
    # Partitions and replicas of each topic the project creates.
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    # How every Kafka client connects: SASL needs username and password; *_SSL and SSL use TLS,
    # trusting ca_file (None: the system's CAs), with cert_file/key_file for mutual TLS.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    # The services sign every event they publish with this key (see exporter.signing).
    signing_key_id: KeyId = "exporter"
    signing_secret: SecretStr = Field(default=SecretStr(LOCAL_SIGNING_SECRET), min_length=16)
    # Upstream producers by key id, each allowed some topics and tenants.
    producers: dict[KeyId, ProducerSettings] = Field(default_factory=dict)
    # Records on these topics are consumed only when signed by a producer allowed to publish them.
    signed_topics: TopicNames = Field(
        default_factory=lambda: [
            Topic.EXPORT_REQUESTED.value,
            Topic.EXPORT_COMPLETED.value,
            Topic.IAM_POLICY_UPDATED.value,
        ]
    )

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_") and (self.username is None or self.password is None):
            raise ValueError(f"username and password are required with {self.security_protocol}")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.signing_key_id in self.producers:
            raise ValueError(f"producer key id {self.signing_key_id!r} is the services' own signing_key_id")
        if self.enable_idempotence and self.acks != "all":
            raise ValueError("enable_idempotence requires acks 'all'")
        return self


class MongoSettings(BaseModel):
    uri: SecretStr = SecretStr("mongodb://127.0.0.1:27018/?directConnection=true")
    database: str = "exporter"
    # Timeouts and lost servers: without them a call to a server that accepts and never answers
    # waits for ever. ``connect_timeout_seconds`` bounds a connection's opening and the wait for a
    # server to select (a restarting store is waited for that long); ``operation_timeout_seconds``
    # each round trip on an open connection, so it must exceed the slowest single query.
    connect_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    operation_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)


# Known to every checkout, so refused in production.
LOCAL_STORAGE_SECRET_KEY = "exporter-local-secret-key"  # noqa: S105
MIN_SECRET_BYTES = 32


class StorageSettings(BaseModel):
    endpoint: str = "127.0.0.1:18333"
    access_key: str = "exporter"
    secret_key: SecretStr = SecretStr(LOCAL_STORAGE_SECRET_KEY)
    bucket: str = "exports"
    region: str = "us-east-1"
    secure: bool = False
    # Host that clients see in presigned links, when it differs from the one services reach.
    public_endpoint: str | None = None
    # A dead or hanging object store fails a call within about (connect + read) x (retries + 1)
    # seconds; the SDK's own defaults (300 s, 5 retries) held a caller for half an hour.
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    read_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    retries: int = Field(default=2, ge=0, le=10)


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8025
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["none", "starttls", "tls"] = "none"
    validate_certs: bool = True
    sender: str = "Exporter <exporter@localhost>"
    timeout_seconds: float = 30.0
    # PEM bundle of extra certificate authorities to trust (a private CA); None: the system's.
    ca_file: Path | None = None
    # Files go along as attachments while their base64-encoded total stays under this; 0: links only.
    attach_max_bytes: int = Field(default=10 * 1024 * 1024, ge=0)
    # Connections used at once and kept open between emails; more sends wait for one.
    connections: int = Field(default=16, ge=1)


class GrantSettings(BaseModel):
    """A standing grant: ``subjects`` (``user:<id>``/``role:<name>``) may do ``actions`` in ``tenant``."""

    tenant: str
    subjects: list[str]
    actions: list[Action]
    resource: str = "*"


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    # Processes serving the API; each has its own connections, group commit and relay.
    workers: int = Field(default=1, ge=1, le=64)
    # Production's default is "jwt" (see Settings._safe_in_production).
    auth_mode: Literal["header", "jwt"] = "header"
    # Sent by the gateway in X-Gateway-Secret; when set, every request without it is 401 (any mode).
    gateway_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    # The identity provider's published keys (RS256/ES256), instead of one jwt_public_key.
    jwt_jwks_url: str | None = None
    # How long fetched keys are trusted; an unknown key id refreshes them at most once a cooldown.
    jwt_jwks_lifespan_seconds: float = Field(default=300.0, gt=0)
    jwt_jwks_cooldown_seconds: float = Field(default=30.0, ge=0)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # Header mode only, for a request without X-Tenant-Id; never in production.
    default_tenant: str = Field(default="default", min_length=1, max_length=100)
    # "any_user": every user may create requests in their own tenant; "grant": only those granted
    # exporter:exports:create on "*".
    create_policy: Literal["any_user", "grant"] = "any_user"
    download_link_ttl_seconds: int = Field(default=30, ge=1, le=7 * 24 * 3600)
    grants: list[GrantSettings] = Field(default_factory=list)
    # Queued plus running jobs one user may have; more → 429.
    max_active_jobs_per_user: int = Field(default=20, ge=1)
    quota_retry_after_seconds: int = Field(default=30, ge=1)
    # Seeds 001/003: refuse a new export while one for the same target is queued or running.
    one_active_job_per_target: bool = True
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    min_periodicity_seconds: int = Field(default=60, ge=1)
    # Active (scheduled, not deleted or finished) requests one user, and one tenant, may have; more → 429.
    max_active_requests_per_user: int = Field(default=1000, ge=1)
    max_active_requests_per_tenant: int = Field(default=100_000, ge=1)
    # The git commit this build was made from, set by the build (never read from .git at run time).
    build_commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{7,40}$")


class SchedulerSettings(BaseModel):
    poll_interval_seconds: float = Field(default=0.5, gt=0)
    batch_size: int = Field(default=500, ge=1)
    max_catch_up_runs: int = Field(default=24, ge=1, le=1000)
    sweep_interval_seconds: float = Field(default=10.0, gt=0)
    working_timeout_seconds: float = Field(default=3600.0, gt=0)
    stuck_jobs: Literal["requeue", "fail"] = "requeue"
    max_job_attempts: int = Field(default=3, ge=1, le=100)
    retention_days: float = Field(default=30.0, gt=0)
    # Lost jobs: one still ``notProcessed`` this long after it was (last) announced, its
    # ``export.requested`` published, is announced again (a renderer's claim makes a duplicate
    # harmless); after ``max_job_announcements`` it fails. Renderers take one job at a time, so a
    # job may legitimately wait behind long renders: the product of both must exceed that.
    lost_job_seconds: float = Field(default=900.0, ge=1, le=7 * 24 * 3600)
    max_job_announcements: int = Field(default=8, ge=1, le=100)
    # How often expiry runs, on a loop of its own (its deletions wait on the object store).
    expiry_interval_seconds: float = Field(default=60.0, gt=0, le=24 * 3600)

    @property
    def retention(self) -> timedelta:
        """How long a job's files are kept: the sweep expires it then, and links say so."""
        return timedelta(days=self.retention_days)


class OutboxSettings(BaseModel):
    # Only the claim pass for orphaned events polls; a writer's own events go out at once.
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=500, ge=1)
    lease_seconds: float = Field(default=30.0, gt=0)


MIB = 1024 * 1024


class RendererSettings(BaseModel):
    read_batch_size: int = Field(default=10_000, ge=1)
    # A recurring run's window of readings stored since the last run is read only this long after
    # it ended: readings are stamped on arrival a moment before their flush is visible.
    arrival_settle_seconds: float = Field(default=5.0, ge=0)
    # Files above these become numbered parts (seed 003 lists several files); None: no limit.
    split_rows: int | None = Field(default=None, ge=1)
    split_bytes: int | None = Field(default=None, ge=1)
    # Rendered bytes go to the object store in multipart parts of this size as they are made
    # (S3 refuses parts under 5 MiB); about three parts per file being written are held in memory.
    upload_part_bytes: int = Field(default=8 * MIB, ge=5 * MIB, le=5 * 1024 * MIB)
    # A running job's lease, renewed with its progress; another renderer takes over a lapsed one.
    lease_seconds: float = Field(default=60.0, gt=0)
    # How often a running job records its progress and notices that it was cancelled.
    progress_interval_seconds: float = Field(default=2.0, gt=0)
    # Transient storage or database errors: attempts per job, with exponential backoff between.
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_initial_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    # Long renders: each runs beside the consumer, at most this many at once per process (then
    # the consumer pauses its partitions, polling on, and the records wait in Kafka).
    concurrent_renders: int = Field(default=2, ge=1, le=32)
    # The consumer's longest wait between two polls before it is put out of its group; renders
    # no longer hold its polls up, so this need not cover the longest render.
    max_poll_interval_seconds: float = Field(default=300.0, ge=1.0, le=3600.0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EXPORTER_",
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="ignore",
    )

    environment: Literal["local", "test", "production"] = "local"
    log_level: str = "INFO"
    # "json": one object per line with the ids of the job, request or message in hand.
    log_format: Literal["json", "text"] = "text"
    kafka: KafkaSettings = KafkaSettings()
    mongo: MongoSettings = MongoSettings()
    storage: StorageSettings = StorageSettings()
    smtp: SmtpSettings = SmtpSettings()
    api: ApiSettings = ApiSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    outbox: OutboxSettings = OutboxSettings()
    renderer: RendererSettings = RendererSettings()
    notifier: NotifierSettings = NotifierSettings()
    ingestor: IngestorSettings = IngestorSettings()
    local: LocalServersSettings = LocalServersSettings()
    liveness: LivenessSettings = LivenessSettings()
    mews: MewsSettings = MewsSettings()
    metrics: MetricsSettings = MetricsSettings()
    transfer: TransferSettings = TransferSettings()

    @model_validator(mode="after")
    def _safe_in_production(self) -> Settings:
        """Production refuses what is safe only on a developer's machine: identity headers that
        anyone who reaches the API could send, and secrets that every checkout knows (the storage
        key, the Kafka signing secret).

        Header mode is the default only outside production: there it must be chosen, with a
        gateway secret, so the services that serve no API need no identity settings at all."""
        if self.environment != "production":
            return self
        if "auth_mode" not in self.api.model_fields_set:
            self.api = self.api.model_copy(update={"auth_mode": "jwt"})
        problems = []
        if self.api.auth_mode == "header" and self.api.gateway_secret is None:
            problems.append(
                "api.auth_mode 'header' trusts identity headers anyone could send: set api.gateway_secret "
                "(the gateway sends it in X-Gateway-Secret) or use api.auth_mode 'jwt'"
            )
        if self.api.jwt_jwks_url and not self.api.jwt_jwks_url.lower().startswith("https://"):
            problems.append("api.jwt_jwks_url must be https: whoever can alter the key set can sign tokens")
        if self.storage.secret_key.get_secret_value() == LOCAL_STORAGE_SECRET_KEY:
            problems.append("storage.secret_key is the local default")
        if self.kafka.signing_secret.get_secret_value() == LOCAL_SIGNING_SECRET:
            # It is in this source: anyone could sign events as the services with it.
            problems.append("kafka.signing_secret is the local default")
        if self.transfer.sealing_key.get_secret_value() == LOCAL_SEALING_KEY:
            problems.append("transfer.sealing_key is the local default")
        if self.transfer.allow_private_addresses:
            problems.append("transfer.allow_private_addresses lets tenants reach internal hosts")
        secrets = {"api.jwt_secret": self.api.jwt_secret, "api.gateway_secret": self.api.gateway_secret}
        for name, secret in secrets.items():
            if secret is not None and len(secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
                problems.append(f"{name} is shorter than {MIN_SECRET_BYTES} bytes")
        if problems:
            raise ValueError("unsafe in production: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _idempotent_producer_in_production(self) -> Settings:
        """A real cluster supports the idempotent producer, so production uses it unless told
        not to (a broker without it, or acks other than "all"); the embedded one does not, so
        elsewhere it is off."""
        chosen = "enable_idempotence" in self.kafka.model_fields_set
        if self.environment == "production" and not chosen and self.kafka.acks == "all":
            self.kafka = self.kafka.model_copy(update={"enable_idempotence": True})
        return self

    def to_env(self) -> dict[str, str]:
        """Every setting as the ``EXPORTER_*`` variable that reads back as it, secrets included.

        A child process given these and no other ``EXPORTER_*`` variable gets equal settings. A
        None is left out: every optional setting defaults to None.
        """
        return dict(_env_variables(self.model_dump(), "EXPORTER_"))


def _env_variables(values: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    for name, value in values.items():
        variable = f"{prefix}{name.upper()}"
        if isinstance(value, Mapping) and all(key == key.lower() for key in value):
            yield from _env_variables(value, f"{variable}__")
        elif isinstance(value, Mapping):  # names an env variable would lower-case (tenant ids)
            yield variable, json.dumps(_revealed(value))
        elif isinstance(value, SecretStr):
            yield variable, value.get_secret_value()
        elif isinstance(value, str | Path | int | float):
            yield variable, str(value)
        elif value is not None:
            yield variable, json.dumps(value)


def _revealed(value: Any) -> Any:
    """``value`` with its secrets as plain text, for JSON."""
    if isinstance(value, Mapping):
        return {key: _revealed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_revealed(item) for item in value]
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value) if isinstance(value, Path) else value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process from the environment."""
    return Settings()
