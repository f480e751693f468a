"""Which notification messages apply to a job's outcome."""

from __future__ import annotations

from exporter.contracts.job import JobStatus
from exporter.contracts.request import NotificationPolicy


def policy_applies(policy: NotificationPolicy, status: JobStatus) -> bool:
    if policy == "always":
        return status in {JobStatus.DONE, JobStatus.FAILED}
    if policy == "onSuccess":
        return status is JobStatus.DONE
    return status is JobStatus.FAILED
