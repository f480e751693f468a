"""Email through SMTP (aiosmtplib): STARTTLS or implicit TLS and AUTH as settings say."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from exporter.notifications.messages import Notice
from exporter.settings import SmtpSettings


class SmtpMailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, recipients: list[str], notice: Notice, message_id: str) -> None:
        """``message_id`` is stable per delivery, so a receiving system can spot a duplicate."""
        settings = self._settings
        message = EmailMessage()
        message["From"] = settings.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = notice.subject
        message["Message-ID"] = f"<{message_id}@exporter>"
        message.set_content(notice.text)
        await aiosmtplib.send(
            message,
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            start_tls=settings.security == "starttls",
            use_tls=settings.security == "tls",
            validate_certs=settings.validate_certs,
            timeout=settings.timeout_seconds,
        )
