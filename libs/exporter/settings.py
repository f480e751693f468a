"""The one settings object: every service, script and test reads its configuration from here.

Values come from environment variables prefixed ``EXPORTER_``; nested groups use ``__``
(``EXPORTER_MONGO__URI``, ``EXPORTER_STORAGE__SECRET_KEY``). The defaults are the embedded
local servers that ``make run`` starts, so a fresh checkout runs with no configuration.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:19092"
    client_id: str = "exporter"
    # The embedded broker (Tansu) does not support the idempotent producer; a real cluster may.
    enable_idempotence: bool = False
    # Partitions and replicas of each topic the project creates.
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)


class MongoSettings(BaseModel):
    uri: SecretStr = SecretStr("mongodb://127.0.0.1:27018/?directConnection=true")
    database: str = "exporter"


class StorageSettings(BaseModel):
    endpoint: str = "127.0.0.1:18333"
    access_key: str = "exporter"
    secret_key: SecretStr = SecretStr("exporter-local-secret-key")
    bucket: str = "exports"
    region: str = "us-east-1"
    secure: bool = False
    # Host that clients see in presigned links, when it differs from the one services reach.
    public_endpoint: str | None = None


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
    actions: list[str]
    resource: str = "*"


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    # Processes serving the API; each has its own connections, group commit and relay.
    workers: int = Field(default=1, ge=1, le=64)
    auth_mode: Literal["header", "jwt"] = "header"
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_audience: str | None = None
    default_tenant: str = "default"
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


class SchedulerSettings(BaseModel):
    poll_interval_seconds: float = Field(default=0.5, gt=0)
    batch_size: int = Field(default=500, ge=1)
    max_catch_up_runs: int = Field(default=24, ge=1, le=1000)
    sweep_interval_seconds: float = Field(default=10.0, gt=0)
    working_timeout_seconds: float = Field(default=3600.0, gt=0)
    stuck_jobs: Literal["requeue", "fail"] = "requeue"
    max_job_attempts: int = Field(default=3, ge=1, le=100)
    retention_days: float = Field(default=30.0, gt=0)


class OutboxSettings(BaseModel):
    # Only the claim pass for orphaned events polls; a writer's own events go out at once.
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=500, ge=1)
    lease_seconds: float = Field(default=30.0, gt=0)


MIB = 1024 * 1024


class RendererSettings(BaseModel):
    read_batch_size: int = Field(default=10_000, ge=1)
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


def _lowercase_names(webhooks: dict[str, SecretStr]) -> dict[str, SecretStr]:
    """Names are case-blind: environment variable names reach us upper- or lower-cased."""
    return {name.lower(): url for name, url in webhooks.items()}


WebhookUrls = Annotated[dict[str, SecretStr], AfterValidator(_lowercase_names)]


class ContactSettings(BaseModel):
    """Where an owner's notifications go when a message names no recipients, per medium.

    ``owner`` ``*`` is everyone without an entry of their own.
    """

    owner: str
    email: list[str] = Field(default_factory=list)
    slack: list[str] = Field(default_factory=list)
    telegram: list[str] = Field(default_factory=list)
    discord: list[str] = Field(default_factory=list)


class SlackSettings(BaseModel):
    base_url: str = "https://slack.com/api/"
    # A bot token (xoxb-…) with chat:write and files:write, for channel ids.
    bot_token: SecretStr | None = None
    # Incoming webhooks by name, for ``webhook:NAME`` recipients; the URLs are secrets.
    webhooks: WebhookUrls = Field(default_factory=dict)
    attach_max_bytes: int = Field(default=10 * 1024 * 1024, ge=0)


class TelegramSettings(BaseModel):
    base_url: str = "https://api.telegram.org"
    bot_token: SecretStr | None = None
    # The Bot API takes documents up to 50 MB.
    attach_max_bytes: int = Field(default=10 * 1024 * 1024, ge=0, le=50 * 1024 * 1024)


class DiscordSettings(BaseModel):
    # Webhooks by name, for ``webhook:NAME`` recipients; the URLs carry their token.
    webhooks: WebhookUrls = Field(default_factory=dict)
    # Discord refuses larger uploads to servers without boosts.
    attach_max_bytes: int = Field(default=8 * 1024 * 1024, ge=0)


class NotifierSettings(BaseModel):
    # Links in notifications must outlive a person's reading delay, unlike the API's 30 s links.
    link_ttl_seconds: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)
    contacts: list[ContactSettings] = Field(
        default_factory=lambda: [ContactSettings(owner="*", email=["owner@localhost"])]
    )
    # Deliveries in flight at once; more wait, and so does the consumer behind them.
    concurrency: int = Field(default=64, ge=1)
    # export.completed events taken per batch: their jobs read in one query, claimed in one commit.
    batch_max_events: int = Field(default=100, ge=1)
    # Transient failures are retried with exponential backoff and jitter, up to max_attempts.
    max_attempts: int = Field(default=6, ge=1)
    backoff_initial_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=300.0, gt=0)
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    # A delivery claimed this long ago and never recorded was cut off mid-send (see delivery.py).
    sending_lease_seconds: float = Field(default=600.0, gt=0)
    # How often deliveries that no live notifier holds are looked for (after a crash, or a retry).
    sweep_interval_seconds: float = Field(default=15.0, gt=0)
    slack: SlackSettings = SlackSettings()
    telegram: TelegramSettings = TelegramSettings()
    discord: DiscordSettings = DiscordSettings()


class IngestorSettings(BaseModel):
    # Prefix of its consumer groups (ingest topics, grants); another deployment on the cluster needs its own.
    group_id: str = "ingestor"
    # Kafka messages taken per batch: one bulk write and one offset commit each.
    batch_max_messages: int = Field(default=500, ge=1)
    # Larger messages are dead-lettered unread. Keep it below the brokers' message size limit.
    max_message_bytes: int = Field(default=1_000_000, ge=1024)
    # How far ahead of the ingestor's clock a measurement's time may be (device clocks drift).
    max_future_skew_seconds: float = Field(default=300.0, ge=0)
    # Pause before a batch whose write failed is delivered again.
    retry_backoff_seconds: float = Field(default=1.0, gt=0)


class LocalServersSettings(BaseModel):
    """Where ``exporter.local`` keeps the embedded servers' data, logs and PIDs."""

    run_dir: Path = Path(".run")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EXPORTER_",
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="ignore",
    )

    environment: Literal["local", "test", "production"] = "local"
    log_level: str = "INFO"
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

    def to_env(self) -> dict[str, str]:
        """Every setting as the ``EXPORTER_*`` variable that reads back as it, secrets included.

        A child process given these and no other ``EXPORTER_*`` variable gets equal settings. A
        None is left out: every optional setting defaults to None.
        """
        return dict(_env_variables(self.model_dump(), "EXPORTER_"))


def _env_variables(values: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    for name, value in values.items():
        variable = f"{prefix}{name.upper()}"
        if isinstance(value, Mapping):
            yield from _env_variables(value, f"{variable}__")
        elif isinstance(value, SecretStr):
            yield variable, value.get_secret_value()
        elif isinstance(value, str | Path | int | float):
            yield variable, str(value)
        elif value is not None:
            yield variable, json.dumps(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process from the environment."""
    return Settings()
