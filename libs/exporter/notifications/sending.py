"""The port every medium's adapter implements, and the rules for failures and retries.

Adapters turn their library's errors into ``DeliveryFailure``: transient (worth another try:
the connection failed, 5xx, 429, SMTP 4xx) or permanent (bad address, other 4xx, SMTP 5xx).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

from pydantic import SecretStr

from exporter.notifications.messages import FileEntry, Notice


class DeliveryFailure(Exception):
    def __init__(self, reason: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after = retry_after


def transient(reason: str, retry_after: float | None = None) -> DeliveryFailure:
    return DeliveryFailure(reason, transient=True, retry_after=retry_after)


def permanent(reason: str) -> DeliveryFailure:
    return DeliveryFailure(reason, transient=False)


def http_failure(status: int, reason: str, retry_after: float | None = None) -> DeliveryFailure:
    """429, 408 and 5xx may pass if tried again later; any other 4xx never will."""
    described = f"HTTP {status}: {reason}"
    if status in {408, 429} or status >= 500:
        return transient(described, retry_after)
    return permanent(described)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to one group of recipients, laid out for the medium's attachment limit."""

    key: str
    """The delivery's idempotency key, stable across attempts (e.g. the email's Message-ID)."""
    notice: Notice
    files: tuple[FileEntry, ...]
    attachments: tuple[Attachment, ...]
    webhooks: Mapping[str, SecretStr] = field(default_factory=dict)
    """The job's tenant's webhooks of this medium by name: the only ones ``webhook:NAME`` may mean."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """What a send reached: recipients a server refused for good, or for now, are named."""

    sent: list[str]
    refused: dict[str, str] = field(default_factory=dict)
    deferred: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Sender(Protocol):
    """A medium's adapter. ``one_transaction``: all recipients go in one send (SMTP); otherwise
    each recipient is sent to on its own, so one bad chat does not hold up the others.
    """

    one_transaction: bool

    def attach_limit(self, recipient: str) -> int:
        """Bytes of attachments this recipient may get (as ``encoded_size`` counts); 0: links only."""
        ...

    def encoded_size(self, size: int) -> int: ...

    async def send(self, recipients: Sequence[str], message: Outgoing) -> Delivered:
        """Raises ``DeliveryFailure`` when nothing was sent."""
        ...

    async def aclose(self) -> None: ...
