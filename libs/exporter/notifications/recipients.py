"""Who receives a message, and whether its tenant may reach them.

A tenant's destinations are its own entry in ``notifier.tenants`` plus the entry ``*``, which
every tenant may use (its own wins on a webhook name both have). Nothing else: a tenant cannot
name another's webhook, channel or chat, nor mail outside its domains. The API refuses such a
request, and the notifier checks again before each send, since settings may have changed since.
"""

from __future__ import annotations

from exporter.contracts.notification import (
    NotificationMedium,
    NotificationMessage,
    recipient_problem,
    webhook_name,
)
from exporter.contracts.request import ExportRequestSpec
from exporter.settings.notifier import ANY_TENANT, ContactSettings, NotifierSettings, TenantDestinations

ANYONE = "*"  # the owner of a contact for everyone without one of their own
ANY_DOMAIN = "*"


def destinations_of(settings: NotifierSettings, tenant: str) -> TenantDestinations:
    """The tenant's own destinations and those every tenant may use (``*``), as one."""
    own = settings.tenants.get(tenant, TenantDestinations())
    shared = settings.tenants.get(ANY_TENANT) if tenant != ANY_TENANT else None
    if shared is None:
        return own
    return TenantDestinations(
        slack_webhooks={**shared.slack_webhooks, **own.slack_webhooks},
        discord_webhooks={**shared.discord_webhooks, **own.discord_webhooks},
        slack_channels=own.slack_channels + shared.slack_channels,
        telegram_chats=own.telegram_chats + shared.telegram_chats,
        email_domains=own.email_domains + shared.email_domains,
        contacts=own.contacts + shared.contacts,
    )


def _listed(contacts: list[ContactSettings], owner: str, medium: NotificationMedium) -> list[str]:
    """The first of ``owner``'s contacts that lists recipients for ``medium``: the tenant's own
    come before the shared ones."""
    return next((list(listed) for c in contacts if c.owner == owner and (listed := getattr(c, medium))), [])


def recipients_for(message: NotificationMessage, owner: str, destinations: TenantDestinations) -> list[str]:
    """The message's own recipients, else the owner's contact for its medium, else the catch-all.

    An owner whose id is an email address and who has no contact of their own gets email there.
    """
    if message.recipients:
        return list(message.recipients)
    if listed := _listed(destinations.contacts, owner, message.medium):
        return listed
    if message.medium == "email" and recipient_problem("email", owner) is None:
        return [owner]
    return _listed(destinations.contacts, ANYONE, message.medium)


def destination_problem(
    medium: NotificationMedium,
    recipient: str,
    tenant: str,
    destinations: TenantDestinations,
    settings: NotifierSettings,
) -> str | None:
    """Why ``tenant`` may not send to ``recipient`` (a reason safe to show it), or None."""
    name = webhook_name(recipient)
    if medium == "email":
        domain = recipient.rpartition("@")[2].lower()
        if domain not in destinations.email_domains and ANY_DOMAIN not in destinations.email_domains:
            return f"'{recipient}' is not in an allowed domain of tenant {tenant}"
    elif medium == "discord" and name not in destinations.discord_webhooks:
        return f"no Discord webhook named '{name}' is configured for tenant {tenant}"
    elif medium == "slack" and name is not None and name not in destinations.slack_webhooks:
        return f"no Slack webhook named '{name}' is configured for tenant {tenant}"
    elif medium == "slack" and name is None and recipient not in destinations.slack_channels:
        return f"Slack channel '{recipient}' is not allowed for tenant {tenant}"
    elif medium == "slack" and name is None and settings.slack.bot_token is None:
        return "Slack channels need a bot token, and none is configured"
    elif medium == "telegram" and recipient.lower() not in map(str.lower, destinations.telegram_chats):
        return f"Telegram chat '{recipient}' is not allowed for tenant {tenant}"
    elif medium == "telegram" and settings.telegram.bot_token is None:
        return "Telegram needs a bot token, and none is configured"
    return None


def recipient_problems(
    spec: ExportRequestSpec, tenant: str, owner: str, settings: NotifierSettings
) -> dict[str, str]:
    """What would keep each message from reaching anyone, by field path; for the API to refuse.

    The request model checks each recipient's form; this checks them against the deployment:
    the tenant may use each destination, bot tokens are configured, a message without
    recipients has a contact.
    """
    destinations = destinations_of(settings, tenant)
    problems: dict[str, str] = {}
    for index, message in enumerate(spec.notification.messages):
        path = f"notification.messages.{index}.recipients"
        recipients = recipients_for(message, owner, destinations)
        if not recipients:
            problems[path] = (
                f"no recipients given, and no {message.medium} contact is configured for the owner"
            )
            continue
        for recipient in recipients:
            if problem := destination_problem(message.medium, recipient, tenant, destinations, settings):
                problems[path] = problem
                break
    return problems
