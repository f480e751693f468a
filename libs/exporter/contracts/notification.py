"""A request's notifications: which media, which recipients (in a form each medium takes), and
the messages' texts. Webhook URLs never appear here: requests name webhooks configured in settings."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from exporter.contracts.base import WireModel

NotificationPolicy = Literal["onSuccess", "onFailure", "always"]
NotificationMedium = Literal["email", "slack", "telegram", "discord"]

_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_SLACK_CHANNEL_RE = re.compile(r"^[CGD][A-Z0-9]{6,20}$")
_TELEGRAM_CHAT_RE = re.compile(r"^(?:-?[1-9][0-9]{0,19}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
_WEBHOOK_RE = re.compile(r"^webhook:[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
WEBHOOK_PREFIX = "webhook:"
_RECIPIENT_FORMS: dict[str, tuple[list[re.Pattern[str]], str]] = {
    "email": ([_EMAIL_RE], "an email address such as ops@example.com"),
    "slack": (
        [_SLACK_CHANNEL_RE, _WEBHOOK_RE],
        "a Slack channel id such as C0123456789 or a configured webhook as webhook:NAME",
    ),
    "telegram": ([_TELEGRAM_CHAT_RE], "a Telegram chat id such as -1001234567890 or @channelname"),
    "discord": ([_WEBHOOK_RE], "a configured Discord webhook as webhook:NAME"),
}


def recipient_problem(medium: NotificationMedium, recipient: str) -> str | None:
    """Why ``recipient`` cannot receive ``medium`` messages, or None when its form is right.

    Webhooks are named, never given as URLs: a webhook URL is a credential, and requests are
    returned by the API, so the URLs live in settings only.
    """
    patterns, form = _RECIPIENT_FORMS[medium]
    if len(recipient) > 254 or not any(pattern.match(recipient) for pattern in patterns):
        return f"'{recipient[:80]}' is not {form}"
    return None


def webhook_name(recipient: str) -> str | None:
    """``ops`` for ``webhook:ops`` (names are case-blind), None for any other recipient."""
    return recipient[len(WEBHOOK_PREFIX) :].lower() if recipient.startswith(WEBHOOK_PREFIX) else None


class NotificationMessage(WireModel):
    """One notification of a job's outcome.

    ``recipients`` (optional; none: the owner's contact configured in settings) by medium:
    ``email`` addresses; ``slack`` channel ids (``C0123456789``) or ``webhook:NAME``; ``telegram``
    chat ids (``-1001234567890``) or ``@channelname``; ``discord`` ``webhook:NAME``. ``NAME``
    refers to a webhook in the settings.
    """

    policy: NotificationPolicy = "always"
    medium: NotificationMedium
    title: Annotated[str, Field(max_length=500)] = ""
    text: Annotated[str, Field(max_length=10_000)] = ""
    recipients: Annotated[list[str], Field(max_length=50)] = Field(default_factory=list)

    @field_validator("recipients")
    @classmethod
    def _recipients_fit_medium(cls, recipients: list[str], info: ValidationInfo) -> list[str]:
        medium = info.data.get("medium")
        if medium is None:  # the medium itself is wrong and reported on its own
            return recipients
        for index, recipient in enumerate(recipients):
            if problem := recipient_problem(medium, recipient):
                raise ValueError(f"entry {index}: {problem}")
        if len(set(recipients)) != len(recipients):
            raise ValueError("recipients must be unique")
        return recipients


class Notification(WireModel):
    messages: Annotated[list[NotificationMessage], Field(max_length=20)] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _single_message_form(cls, value: Any) -> Any:
        # Seed 002 sends one message as a bare object: {medium, title, text}.
        if isinstance(value, dict) and "messages" not in value and "medium" in value:
            return {"messages": [value]}
        return value
