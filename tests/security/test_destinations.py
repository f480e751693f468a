"""Issue 14, finding 5: a tenant's notifications reach only its own destinations. Checked by the
API at create and update, and by the notifier again before each send."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.contracts.job import Refusal
from exporter.runtime import Runtime
from exporter.settings import Settings
from exporter.settings.notifier import NotifierSettings
from tests.integration import conftest as integration
from tests.integration.api_server import isolated, serving
from tests.integration.notifier_support import (
    ChatReceiver,
    chat_receiver,
    completed_event,
    deliveries,
    finished_job,
    make_notifier,
    notifier_settings,
)
from tests.request_cases import SEED_000

pytestmark = pytest.mark.servers
chat = pytest.fixture(scope="module")(chat_receiver)
runtime = integration.runtime  # a wired runtime with a database of its own
RECIPIENTS = "notification.messages.0.recipients"


def tenants(webhook: Callable[[str], str]) -> dict[str, Any]:
    """Two tenants that both call a webhook ``ops``, and what every tenant may use."""
    return {
        "acme": {
            "discord_webhooks": {"ops": webhook("acme-ops")},
            "slack_channels": ["C0ACME0001"],
            "telegram_chats": ["-1001"],
            "email_domains": ["acme.com"],
            "contacts": [{"owner": "*", "email": ["exports@acme.com"]}],
        },
        "beta": {
            "discord_webhooks": {"ops": webhook("beta-ops")},
            "slack_webhooks": {"alerts": webhook("beta-alerts")},
            "slack_channels": ["C0BETA0001"],
            "telegram_chats": ["-2002"],
            "email_domains": ["beta.org"],
        },
        "*": {"discord_webhooks": {"status": webhook("status")}, "email_domains": ["status.example"]},
    }


def with_message(medium: str, *recipients: str) -> dict[str, Any]:
    body = copy.deepcopy(SEED_000)  # recurring: it queues no job at create
    body["notification"] = {"messages": [{"medium": medium, "recipients": list(recipients)}]}
    return body


@pytest.fixture(scope="module")
async def api(servers: Settings) -> AsyncIterator[str]:
    """The API with the two tenants' destinations and the shared bots (it sends nothing)."""
    settings = isolated(servers)
    notifier = NotifierSettings(
        tenants=tenants(lambda name: f"https://hooks.test/{name}"),
        slack={"bot_token": "xoxb-shared"},
        telegram={"bot_token": "1:shared"},
    )
    async with serving(settings.model_copy(update={"notifier": notifier})) as base_url:
        yield base_url


async def create(base_url: str, tenant: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"X-User-Id": "alice", "X-Tenant-Id": tenant}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=20) as client:
        return await client.post("/exports", json=body)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            with_message("email", "ok@acme.com", "x@evil.com"),
            "'x@evil.com' is not in an allowed domain of tenant acme",
        ),
        (with_message("email", "x@beta.org"), "'x@beta.org' is not in an allowed domain of tenant acme"),
        (
            with_message("slack", "webhook:alerts"),
            "no Slack webhook named 'alerts' is configured for tenant acme",
        ),
        (with_message("slack", "C0BETA0001"), "Slack channel 'C0BETA0001' is not allowed for tenant acme"),
        (with_message("telegram", "-2002"), "Telegram chat '-2002' is not allowed for tenant acme"),
        (
            with_message("discord", "webhook:nowhere"),
            "no Discord webhook named 'nowhere' is configured for tenant acme",
        ),
    ],
)
async def test_the_api_refuses_another_tenants_destinations(
    api: str, body: dict[str, Any], problem: str
) -> None:
    answer = await create(api, "acme", body)
    assert answer.status_code == 400
    assert answer.json() == {"message": f"{RECIPIENTS}: {problem}"}


