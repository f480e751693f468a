"""Email through SMTP (aiosmtplib): multipart text + HTML, STARTTLS or implicit TLS, AUTH.

A 4xx reply is the server saying "later" and is retried; a 5xx reply is final. Recipients the
server refuses are reported one by one, so the others still get the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from exporter.contracts.base import utcnow
from exporter.notifications.layout import html_text, plain_text
from exporter.notifications.messages import base64_size
from exporter.notifications.sending import Delivered, Outgoing, permanent, transient
from exporter.settings import SmtpSettings


def build_email(sender: str, recipients: Sequence[str], message: Outgoing) -> EmailMessage:
    """``multipart/alternative`` text and HTML, inside ``multipart/mixed`` when files are attached."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = ", ".join(recipients)
    email["Subject"] = message.notice.subject
    email["Date"] = format_datetime(utcnow())
    # Stable per delivery: a receiving system can recognise a message it already has.
    email["Message-ID"] = f"<{message.key}@exporter>"
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(plain_text(message.notice, message.files))
    email.add_alternative(html_text(message.notice, message.files), subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        email.add_attachment(
            attachment.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.name,
        )
    return email


def _reply(code: int, text: str) -> str:
    return f"SMTP {code} {text}"


class SmtpMailer:
    one_transaction = True

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    def attach_limit(self, recipient: str) -> int:
        return self._settings.attach_max_bytes

    def encoded_size(self, size: int) -> int:
        return base64_size(size)

    async def send(self, recipients: Sequence[str], message: Outgoing) -> Delivered:
        settings = self._settings
        email = build_email(settings.sender, recipients, message)
        refusals: dict[str, tuple[int, str]]
        try:
            replies, _ = await aiosmtplib.send(
                email,
                recipients=list(recipients),
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=settings.password.get_secret_value() if settings.password else None,
                start_tls=settings.security == "starttls",
                use_tls=settings.security == "tls",
                validate_certs=settings.validate_certs,
                cert_bundle=str(settings.ca_file) if settings.ca_file else None,
                timeout=settings.timeout_seconds,
            )
            refusals = {address: (reply.code, reply.message) for address, reply in replies.items()}
        except aiosmtplib.SMTPRecipientsRefused as error:
            refusals = {refused.recipient: (refused.code, refused.message) for refused in error.recipients}
        except aiosmtplib.SMTPResponseException as error:
            if 400 <= error.code < 500:
                raise transient(_reply(error.code, error.message)) from error
            raise permanent(_reply(error.code, error.message)) from error
        except aiosmtplib.SMTPNotSupported as error:
            raise permanent(f"SMTP server: {error}") from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise transient(f"SMTP: {type(error).__name__}: {error}") from error
        refused = {address: _reply(*reply) for address, reply in refusals.items() if reply[0] >= 500}
        deferred = {address: _reply(*reply) for address, reply in refusals.items() if reply[0] < 500}
        return Delivered(
            sent=[address for address in recipients if address not in refusals],
            refused=refused,
            deferred=deferred,
        )

    async def aclose(self) -> None:
        """Nothing stays open: each send has its own connection."""
