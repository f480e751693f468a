"""A notification message's delivery across attempts: what is known of it, and what each
attempt decides (try again after a backoff, or settle as sent or failed).

Plain data and rules: the notifier (``notifier.delivery``) reads, claims, sends and records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from exporter.adapters.mongo.deliveries import DeliveryClaim
from exporter.adapters.storage import ObjectStore
from exporter.contracts.job import Delivery, JobResult, JobSpec
from exporter.contracts.notification import NotificationMessage
from exporter.domain.job_life import DeliveryStatus
from exporter.domain.retry import backoff_seconds
from exporter.notifications.messages import FileLink
from exporter.settings.notifier import NotifierSettings, TenantDestinations

# The reason of a delivery cut off: its notifier died while sending (see ``delivery``'s notes).
CUT_OFF = (
    "the notifier stopped while sending, so whether it arrived is unknown; "
    "not sent again, so no one gets it twice"
)


def delivery_key(job_id: str, index: int) -> str:
    """The idempotency key of a message's delivery: stable for the job's life."""
    return f"{job_id}.{index}"


@dataclass
class JobContext:
    """One finished job as the notifier needs it; each file is read at most once for it."""

    job_id: str
    owner: str
    spec: JobSpec
    result: JobResult
    links: tuple[FileLink, ...]
    storage: ObjectStore
    # What the job's tenant may reach, as the settings say now (they may have changed since the
    # request was accepted).
    destinations: TenantDestinations
    _reads: dict[str, asyncio.Future[bytes]] = field(default_factory=dict)

    def message(self, index: int) -> NotificationMessage:
        return self.spec.request.notification.messages[index]

    async def file(self, key: str) -> bytes:
        read = self._reads.get(key)
        if read is None:
            read = self._reads[key] = asyncio.ensure_future(self.storage.read(key))
        try:
            return await asyncio.shield(read)
        except Exception:
            self._reads.pop(key, None)  # the next attempt reads again
            raise


@dataclass
class Progress:
    """How far a message's delivery got, across attempts: kept on the job between them."""

    attempts: int
    sent: list[str]
    refused: dict[str, str]

    @classmethod
    def of(cls, delivery: Delivery) -> Progress:
        refused = {item.recipient: item.reason for item in delivery.refused}
        return cls(attempts=delivery.attempts, sent=list(delivery.sent_to), refused=refused)


@dataclass
class Attempt:
    """What one attempt could not finish: recipients to try again, and remarks for the reader."""

    deferred: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    retry_after: float | None = None


@dataclass
class Due:
    """What is due of one job, from its delivery entries as read (``seen``): deliveries to claim
    and send (index → progress), skips to record.
    """

    context: JobContext
    seen: list[Delivery]
    progress: dict[int, Progress] = field(default_factory=dict)
    skips: dict[int, str] = field(default_factory=dict)

    def claim(self) -> DeliveryClaim:
        """Holds only while no entry has changed since they were read."""
        job_id = self.context.job_id
        claims = {index: (delivery_key(job_id, index), p.attempts) for index, p in self.progress.items()}
        return DeliveryClaim(job_id, claims, self.skips, self.seen)


def describe(problems: Mapping[str, str]) -> str | None:
    return "; ".join(f"{recipient}: {reason}" for recipient, reason in problems.items()) or None


def after_attempt(
    attempt: Attempt, progress: Progress, error: str | None, settings: NotifierSettings
) -> tuple[DeliveryStatus, float | None, str | None]:
    """What an attempt leaves the delivery in: the status, the delay before the next attempt
    (None: settled) and the error to show.

    Recipients deferred by a transient failure are tried again after a backoff while attempts
    remain; then they are given up on (moved to ``progress.refused`` with the reason), and the
    delivery is ``sent`` if anyone got it, else ``failed``. ``error`` is what stopped the attempt
    as a whole (no recipients, an internal error), if anything did."""
    if attempt.deferred and progress.attempts < settings.max_attempts:
        delay = backoff_seconds(
            progress.attempts,
            settings.backoff_initial_seconds,
            settings.backoff_max_seconds,
            attempt.retry_after,
        )
        return DeliveryStatus.RETRYING, delay, describe({**attempt.deferred, **progress.refused})
    for recipient, reason in attempt.deferred.items():
        progress.refused[recipient] = f"{reason} (gave up after {progress.attempts} attempts)"
    status = DeliveryStatus.SENT if progress.sent else DeliveryStatus.FAILED
    return status, None, error or describe(progress.refused)
