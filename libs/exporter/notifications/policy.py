"""Which notification messages apply to a job's outcome, and the states a delivery goes through."""

from __future__ import annotations

from enum import StrEnum

from exporter.contracts.job import JobStatus
from exporter.contracts.request import NotificationPolicy

# The outcomes a notification can be about; a cancelled or expired job notifies no one.
NOTIFIED_OUTCOMES = frozenset({JobStatus.DONE, JobStatus.FAILED})


class DeliveryStatus(StrEnum):
    """A message's delivery, as kept on the job (``notifications[i].status``).

    ``pending`` → ``skipped`` (policy does not match), or ``pending`` → ``sending`` (claimed, in
    flight) → ``sent``/``failed``, or → ``retrying`` (a transient failure, tried again at
    ``nextAttemptAt``) → ``sending`` …
    """

    PENDING = "pending"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


def policy_applies(policy: NotificationPolicy, status: JobStatus) -> bool:
    if policy == "always":
        return status in NOTIFIED_OUTCOMES
    if policy == "onSuccess":
        return status is JobStatus.DONE
    return status is JobStatus.FAILED


def skip_reason(policy: NotificationPolicy, status: JobStatus) -> str:
    return f"policy {policy} does not apply to a {status.value} job"
