"""Where the notifier may send: each tenant's chat webhooks, channels, email domains and owners'
contacts, and the chat services' own settings. Part of the one settings object (``Settings``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, SecretStr, model_validator


def _lowercase_names(webhooks: dict[str, SecretStr]) -> dict[str, SecretStr]:
    """Names are case-blind: environment variable names reach us upper- or lower-cased."""
    return {name.lower(): url for name, url in webhooks.items()}


WebhookUrls = Annotated[dict[str, SecretStr], AfterValidator(_lowercase_names)]


class ContactSettings(BaseModel):
    """Where an owner's notifications go when a message names no recipients, per medium.

    ``owner`` ``*`` is everyone of the tenant without an entry of their own.
    """

    owner: str
    email: list[str] = Field(default_factory=list)
    slack: list[str] = Field(default_factory=list)
    telegram: list[str] = Field(default_factory=list)
    discord: list[str] = Field(default_factory=list)


def _lowercase(values: list[str]) -> list[str]:
    return [value.lower() for value in values]


class TenantDestinations(BaseModel):
    """What one tenant's notifications may reach. A tenant names only these (and those of the
    tenant ``*``, which every tenant may use): another tenant's ``webhook:ops`` is not its own.
    """

    # Incoming webhooks by name, for ``webhook:NAME`` recipients; the URLs are secrets.
    slack_webhooks: WebhookUrls = Field(default_factory=dict)
    discord_webhooks: WebhookUrls = Field(default_factory=dict)
    # Channel ids and chats the tenant may reach with the shared bots (SLACK__BOT_TOKEN, TELEGRAM__BOT_TOKEN).
    slack_channels: list[str] = Field(default_factory=list)
    telegram_chats: list[str] = Field(default_factory=list)
    # Email recipients must be at one of these domains (exactly; ``*``: any domain).
    email_domains: Annotated[list[str], AfterValidator(_lowercase)] = Field(default_factory=list)
    # Where a message without recipients goes, by owner (owner ids are unique within a tenant).
    contacts: list[ContactSettings] = Field(default_factory=list)


# Every tenant may use the tenant ``*``'s destinations. Out of the box: mail to the local sink only.
ANY_TENANT = "*"
LOCAL_DESTINATIONS = TenantDestinations(
    email_domains=["localhost"], contacts=[ContactSettings(owner="*", email=["owner@localhost"])]
)


class SlackSettings(BaseModel):
    base_url: str = "https://slack.com/api/"
    # A bot token (xoxb-…) with chat:write and files:write, shared by the tenants' channels.
    bot_token: SecretStr | None = None
    attach_max_bytes: int = Field(default=10 * 1024 * 1024, ge=0)


class TelegramSettings(BaseModel):
    base_url: str = "https://api.telegram.org"
    bot_token: SecretStr | None = None
    # The Bot API takes documents up to 50 MB.
    attach_max_bytes: int = Field(default=10 * 1024 * 1024, ge=0, le=50 * 1024 * 1024)


class DiscordSettings(BaseModel):
    # Discord refuses larger uploads to servers without boosts.
    attach_max_bytes: int = Field(default=8 * 1024 * 1024, ge=0)


class NotifierSettings(BaseModel):
    # Links in notifications must outlive a person's reading delay, unlike the API's 30 s links.
    link_ttl_seconds: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)
    # Each tenant's destinations, by tenant id; ``*``: usable by every tenant (see TenantDestinations).
    tenants: dict[str, TenantDestinations] = Field(default_factory=lambda: {ANY_TENANT: LOCAL_DESTINATIONS})
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

    @model_validator(mode="after")
    def _shared_contacts_name_no_owner(self) -> NotifierSettings:
        """An owner id means someone only within its tenant: ``*``'s contacts are for owner ``*``."""
        shared = self.tenants.get(ANY_TENANT)
        if shared is not None and (owners := [c.owner for c in shared.contacts if c.owner != "*"]):
            raise ValueError(f"tenants.*.contacts: only owner '*' may be given here, not {owners}")
        return self
