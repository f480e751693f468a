"""Where the notifier's messages land during a chaos run: an SMTP server and a chat receiver that
count each delivery and can be told to fail for a while (4xx/5xx, 429, or hang then fail).

A hang ends in a failure, never a success: a message the client gave up on must not count as
delivered, or every client time-out would read as a duplicate the notifier could not prevent.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time
from collections import Counter
from enum import StrEnum
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from werkzeug import Response

from exporter.local.servers import LOOPBACK, free_ports
from tests.integration.notifier_support import ChatReceiver, Received, json_reply

CHAT_WEBHOOK = "chaos"  # the webhook name the workload's chat messages are sent to
# The chat messages' title: the delivery key (job id and message index) the receiver counts by.
CHAT_TITLE = "chaos ${job.id}.INDEX"
_CHAT_KEY = re.compile(r"chaos ([\w-]+-\d{8}T\d{9}Z\.\d+)")
HANG_SECONDS = 8.0  # longer than the notifier's time-outs in the chaos settings


class SinkMode(StrEnum):
    OK = "ok"
    TRANSIENT = "transient"  # SMTP 451, chat 503
    REFUSE = "refuse"  # SMTP 554, chat 500
    THROTTLE = "throttle"  # chat 429 with Retry-After; SMTP 421
    HANG = "hang"


class SmtpSink:
    """An aiosmtpd server in a thread; ``received`` counts accepted messages by key and recipient."""

    def __init__(self) -> None:
        self.mode = SinkMode.OK
        self.received: Counter[str] = Counter()
        (self.port,) = free_ports(1)
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname=LOOPBACK, port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mode = self.mode
        if mode is SinkMode.HANG:
            await asyncio.sleep(HANG_SECONDS)
            return "451 4.4.2 timed out"
        if mode is SinkMode.TRANSIENT:
            return "451 4.3.0 try again later"
        if mode is SinkMode.THROTTLE:
            return "421 4.7.0 too many messages, slow down"
        if mode is SinkMode.REFUSE:
            return "554 5.7.1 refused by the chaos harness"
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        key = str(message["Message-ID"] or "").strip("<>").removesuffix("@exporter")
        with self._lock:
            for recipient in envelope.rcpt_tos:
                self.received[f"{key}|{recipient}"] += 1
        return "250 Message accepted"


class ChatSink(ChatReceiver):
    """The tests' chat receiver; its webhook counts the messages it accepted by delivery key."""

    def __init__(self) -> None:
        self.mode = SinkMode.OK
        self.accepted: Counter[str] = Counter()
        self._hangs: list[tuple[float, float]] = []  # monotonic spans in which requests hang
        super().__init__()

    @property
    def url(self) -> str:
        return self.webhook(CHAT_WEBHOOK)

    def set(self, mode: SinkMode) -> None:
        """Changes the mode; a hang holds each request ``HANG_SECONDS``, then fails it."""
        if mode is SinkMode.HANG:
            self._hangs.append((time.monotonic(), float("inf")))
            self.hold(f"/webhooks/{CHAT_WEBHOOK}")
        elif self.mode is SinkMode.HANG:
            began, _ = self._hangs[-1]
            self._hangs[-1] = (began, time.monotonic())
            threading.Timer(HANG_SECONDS, self._holds.pop(f"/webhooks/{CHAT_WEBHOOK}").set).start()
        self.mode = mode

    def _default(self, received: Received) -> Response:
        if not received.path.startswith("/webhooks/"):
            return super()._default(received)
        if (
            any(began <= received.at <= ended for began, ended in self._hangs)
            or self.mode is SinkMode.TRANSIENT
        ):
            return json_reply({"message": "unavailable"}, status=503)
        if self.mode is SinkMode.THROTTLE:
            return json_reply({"message": "rate limited", "retry_after": 1.0}, 429, {"Retry-After": "1"})
        if self.mode is SinkMode.REFUSE:
            return json_reply({"message": "internal error"}, status=500)
        for key in _CHAT_KEY.findall(_text(received.json)):
            with self._lock:
                self.accepted[key] += 1
        return super()._default(received)


def _text(body: Any) -> str:
    return str(body)