@pytest.mark.parametrize(
    "body",
    [
        with_message("email", "ok@acme.com", "news@status.example"),
        with_message("discord", "webhook:ops", "webhook:status"),
        with_message("slack", "C0ACME0001"),
        with_message("telegram", "-1001"),
        copy.deepcopy(SEED_000),  # no recipients: the tenant's contact
    ],
)
async def test_the_api_takes_the_tenants_own_and_the_shared_destinations(
    api: str, body: dict[str, Any]
) -> None:
    answer = await create(api, "acme", body)
    assert answer.status_code == 201, answer.text


async def test_a_tenant_without_destinations_can_notify_no_one(api: str) -> None:
    mail = await create(api, "gamma", with_message("email", "a@acme.com"))
    problem = "'a@acme.com' is not in an allowed domain of tenant gamma"
    assert mail.json() == {"message": f"{RECIPIENTS}: {problem}"}
    contact = await create(api, "gamma", copy.deepcopy(SEED_000))
    assert contact.json() == {
        "message": f"{RECIPIENTS}: no recipients given, and no email contact is configured for the owner"
    }


async def test_an_update_is_checked_too(api: str) -> None:
    created = await create(api, "acme", copy.deepcopy(SEED_000))
    headers = {"X-User-Id": "alice", "X-Tenant-Id": "acme"}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=20) as client:
        answer = await client.put(f"/exports/{created.json()['id']}", json=with_message("telegram", "-2002"))
    assert answer.status_code == 400
    assert answer.json() == {"message": f"{RECIPIENTS}: Telegram chat '-2002' is not allowed for tenant acme"}


def two_tenants(runtime: Runtime, chat: ChatReceiver) -> Settings:
    return notifier_settings(runtime.settings, chat, tenants=tenants(chat.webhook))


async def test_the_notifier_sends_to_the_jobs_own_webhook_of_that_name(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    notifier = make_notifier(runtime, two_tenants(runtime, chat))
    message = {"medium": "discord", "text": "${job.id}", "recipients": ["webhook:ops"]}
    spec, result = await finished_job(runtime, [message], tmp_path, tenant="beta")
    await notifier.on_export_completed([completed_event(spec, result)])
    [entry] = await deliveries(runtime, spec.job_id)

    assert (entry.status, entry.sent_to) == ("sent", ["webhook:ops"])
    assert [c.path for c in chat.calls("/webhooks/beta-ops") if spec.job_id in c.data.decode()]
    assert not [c for c in chat.calls("/webhooks/acme-ops") if spec.job_id in c.data.decode()]


async def test_the_notifier_checks_again_and_records_a_refusal_without_sending(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    """Accepted while the destinations were acme's; by delivery the settings say otherwise."""
    messages = [
        {"medium": "email", "recipients": ["ok@acme.com", "x@evil.com"]},
        {"medium": "discord", "recipients": ["webhook:alerts"]},
        {"medium": "slack", "recipients": ["C0BETA0001"]},
        {"medium": "telegram", "text": "${job.id}", "recipients": ["-2002"]},
    ]
    notifier = make_notifier(runtime, two_tenants(runtime, chat))
    spec, result = await finished_job(runtime, messages, tmp_path, tenant="acme")
    before = len(chat.received)

    await notifier.on_export_completed([completed_event(spec, result)])
    mail, discord, slack, telegram = await deliveries(runtime, spec.job_id)

    assert (mail.status, mail.sent_to) == ("sent", ["ok@acme.com"])
    assert mail.refused == [
        Refusal(recipient="x@evil.com", reason="'x@evil.com' is not in an allowed domain of tenant acme")
    ]
    for entry, recipient, reason in [
        (discord, "webhook:alerts", "no Discord webhook named 'alerts' is configured for tenant acme"),
        (slack, "C0BETA0001", "Slack channel 'C0BETA0001' is not allowed for tenant acme"),
        (telegram, "-2002", "Telegram chat '-2002' is not allowed for tenant acme"),
    ]:
        assert (entry.status, entry.sent_to) == ("failed", [])
        assert entry.refused == [Refusal(recipient=recipient, reason=reason)]
    assert chat.received[before:] == []
