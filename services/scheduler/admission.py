"""The queued-jobs quota and one-job-per-target, as the scheduler applies them to a batch.

The request-api refuses a run that would break either rule (429, 409; see request_api.commands
``admit_job``). The scheduler has nobody to answer, so such a run is recorded as a ``skipped``
job with the reason, and its schedule moves on as usual. A batch reads its owners' counts and
its busy targets once (two queries, whatever its size), then counts the jobs it queues itself.

The counts are the batch's snapshot: a run queued at the same instant by another replica or by
the API is not seen, so the limits may be passed by that much, never for long (the next batch
sees it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from exporter.adapters.mongo.client import Document
from exporter.domain.job_life import JobStatus

Key = tuple[str, str]  # (tenant, owner) or (tenant, target)


@dataclass(frozen=True, slots=True)
class InFlight:
    job_id: str
    status: JobStatus
    request_id: str


@dataclass
class Admission:
    """Plain data in, a reason out: what the store holds (``active``, ``busy``) and the rules."""

    max_active_per_user: int
    one_per_target: bool
    active: dict[Key, int] = field(default_factory=dict)
    busy: dict[Key, InFlight] = field(default_factory=dict)
    # Requests queued by this batch: their own further runs (``catchUp: all``) go together.
    _queued_requests: set[str] = field(default_factory=set)

    @staticmethod
    def owners(jobs: Iterable[Document]) -> set[Key]:
        return {(job["tenant"], job["owner"]) for job in jobs}

    @staticmethod
    def targets(jobs: Iterable[Document]) -> set[Key]:
        return {(job["tenant"], target) for job in jobs for target in job["targets"]}

    def note_busy(self, jobs: Iterable[Document]) -> None:
        for job in jobs:
            in_flight = InFlight(job["_id"], JobStatus(job["status"]), job["requestId"])
            for target in job["targets"]:
                self.busy[job["tenant"], target] = in_flight

    def refusal(self, job: Document) -> str | None:
        """Why ``job`` may not be queued, or None; a job admitted counts against later ones."""
        owner = (job["tenant"], job["owner"])
        if self.active.get(owner, 0) >= self.max_active_per_user:
            return (
                f"skipped: {job['owner']} already had {self.max_active_per_user} exports queued or "
                "running (the queued-jobs quota)"
            )
        if self.one_per_target:
            for target in job["targets"]:
                other = self.busy.get((job["tenant"], target))
                if other is not None and not (
                    other.request_id == job["requestId"] and other.request_id in self._queued_requests
                ):
                    return f"skipped: job '{other.job_id}' on the same target was still {other.status}"
        self.active[owner] = self.active.get(owner, 0) + 1
        self._queued_requests.add(job["requestId"])
        self.note_busy([job])
        return None
