"""A local SMTP server that keeps every message as an ``.eml`` file instead of delivering it.

Tests and ``make run`` read what the notifier sent from the mail directory, so no mail ever leaves
the machine. ``--tls-cert``/``--tls-key`` make it offer (and require) STARTTLS and ``--users`` makes
it require AUTH, so the notifier's secure settings can be exercised against the same sink.

    python -m exporter.local.smtp_sink --host 127.0.0.1 --port 8025 --maildir .run/mail
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import ssl
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd import __version__ as aiosmtpd_version
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

IDENT = f"aiosmtpd {aiosmtpd_version}"


class MaildirHandler:
    """Writes each message to a temporary file and renames it, so readers never see half a message.

    The envelope sender and recipients go first as ``X-MailFrom``/``X-RcptTo`` headers: Bcc
    recipients appear nowhere else.
    """

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}"
        envelope_headers = f"X-MailFrom: {envelope.mail_from}\r\nX-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
        temporary = self.maildir / f".{name}.tmp"
        temporary.write_bytes(envelope_headers.encode() + (envelope.original_content or b""))
        temporary.replace(self.maildir / f"{name}.eml")
        return "250 Message accepted for delivery"


class PasswordFile:
    """AUTH PLAIN/LOGIN against a file of ``user:password`` lines."""

    def __init__(self, path: Path) -> None:
        lines = (line.partition(":") for line in path.read_text().splitlines() if line.strip())
        self.passwords = {user: password for user, _, password in lines}

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            expected = self.passwords.get(auth_data.login.decode())
            if expected is not None and hmac.compare_digest(expected.encode(), auth_data.password):
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", type=Path, required=True, help="where .eml files are written")
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate chain: offer and require STARTTLS")
    parser.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    parser.add_argument("--users", type=Path, help="file of user:password lines: require AUTH")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    return args


async def serve(args: argparse.Namespace) -> None:
    args.maildir.mkdir(parents=True, exist_ok=True)
    handler = MaildirHandler(args.maildir)
    tls: ssl.SSLContext | None = None
    if args.tls_cert is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    authenticator = PasswordFile(args.users) if args.users is not None else None

    def session() -> SMTP:
        return SMTP(
            handler,
            hostname=args.host,
            ident=IDENT,
            tls_context=tls,
            require_starttls=tls is not None,
            authenticator=authenticator,
            auth_required=authenticator is not None,
            auth_require_tls=tls is not None,
        )

    server = await asyncio.get_running_loop().create_server(session, args.host, args.port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
