"""Keeps the notifier's secrets (SMTP password, bot tokens, webhook URLs) out of logs and job documents.

Our own messages never include them, but libraries do: httpx logs each request's URL at INFO,
and Telegram's URLs hold the bot token. Every log record and every recorded error passes here.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from pydantic import SecretStr

from exporter.settings import Settings

MASK = "***"
# Shorter values would mask ordinary words; no real token or password of ours is this short.
MIN_SECRET_LENGTH = 6


def notifier_secrets(settings: Settings) -> list[str]:
    """Each secret, and for webhook URLs their path too: it alone is enough to post."""
    notifier = settings.notifier
    values: list[SecretStr | None] = [
        settings.smtp.password,
        notifier.slack.bot_token,
        notifier.telegram.bot_token,
    ]
    for tenant in notifier.tenants.values():
        values += [*tenant.slack_webhooks.values(), *tenant.discord_webhooks.values()]
    secrets = [value.get_secret_value() for value in values if value is not None]
    secrets += [urlsplit(secret).path for secret in secrets if "://" in secret]
    # Longest first, so a URL is masked whole before its path would be.
    return sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


class Redactor(logging.Filter):
    """A log filter, and a callable for any other text, that masks the given secrets."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = secrets

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.msg, record.args = self(message), None
            if record.exc_text:
                record.exc_text = self(record.exc_text)
        return True

    def install(self) -> None:
        """On every handler of the root logger: records of every library pass through them."""
        for handler in logging.getLogger().handlers:
            handler.addFilter(self)
