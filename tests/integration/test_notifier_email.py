"""Email notifications through a real SMTP server (aiosmtpd) that requires TLS and AUTH."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import uvloop
from pydantic import SecretStr

from exporter.adapters.email import SmtpMailer
from exporter.contracts.base import utcnow
from exporter.contracts.job import JobResult, Refusal
from exporter.domain.job_life import JobStatus
from exporter.notifications.messages import compose
from exporter.notifications.sending import Outgoing
from exporter.runtime import Runtime
from exporter.settings import Settings, SmtpSettings
from tests.integration.notifier_support import (
    LOOPBACK,
    Certificate,
    ChatReceiver,
    Mailbox,
    chat_receiver,
    completed_event,
    deliveries,
    finished_job,
    make_notifier,
    notifier_settings,
    self_signed,
    smtp_server,
)
from tests.notify_cases import job_spec

USER, PASSWORD = "exporter", "s3cret-smtp-password"
chat = pytest.fixture(scope="module")(chat_receiver)
# aiosmtpd warns of AUTH without STARTTLS on the implicit-TLS server, which is encrypted throughout.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("smtp") / "users"
    path.write_text(f"{USER}:{PASSWORD}\n")
    return path


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture(params=["starttls", "tls"])
def smtp(
    request: pytest.FixtureRequest, mailbox: Mailbox, certificate: Certificate, users: Path
) -> Iterator[SmtpSettings]:
    """The server, and settings that reach it: STARTTLS on a plain port, or implicit TLS."""
    security = request.param
    with smtp_server(mailbox, certificate, users, implicit_tls=security == "tls") as port:
        yield SmtpSettings(
            host=LOOPBACK,
            port=port,
            username=USER,
            password=SecretStr(PASSWORD),
            security=security,
            ca_file=certificate.cert,
            sender="Exporter <exporter@example.com>",
            timeout_seconds=10,
        )


def with_smtp(settings: Settings, chat: ChatReceiver, smtp: SmtpSettings, **notifier: Any) -> Settings:
    return notifier_settings(settings, chat, **notifier).model_copy(update={"smtp": smtp})


def parsed(mailbox: Mailbox) -> list[EmailMessage]:
    return [
        email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        for envelope in mailbox.messages
    ]


async def test_email_over_tls_with_auth_has_both_parts_and_the_small_file_attached(
    runtime: Runtime, chat: ChatReceiver, smtp: SmtpSettings, mailbox: Mailbox, tmp_path: Path
) -> None:
    content = b"time,value\n2026-01-01T00:00:00Z,20.0\n"
    messages = [
        {
            "policy": "onSuccess",
            "medium": "email",
            "title": "${export.name} è pronto",
            "text": "${job.rows} file(s) <b>not bold</b>: ${download.url}",
            "recipients": ["ops@example.com", "dev@example.com"],
        }
    ]
    spec, result = await finished_job(runtime, messages, tmp_path, files={"dati-è.csv": content})
    notifier = make_notifier(runtime, with_smtp(runtime.settings, chat, smtp))

    await notifier.on_export_completed([completed_event(spec, result)])
    [entry] = await deliveries(runtime, spec.job_id)

    assert entry.status == "sent", entry
    assert (entry.attempts, entry.sent_to, entry.last_error) == (
        1,
        ["ops@example.com", "dev@example.com"],
        None,
    )
    assert mailbox.secured == [(True, True)]  # encrypted, then authenticated
    [envelope] = mailbox.messages
    assert envelope.rcpt_tos == ["ops@example.com", "dev@example.com"]
    [message] = parsed(mailbox)
    assert message["From"] == "Exporter <exporter@example.com>"
    assert message["To"] == "ops@example.com, dev@example.com"
    assert message["Subject"] == "Plant temperatures è pronto"
    assert message["Message-ID"] == f"<{spec.job_id}.0@exporter>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"]
    assert message.get_content_type() == "multipart/mixed"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    plain_content, html_content = (part.get_content().replace("\r\n", "\n") for part in (text, html))
    assert plain_content.startswith("1 file(s) <b>not bold</b>: http")
    assert f"- dati-è.csv ({len(content)} B), attached: http" in plain_content
    assert "1 file(s) &lt;b&gt;not bold&lt;/b&gt;" in html_content
    assert "<b>not bold</b>" not in html_content
    assert f">dati-è.csv</a> ({len(content)} B), attached</li>" in html_content
    [attachment] = message.iter_attachments()
    assert isinstance(attachment, EmailMessage)
    assert attachment.get_filename() == "dati-è.csv"
    assert attachment.get_content_type() == "text/csv"
    assert attachment.get_payload(decode=True) == content


async def test_emails_sent_at_once_share_the_few_connections_of_the_pool(
    runtime: Runtime, chat: ChatReceiver, smtp: SmtpSettings, mailbox: Mailbox, tmp_path: Path
) -> None:
    messages = [{"medium": "email", "recipients": [f"ops{i}@example.com"]} for i in range(6)]
    spec, result = await finished_job(runtime, messages, tmp_path)
    pool = smtp.model_copy(update={"connections": 2})
    notifier = make_notifier(runtime, with_smtp(runtime.settings, chat, pool))

    await notifier.on_export_completed([completed_event(spec, result)])
    entries = await deliveries(runtime, spec.job_id)

    assert [e.status for e in entries] == ["sent"] * 6
    assert mailbox.secured == [(True, True)] * 6
    assert len(set(mailbox.peers)) <= 2  # TLS and AUTH at most twice, not six times


def test_the_pool_works_on_the_notifiers_own_event_loop(smtp: SmtpSettings, mailbox: Mailbox) -> None:
    """``python -m notifier`` runs on uvloop: TLS, AUTH and kept connections there too."""
    spec = job_spec([{"medium": "email"}])
    now = utcnow()
    result = JobResult(status=JobStatus.DONE, files=[], started_at=now, completed_at=now)
    notice = compose(spec.request.notification.messages[0], spec, result, ())
    message = Outgoing(key="k", notice=notice, files=(), attachments=())

    async def send_at_once(count: int) -> list[list[str]]:
        mailer = SmtpMailer(smtp.model_copy(update={"connections": 2}))
        try:
            sent = await asyncio.gather(
                *(mailer.send([f"ops{i}@example.com"], message) for i in range(count))
            )
        finally:
            await mailer.aclose()
        return [delivered.sent for delivered in sent]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(send_at_once(4)) == [[f"ops{i}@example.com"] for i in range(4)]
    assert mailbox.secured == [(True, True)] * 4
    assert len(set(mailbox.peers)) <= 2


async def test_a_file_too_large_once_encoded_goes_as_a_link_and_the_email_says_so(
    runtime: Runtime, chat: ChatReceiver, smtp: SmtpSettings, mailbox: Mailbox, tmp_path: Path
) -> None:
    # 900 bytes fit a 1,000-byte limit, but not once base64 makes them 1,232.
    smtp = smtp.model_copy(update={"attach_max_bytes": 1000})
    messages = [{"medium": "email", "recipients": ["ops@example.com"]}]
    spec, result = await finished_job(runtime, messages, tmp_path, files={"big.csv": b"x" * 900})
    notifier = make_notifier(runtime, with_smtp(runtime.settings, chat, smtp))

    await notifier.on_export_completed([completed_event(spec, result)])
    [entry] = await deliveries(runtime, spec.job_id)

    assert entry.status == "sent", entry
    [message] = parsed(mailbox)
    assert message.get_content_type() == "multipart/alternative"
    assert list(message.iter_attachments()) == []
    assert message["Subject"] == "Export Plant temperatures: done"
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    assert "- big.csv (900 B), too large to attach here (limit 1.0 kB): download it with the link: http" in (
        text.get_content()
    )


async def test_greylisted_recipient_is_retried_alone_and_a_refused_one_is_recorded(
    runtime: Runtime, chat: ChatReceiver, smtp: SmtpSettings, mailbox: Mailbox, tmp_path: Path
) -> None:
    mailbox.greylist.add("grey@example.com")
    mailbox.refuse["nobody@example.com"] = "550 5.1.1 No such user"
    recipients = ["ops@example.com", "grey@example.com", "nobody@example.com"]
    spec, result = await finished_job(runtime, [{"medium": "email", "recipients": recipients}], tmp_path)
    notifier = make_notifier(runtime, with_smtp(runtime.settings, chat, smtp))

    await notifier.on_export_completed([completed_event(spec, result)])
    [entry] = await deliveries(runtime, spec.job_id)

    assert entry.status == "sent"
    assert entry.attempts == 2
    assert entry.sent_to == ["ops@example.com", "grey@example.com"]
    assert entry.refused == [Refusal(recipient="nobody@example.com", reason="SMTP 550 5.1.1 No such user")]
    assert entry.last_error == "nobody@example.com: SMTP 550 5.1.1 No such user"
    assert [envelope.rcpt_tos for envelope in mailbox.messages] == [["ops@example.com"], ["grey@example.com"]]


async def test_every_recipient_refused_for_good_fails_at_once(
    runtime: Runtime, chat: ChatReceiver, smtp: SmtpSettings, mailbox: Mailbox, tmp_path: Path
) -> None:
    mailbox.refuse["nobody@example.com"] = "550 5.1.1 No such user"
    spec, result = await finished_job(
        runtime, [{"medium": "email", "recipients": ["nobody@example.com"]}], tmp_path
    )
    notifier = make_notifier(runtime, with_smtp(runtime.settings, chat, smtp))

    await notifier.on_export_completed([completed_event(spec, result)])
    [entry] = await deliveries(runtime, spec.job_id)

    assert (entry.status, entry.attempts) == ("failed", 1)
    assert entry.last_error == "nobody@example.com: SMTP 550 5.1.1 No such user"
    assert mailbox.messages == []


async def test_a_wrong_password_fails_at_once_and_is_not_recorded(
    runtime: Runtime, chat: ChatReceiver, smtp: SmtpSettings, mailbox: Mailbox, tmp_path: Path
) -> None:
    smtp = smtp.model_copy(update={"password": SecretStr("wrong-password-123")})
    spec, result = await finished_job(runtime, [{"medium": "email"}], tmp_path, owner="carol@example.com")
    notifier = make_notifier(runtime, with_smtp(runtime.settings, chat, smtp))

    await notifier.on_export_completed([completed_event(spec, result)])
    [entry] = await deliveries(runtime, spec.job_id)

    assert (entry.status, entry.attempts, entry.recipients) == ("failed", 1, ["carol@example.com"])
    assert (entry.last_error or "").startswith("carol@example.com: SMTP 535")
    assert "wrong-password-123" not in str(await runtime.jobs.get(spec.job_id))
    assert mailbox.messages == []
