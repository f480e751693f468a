"""Who receives a message: the ones it names, or else its owner's contact from the settings."""

from __future__ import annotations

from exporter.contracts.request import (
    ExportRequestSpec,
    NotificationMedium,
    NotificationMessage,
    recipient_problem,
    webhook_name,
)
from exporter.settings import ContactSettings, NotifierSettings

ANYONE = "*"


def _contact(owner: str, contacts: list[ContactSettings]) -> ContactSettings | None:
    return next((c for c in contacts if c.owner == owner), None)


def recipients_for(message: NotificationMessage, owner: str, contacts: list[ContactSettings]) -> list[str]:
    """The message's own recipients, else the owner's contact for its medium, else the catch-all.

    An owner whose id is an email address and who has no contact of their own gets email there.
    """
    if message.recipients:
        return list(message.recipients)
    own = _contact(owner, contacts)
    if own is not None and (listed := getattr(own, message.medium)):
        return list(listed)
    if message.medium == "email" and recipient_problem("email", owner) is None:
        return [owner]
    anyone = _contact(ANYONE, contacts)
    return list(getattr(anyone, message.medium)) if anyone is not None else []


def _configuration_problem(
    medium: NotificationMedium, recipient: str, settings: NotifierSettings
) -> str | None:
    name = webhook_name(recipient)
    if medium == "discord" and name is not None and name not in settings.discord.webhooks:
        return f"no Discord webhook named '{name}' is configured"
    if medium == "slack" and name is not None and name not in settings.slack.webhooks:
        return f"no Slack webhook named '{name}' is configured"
    if medium == "slack" and name is None and settings.slack.bot_token is None:
        return "Slack channels need a bot token, and none is configured"
    if medium == "telegram" and settings.telegram.bot_token is None:
        return "Telegram needs a bot token, and none is configured"
    return None


def recipient_problems(spec: ExportRequestSpec, owner: str, settings: NotifierSettings) -> dict[str, str]:
    """What would keep each message from reaching anyone, by field path; for the API to refuse.

    The request model checks each recipient's form; this checks them against the deployment:
    named webhooks exist, bot tokens are configured, a message without recipients has a contact.
    """
    problems: dict[str, str] = {}
    for index, message in enumerate(spec.notification.messages):
        path = f"notification.messages.{index}.recipients"
        recipients = recipients_for(message, owner, settings.contacts)
        if not recipients:
            problems[path] = (
                f"no recipients given, and no {message.medium} contact is configured for the owner"
            )
            continue
        for recipient in recipients:
            if problem := _configuration_problem(message.medium, recipient, settings):
                problems[path] = problem
                break
    return problems
