"""Email through SMTP (aiosmtplib): multipart text + HTML, STARTTLS or implicit TLS, AUTH.

A 4xx reply is the server saying "later" and is retried; a 5xx reply is final. Recipients the
server refuses are reported one by one, so the others still get the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
import uuid
from collections.abc import Sequence
from email import encoders
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

import aiosmtplib

from exporter.contracts.base import utcnow
from exporter.notifications.layout import html_text, plain_text
from exporter.notifications.messages import base64_size
from exporter.notifications.sending import Attachment, Delivered, Outgoing, permanent, transient
from exporter.settings import SmtpSettings

log = logging.getLogger(__name__)
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable in the raw message, unlike base64


class _Wire(Compat32):
    """The legacy policy with SMTP's line ends, writing a short ASCII header as it is.

    The default policy parses and refolds every header, and the legacy one still runs each
    through ``Header``: milliseconds an email, most of the notifier's time at a few hundred
    emails a second. A header that fits a line needs neither.
    """

    def fold_binary(self, name: str, value: Any) -> bytes:
        if (
            isinstance(value, str)
            and value.isascii()
            and len(name) + len(value) + 2 <= 78
            and ("\n" not in value and "\r" not in value)
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_WIRE = _Wire(linesep="\r\n")


def _boundary() -> str:
    """Set, not left to the generator, which would compile a regex per message to check it.

    ``=_`` occurs in neither base64 nor quoted-printable text, so no part can contain it.
    """
    return f"=_exporter_{uuid.uuid4().hex}"


def _text(content: str, subtype: str) -> MIMEText:
    return MIMEText(content, subtype, _UTF8)  # type: ignore[arg-type]  # a Charset is accepted


def _attachment(attachment: Attachment) -> MIMEBase:
    maintype, _, subtype = attachment.content_type.partition("/")
    part = MIMEBase(maintype or "application", subtype or "octet-stream")
    part.set_payload(attachment.data)
    encoders.encode_base64(part)
    name = attachment.name
    part.add_header(
        "Content-Disposition", "attachment", filename=name if name.isascii() else ("utf-8", "", name)
    )
    return part


def build_email(sender: str, recipients: Sequence[str], message: Outgoing) -> bytes:
    """``multipart/alternative`` text and HTML, inside ``multipart/mixed`` when files are attached."""
    alternative = MIMEMultipart(
        "alternative",
        _boundary(),
        [
            _text(plain_text(message.notice, message.files), "plain"),
            _text(html_text(message.notice, message.files), "html"),
        ],
    )
    email = (
        MIMEMultipart("mixed", _boundary(), [alternative, *map(_attachment, message.attachments)])
        if message.attachments
        else alternative
    )
    email["From"] = formataddr(parseaddr(sender))
    email["To"] = ", ".join(recipients)
    subject = message.notice.subject
    # The stubs type header values as str; the email package takes a Header (RFC 2047 words) too.
    email["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")  # type: ignore[assignment]
    email["Date"] = format_datetime(utcnow())
    # Stable per delivery: a receiving system can recognise a message it already has.
    email["Message-ID"] = f"<{message.key}@exporter>"
    email["Auto-Submitted"] = "auto-generated"
    out = io.BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=_WIRE).flatten(email)
    return out.getvalue()


def _reply(code: int, text: str) -> str:
    return f"SMTP {code} {text}"


class SmtpMailer:
    """Sends over a pool of kept-open connections: TLS and AUTH once per connection, not per email.

    At most ``settings.connections`` are in use at once, and a send waits for one rather than
    opening another that it could not keep. A connection that failed is dropped, and one idle for
    ``IDLE_SECONDS`` is not reused (servers close idle ones, RFC 5321 allows after five minutes),
    so a reused connection is a live one.
    """

    one_transaction = True
    IDLE_SECONDS = 30.0

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._sender = parseaddr(settings.sender)[1]
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._in_use = asyncio.Semaphore(settings.connections)

    def attach_limit(self, recipient: str) -> int:
        return self._settings.attach_max_bytes

    def encoded_size(self, size: int) -> int:
        return base64_size(size)

    async def _connection(self) -> aiosmtplib.SMTP:
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if now - since < self.IDLE_SECONDS and client.is_connected:
                return client
            client.close()
        settings = self._settings
        client = aiosmtplib.SMTP(
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
        await client.connect()
        return client

    async def send(self, recipients: Sequence[str], message: Outgoing) -> Delivered:
        email = build_email(self._settings.sender, recipients, message)
        async with self._in_use:
            return await self._send(recipients, email)

    async def _send(self, recipients: Sequence[str], email: bytes) -> Delivered:
        refusals: dict[str, tuple[int, str]]
        client: aiosmtplib.SMTP | None = None
        try:
            client = await self._connection()
            replies, _ = await client.sendmail(self._sender, list(recipients), email)
            refusals = {address: (reply.code, reply.message) for address, reply in replies.items()}
        except aiosmtplib.SMTPRecipientsRefused as error:
            refusals = {refused.recipient: (refused.code, refused.message) for refused in error.recipients}
        except aiosmtplib.SMTPResponseException as error:
            _drop(client)
            if 400 <= error.code < 500:
                raise transient(_reply(error.code, error.message)) from error
            raise permanent(_reply(error.code, error.message)) from error
        except aiosmtplib.SMTPNotSupported as error:
            _drop(client)
            raise permanent(f"SMTP server: {error}") from error
        except (aiosmtplib.SMTPException, OSError) as error:
            _drop(client)
            # Its text names the relay's host and port: the log keeps it, not the job.
            log.warning("SMTP: %s: %s", type(error).__name__, error)
            raise transient(f"SMTP: could not reach the mail server ({type(error).__name__})") from error
        assert client is not None
        self._idle.append((client, time.monotonic()))
        refused = {address: _reply(*reply) for address, reply in refusals.items() if reply[0] >= 500}
        deferred = {address: _reply(*reply) for address, reply in refusals.items() if reply[0] < 500}
        return Delivered(
            sent=[address for address in recipients if address not in refusals],
            refused=refused,
            deferred=deferred,
        )

    async def aclose(self) -> None:
        for client, _ in self._idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
        self._idle.clear()


def _drop(client: aiosmtplib.SMTP | None) -> None:
    if client is not None:
        client.close()
