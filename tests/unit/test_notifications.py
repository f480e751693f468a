"""Notification rules: policies, safe placeholders, layouts, attachments, recipients, retries, secrets."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from exporter.contracts.job import JobResult
from exporter.contracts.notification import NotificationMessage
from exporter.contracts.request import ExportRequestSpec
from exporter.domain.job_life import JobStatus
from exporter.domain.retry import backoff_seconds
from exporter.notifications.layout import discord_payload, html_text, plain_text, slack_text
from exporter.notifications.messages import base64_size, compose, human_size, plan_files
from exporter.notifications.policy import policy_applies
from exporter.notifications.recipients import destinations_of, recipient_problems, recipients_for
from exporter.notifications.sending import http_failure, parse_retry_after
from exporter.notifications.templates import render, unknown_placeholders
from exporter.settings import Settings
from exporter.settings.notifier import ContactSettings, NotifierSettings, TenantDestinations
from notifier.redaction import Redactor, notifier_secrets
from tests.notify_cases import job_spec, link

DONE = JobResult(
    status=JobStatus.DONE,
    row_count=60,
    size_in_bytes=1234,
    started_at=datetime(2026, 1, 2, 3, 0, tzinfo=UTC),
    completed_at=datetime(2026, 1, 2, 3, 1, tzinfo=UTC),
)
FAILED = JobResult(status=JobStatus.FAILED, error="MongoDB went away")


@pytest.mark.parametrize(
    ("policy", "status", "applies"),
    [
        ("onSuccess", JobStatus.DONE, True),
        ("onSuccess", JobStatus.FAILED, False),
        ("onFailure", JobStatus.FAILED, True),
        ("onFailure", JobStatus.DONE, False),
        ("always", JobStatus.DONE, True),
        ("always", JobStatus.FAILED, True),
        ("always", JobStatus.CANCELLED, False),
    ],
)
def test_policy(policy: str, status: JobStatus, applies: bool) -> None:
    assert policy_applies(policy, status) is applies  # type: ignore[arg-type]


def test_placeholders_are_filled_and_unknown_ones_stay_visible() -> None:
    values = {"export.name": "Temps", "download.url": "http://s3/x?sig=1"}
    text = "Your ${export.name} at ${download.url}; ${nope.field}, $export.name, {__import__}"
    assert render(text, values) == "Your Temps at http://s3/x?sig=1; ${nope.field}, Temps, {__import__}"
    assert unknown_placeholders(text, values) == ["nope.field"]


def test_templates_run_no_code_and_read_no_attributes() -> None:
    values = {"export.name": "Temps"}
    text = "${export.name.__class__} ${export.name!r} {0.__globals__} $$export.name ${__import__('os')}"
    assert render(text, values) == text.replace("$$", "$")


def test_compose_fills_every_documented_placeholder() -> None:
    links = (link("plant.csv", 1234),)
    message = NotificationMessage(
        medium="email",
        title="${export.name}: ${job.status}",
        text="${job.rows} rows from ${job.window.from} to ${job.window.to}: ${download.url} "
        "(until ${download.expiresAt}) ${error}${typo.here}",
    )
    notice = compose(message, job_spec(), DONE, links)
    assert notice.subject == "Plant temperatures: done"
    assert notice.body == (
        "60 rows from 2026-01-01T00:00:00Z to 2026-01-01T01:00:00Z: https://s3.test/plant.csv?sig=abc "
        "(until 2026-01-03T00:00:00Z) ${typo.here}"
    )
    assert notice.unknown_placeholders == ("typo.here",)
    assert ("Rows", "60") in notice.facts
    assert ("Size", "1.2 kB") in notice.facts


def test_default_layout_when_the_message_says_nothing() -> None:
    notice = compose(NotificationMessage(medium="email"), job_spec(), FAILED, ())
    assert notice.subject == "Export Plant temperatures: failed"
    assert notice.body == ""
    text = plain_text(notice, ())
    assert "Export: Plant temperatures" in text
    assert "Window: 2026-01-01T00:00:00Z to 2026-01-01T01:00:00Z" in text
    assert "Error: MongoDB went away" in text


def test_a_title_cannot_add_header_lines() -> None:
    message = NotificationMessage(medium="email", title="Hi\r\nBcc: victim@example.com")
    assert compose(message, job_spec(), DONE, ()).subject == "Hi Bcc: victim@example.com"


def test_base64_size_is_what_an_email_attachment_really_takes() -> None:
    for size in (0, 1, 57, 58, 1000, 100_000):
        email = EmailMessage()
        email.add_attachment(b"\xff" * size, maintype="application", subtype="octet-stream")
        [part] = email.iter_attachments()
        on_the_wire = str(part.get_payload()).replace("\n", "\r\n")  # SMTP's line ends
        assert len(on_the_wire) == base64_size(size)


def test_files_are_attached_while_their_encoded_size_fits_the_limit() -> None:
    links = (link("a.csv", 600), link("b.csv", 300), link("c.csv", 100))
    plan = plan_files(links, 1000, base64_size)
    # a: 800+22 encoded; b no longer fits (400+12 more); c still does.
    assert [entry.attached for entry in plan] == [True, False, True]
    assert "too large to attach here (limit 1.0 kB)" in plan[1].note
    assert [entry.attached for entry in plan_files(links, 1000)] == [True, True, True]
    assert [entry.note for entry in plan_files(links, 0)] == ["download it with the link"] * 3


def test_plain_text_says_which_file_is_attached_and_which_is_only_linked() -> None:
    links = (link("small.csv", 100), link("big.csv", 20_000_000))
    notice = compose(NotificationMessage(medium="email", text="Here it is."), job_spec(), DONE, links)
    text = plain_text(notice, plan_files(links, 10_000_000, base64_size))
    assert text.startswith("Here it is.\n\n")
    assert "- small.csv (100 B), attached: https://s3.test/small.csv?sig=abc" in text
    assert "- big.csv (20.0 MB), too large to attach here (limit 10.0 MB): download it with the link:" in text
    assert "Links valid until 2026-01-03T00:00:00Z." in text


def test_shortening_keeps_the_facts_and_links() -> None:
    links = (link("plant.csv", 100),)
    notice = compose(NotificationMessage(medium="telegram", text="x" * 9000), job_spec(), DONE, links)
    text = plain_text(notice, plan_files(links, 0), limit=4096)
    assert len(text) <= 4096
    assert text.endswith("Links valid until 2026-01-03T00:00:00Z.")
    assert "https://s3.test/plant.csv?sig=abc" in text
    assert "x…\n\n" in text


def test_html_email_escapes_everything_from_the_request() -> None:
    spec = job_spec(name="<b>Plant</b>")
    message = NotificationMessage(
        medium="email", title="<script>alert(1)</script>", text="a < b & c\nsee https://x.test/?a=1&b=2"
    )
    html = html_text(compose(message, spec, DONE, ()), ())
    assert "<script>" not in html
    assert "<b>Plant</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a &lt; b &amp; c<br>" in html
    assert '<a href="https://x.test/?a=1&amp;b=2">' in html


def test_slack_text_cannot_mention_everyone() -> None:
    message = NotificationMessage(medium="slack", title="<!channel> done", text="<@U123> & co")
    text = slack_text(
        compose(message, job_spec(), DONE, (link("p.csv", 1),)), plan_files((link("p.csv", 1),), 0)
    )
    assert "<!channel>" not in text
    assert "&lt;!channel&gt; done" in text
    assert "&lt;@U123&gt; &amp; co" in text
    assert "<https://s3.test/p.csv?sig=abc|p.csv>" in text


def test_discord_payload_pings_no_one_and_fits_the_limits() -> None:
    message = NotificationMessage(medium="discord", title="T" * 500, text="@everyone " + "y" * 9000)
    links = (link("p.csv", 1),)
    payload = discord_payload(compose(message, job_spec(), DONE, links), plan_files(links, 8_000_000))
    [embed] = payload["embeds"]
    assert payload["allowed_mentions"] == {"parse": []}
    assert len(embed["title"]) == 256
    assert len(embed["description"]) <= 4096
    assert embed["description"].endswith("Links valid until 2026-01-03T00:00:00Z.")
    assert embed["url"] == "https://s3.test/p.csv?sig=abc"


def test_human_size() -> None:
    assert [human_size(n) for n in (0, 999, 1000, 1_500_000, 10**12)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "1.5 MB",
        "1000.0 GB",
    ]


def test_backoff_grows_with_jitter_up_to_the_bound_and_respects_retry_after() -> None:
    assert backoff_seconds(1, 2.0, 300.0, rand=lambda: 0.0) == 1.0
    assert backoff_seconds(1, 2.0, 300.0, rand=lambda: 1.0) == 2.0
    assert backoff_seconds(4, 2.0, 300.0, rand=lambda: 1.0) == 16.0
    assert backoff_seconds(20, 2.0, 300.0, rand=lambda: 1.0) == 300.0
    assert backoff_seconds(20, 2.0, 300.0, rand=lambda: 0.0) == 150.0
    assert backoff_seconds(1, 2.0, 300.0, retry_after=30.0, rand=lambda: 1.0) == 30.0


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("status", "transient"), [(429, True), (500, True), (503, True), (408, True), (400, False), (404, False)]
)
def test_http_failures_are_transient_only_when_trying_again_can_help(status: int, transient: bool) -> None:
    failure = http_failure(status, "why", retry_after=3.0)
    assert failure.transient is transient
    assert failure.reason == f"HTTP {status}: why"


CONTACTS = [
    ContactSettings(owner="alice", email=["alice@example.com"], slack=["C0ALICE01"]),
    ContactSettings(owner="*", email=["ops@example.com"], telegram=["-100123"]),
]


@pytest.mark.parametrize(
    ("message", "owner", "expected"),
    [
        (NotificationMessage(medium="email", recipients=["x@example.com"]), "alice", ["x@example.com"]),
        (NotificationMessage(medium="email"), "alice", ["alice@example.com"]),
        (NotificationMessage(medium="slack"), "alice", ["C0ALICE01"]),
        (NotificationMessage(medium="telegram"), "alice", ["-100123"]),
        (NotificationMessage(medium="email"), "bob@example.com", ["bob@example.com"]),
        (NotificationMessage(medium="email"), "bob", ["ops@example.com"]),
        (NotificationMessage(medium="discord"), "bob", []),
    ],
)
def test_recipients_fall_back_to_the_owners_contact(
    message: NotificationMessage, owner: str, expected: list[str]
) -> None:
    assert recipients_for(message, owner, TenantDestinations(contacts=CONTACTS)) == expected


def test_recipient_problems_name_what_the_deployment_lacks() -> None:
    body: dict[str, Any] = {
        "type": "oneTime",
        "format": {"extension": "csv"},
        "items": [{"params": {"target": {"value": "urn:x:dev:temp"}}}],
        "notification": {
            "messages": [
                {"medium": "email"},
                {"medium": "discord", "recipients": ["webhook:ops", "webhook:nope"]},
                {"medium": "slack", "recipients": ["C0123456789"]},
                {"medium": "telegram"},
                {"medium": "slack", "recipients": ["webhook:OPS"]},
            ]
        },
    }
    settings = NotifierSettings(
        tenants={
            "acme": TenantDestinations(
                contacts=[ContactSettings(owner="*", email=["ops@example.com"])],
                email_domains=["example.com"],
                discord_webhooks={"ops": SecretStr("https://discord.test/api/webhooks/1/t")},
                slack_webhooks={"Ops": SecretStr("https://hooks.slack.test/services/T/B/x")},
                slack_channels=["C0123456789"],
            )
        }
    )
    problems = recipient_problems(ExportRequestSpec.model_validate(body), "acme", "bob", settings)
    assert problems == {
        "notification.messages.1.recipients": "no Discord webhook named 'nope' is configured for tenant acme",
        "notification.messages.2.recipients": "Slack channels need a bot token, and none is configured",
        "notification.messages.3.recipients": (
            "no recipients given, and no telegram contact is configured for the owner"
        ),
    }


@pytest.mark.parametrize(
    ("medium", "recipient"),
    [
        ("email", "ops@example.com"),
        ("email", "first.last+tag@sub.example.co.uk"),
        ("slack", "C0123456789"),
        ("slack", "webhook:ops-alerts"),
        ("telegram", "-1001234567890"),
        ("telegram", "@exporter_news"),
        ("discord", "webhook:ops"),
    ],
)
def test_each_medium_accepts_its_recipient_forms(medium: str, recipient: str) -> None:
    message = NotificationMessage.model_validate({"medium": medium, "recipients": [recipient]})
    assert message.recipients == [recipient]


def test_a_tenant_uses_its_own_destinations_and_the_shared_ones_only() -> None:
    settings = NotifierSettings(
        tenants={
            "acme": {
                "discord_webhooks": {"ops": "https://d.test/acme"},
                "contacts": [{"owner": "*", "email": ["all@acme.com"]}],
            },
            "beta": {"discord_webhooks": {"ops": "https://d.test/beta"}, "slack_channels": ["C0BETA0001"]},
            "*": {
                "discord_webhooks": {"ops": "https://d.test/shared", "status": "https://d.test/status"},
                "email_domains": ["Status.Example"],
                "contacts": [{"owner": "*", "email": ["ops@status.example"], "slack": ["C0SHARED01"]}],
            },
        }
    )
    acme = destinations_of(settings, "acme")
    urls = {name: url.get_secret_value() for name, url in acme.discord_webhooks.items()}
    assert urls == {"ops": "https://d.test/acme", "status": "https://d.test/status"}
    assert acme.slack_channels == []
    assert acme.email_domains == ["status.example"]
    assert recipients_for(NotificationMessage(medium="email"), "bob", acme) == ["all@acme.com"]
    assert recipients_for(NotificationMessage(medium="slack"), "bob", acme) == ["C0SHARED01"]
    assert destinations_of(settings, "nobody").discord_webhooks.keys() == {"ops", "status"}


def test_shared_contacts_name_no_owner() -> None:
    with pytest.raises(ValidationError, match="only owner"):
        NotifierSettings(tenants={"*": {"contacts": [{"owner": "alice", "email": ["a@example.com"]}]}})


def test_webhook_names_are_case_blind_in_settings() -> None:
    settings = NotifierSettings(
        tenants={"acme": {"discord_webhooks": {"OPS": SecretStr("https://d.test/x")}}}
    )
    assert list(settings.tenants["acme"].discord_webhooks) == ["ops"]


def test_secrets_are_masked_in_logs_and_texts() -> None:
    settings = Settings(
        smtp={"password": "smtp-pass-123"},
        notifier={
            "telegram": {"bot_token": "123456:telegram-token"},
            "tenants": {
                "acme": {"discord_webhooks": {"ops": "https://discord.test/api/webhooks/42/discord-token"}}
            },
        },
    )
    redact = Redactor(notifier_secrets(settings))
    assert redact("POST https://api.telegram.org/bot123456:telegram-token/sendMessage") == (
        "POST https://api.telegram.org/bot***/sendMessage"
    )
    assert redact("to https://discord.test/api/webhooks/42/discord-token?wait=true") == "to ***?wait=true"
    assert redact("path /api/webhooks/42/discord-token refused") == "path *** refused"
    assert redact("AUTH smtp-pass-123") == "AUTH ***"

    try:
        raise ValueError("token 123456:telegram-token rejected")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "calling %s", ("smtp-pass-123",), sys.exc_info()
        )
    assert redact.filter(record) is True
    formatted = logging.Formatter().format(record)
    assert "smtp-pass-123" not in formatted
    assert "telegram-token" not in formatted
    assert "calling ***" in formatted


def test_to_env_round_trips_the_notifier_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        notifier={
            "tenants": {
                "Acme": {
                    "contacts": [{"owner": "Alice", "email": ["a@example.com"]}],
                    "slack_webhooks": {"ops": "https://hooks.slack.test/x"},
                }
            },
            "slack": {"bot_token": "xoxb-1"},
        }
    )
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    again = Settings()
    [(tenant, destinations)] = again.notifier.tenants.items()
    assert tenant == "Acme"  # tenant ids keep their case
    assert destinations.contacts == settings.notifier.tenants["Acme"].contacts
    assert destinations.slack_webhooks["ops"].get_secret_value() == "https://hooks.slack.test/x"
    assert again.notifier.slack.bot_token == settings.notifier.slack.bot_token
