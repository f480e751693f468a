"""Which notification messages apply to a job's outcome (a delivery's states: ``domain.job_life``)."""

from __future__ import annotations

from exporter.contracts.notification import NotificationPolicy
from exporter.domain.job_life import JobStatus

# The outcomes a notification can be about; a cancelled or expired job notifies no one.
NOTIFIED_OUTCOMES = frozenset({JobStatus.DONE, JobStatus.FAILED})


def policy_applies(policy: NotificationPolicy, status: JobStatus) -> bool:
    if policy == "always":
        return status in NOTIFIED_OUTCOMES
    if policy == "onSuccess":
        return status is JobStatus.DONE
    return status is JobStatus.FAILED


def skip_reason(policy: NotificationPolicy, status: JobStatus) -> str:
    return f"policy {policy} does not apply to a {status.value} job"
