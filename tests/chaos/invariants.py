"""What must hold after the faults, as plain functions over what the stores and sinks hold.

Each check returns a ``Verdict`` for one kind of effect: what is lost (should exist and does
not), duplicated (exists more than once, or exists without cause), stuck (never finished) and
wrong (exists but differs from what it should be). ``Observed`` is gathered by ``observe.py``;
the unit tests build it by hand.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exporter.domain.job_life import DeliveryStatus, JobStatus
from exporter.notifications.policy import NOTIFIED_OUTCOMES

Job = Mapping[str, Any]  # a job document as stored: _id, status, error, files, rowCount, notifications
FINAL_DELIVERIES = frozenset({DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.FAILED})


@dataclass
class Verdict:
    kind: str
    checked: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.stuck or self.wrong)

    def counts(self) -> str:
        return f"{len(self.lost)}/{len(self.duplicated)}/{len(self.stuck)}/{len(self.wrong)}"

    def lines(self, limit: int = 5) -> list[str]:
        """The verdict, then a few examples of each failure, for the printed report."""
        head = (
            f"{'ok  ' if self.ok else 'FAIL'} {self.kind:<13} {self.checked:>6} checked, lost "
            f"{len(self.lost)}, duplicated {len(self.duplicated)}, stuck {len(self.stuck)}, "
            f"wrong {len(self.wrong)}"
        )
        examples = [
            f"       {what}: {example}"
            for what, found in (
                ("lost", self.lost),
                ("duplicated", self.duplicated),
                ("stuck", self.stuck),
                ("wrong", self.wrong),
            )
            for example in found[:limit]
        ]
        return [head, *examples]


@dataclass(frozen=True)
class StoredObject:
    size: int
    data: bytes | None  # None when too large to read back; its checksum is then not compared


@dataclass(frozen=True)
class Grid:
    """A request's scheduled times up to the check. ``complete``: each must have fired (a request
    neither edited nor deleted: an edit moves the schedule on past a due run, a delete stops it);
    otherwise only that no job lies off the grid. ``once``: a one-time request, one job whenever.
    """

    times: frozenset[datetime] = frozenset()
    complete: bool = True
    once: bool = False


def fired_once(grids: Mapping[str, Grid], jobs: Iterable[Job], fired: Mapping[str, int]) -> Verdict:
    """Every scheduled time of every request fired exactly once, none missed: each has its job,
    no job lies off its request's grid, and each job was announced on ``export.requested`` by one
    distinct event (``fired``: distinct event ids by job id)."""
    verdict = Verdict("runs")
    runs: dict[str, list[datetime]] = {}
    for job in jobs:
        runs.setdefault(str(job["requestId"]), []).append(job["scheduledAt"])
        if job["status"] != JobStatus.SKIPPED and fired.get(str(job["_id"]), 0) > 1:
            verdict.duplicated.append(f"{job['_id']}: announced by {fired[str(job['_id'])]} events")
    for request_id, grid in grids.items():
        have = runs.get(request_id, [])
        if grid.once:
            verdict.checked += 1
            if not have:
                verdict.lost.append(f"{request_id}: one-time request without a job")
            elif len(have) > 1:
                verdict.duplicated.append(f"{request_id}: one-time request with {len(have)} jobs")
            continue
        verdict.checked += len(grid.times)
        if grid.complete:
            verdict.lost += [f"{request_id} at {at.isoformat()}" for at in sorted(grid.times - set(have))]
        latest = max(grid.times, default=None)
        verdict.duplicated += [
            f"{request_id} at {at.isoformat()}: off its grid"
            for at in sorted(set(have) - grid.times)
            if latest is not None and at <= latest
        ]
    return verdict


def jobs_terminal(jobs: Iterable[Job], expected_ids: Iterable[str] = ()) -> Verdict:
    """Every job ended (done, failed with a reason, cancelled, expired, skipped); the jobs in
    ``expected_ids`` (ad-hoc ones published upstream, canaries) exist."""
    verdict = Verdict("jobs")
    seen = set()
    for job in jobs:
        verdict.checked += 1
        seen.add(job["_id"])
        status = JobStatus(job["status"])
        if not status.is_final:
            verdict.stuck.append(f"{job['_id']}: {status.value}")
        elif status is JobStatus.FAILED and not str(job.get("error") or "").strip():
            verdict.wrong.append(f"{job['_id']}: failed without a reason")
    verdict.lost += [f"{job_id}: no job" for job_id in sorted(set(expected_ids) - seen)]
    return verdict


def files_match(jobs: Iterable[Job], objects: Mapping[str, StoredObject]) -> Verdict:
    """Each done job's files exist with their recorded size and sha256, its rows add up; and no
    object exists that no job names (a file of a job that no longer exists, or of a second render
    under another name)."""
    verdict = Verdict("files")
    named: set[str] = set()
    statuses: dict[str, str] = {}
    for job in jobs:
        statuses[str(job["_id"])] = f"{job['status']}: {job.get('error') or ''}".strip(": ")
        files = job.get("files") or []
        named.update(file["key"] for file in files)
        if job["status"] != JobStatus.DONE:
            continue
        for file in files:
            verdict.checked += 1
            stored = objects.get(file["key"])
            if stored is None:
                verdict.lost.append(f"{job['_id']}: {file['key']}")
            elif stored.size != file["sizeInBytes"]:
                verdict.wrong.append(
                    f"{file['key']}: {stored.size} bytes, the job says {file['sizeInBytes']}"
                )
            elif stored.data is not None and _sha256(stored.data) != file["checksum"]:
                verdict.wrong.append(f"{file['key']}: checksum differs from the job's")
        data_files = [file for file in files if not str(file["name"]).endswith(".zip")]
        if sum(file["rows"] for file in data_files) != job.get("rowCount", 0) and data_files:
            verdict.wrong.append(
                f"{job['_id']}: files hold {sum(f['rows'] for f in data_files)} rows, job {job['rowCount']}"
            )
    verdict.duplicated += [
        f"{key}: no job names it (job {statuses.get(key.split('/')[-2], 'unknown')})"
        for key in sorted(objects.keys() - named)
    ]
    return verdict


def rows_match(jobs: Iterable[Job], expected_rows: Mapping[str, int]) -> Verdict:
    """Done jobs over data known in advance hold exactly its rows (``expected_rows`` by request id)."""
    verdict = Verdict("rows")
    for job in jobs:
        wanted = expected_rows.get(str(job["requestId"]))
        if wanted is None or job["status"] != JobStatus.DONE:
            continue
        verdict.checked += 1
        if job["rowCount"] != wanted:
            verdict.wrong.append(f"{job['_id']}: {job['rowCount']} rows, the data has {wanted}")
    return verdict


def notified_once(jobs: Iterable[Job], received: Mapping[str, Counter[str]]) -> Verdict:
    """Each of a finished job's messages is final: sent and received (at least once, and at most
    once for each recipient), skipped, or failed with the reason; a job with nothing to notify
    (cancelled, expired, skipped) leaves none pending. ``received``: by medium, how many times
    each delivery key (``<job id>.<index>``, ``|recipient`` after it for mail) arrived.
    """
    verdict = Verdict("notifications")
    arrivals = {
        medium: Counter(key.split("|")[0] for key in counts.elements()) for medium, counts in received.items()
    }
    for job in jobs:
        status = JobStatus(job["status"])
        if not status.is_final:
            continue
        for entry in job.get("notifications") or []:
            verdict.checked += 1
            key = f"{job['_id']}.{entry['index']}"
            delivery = DeliveryStatus(entry["status"])
            if status not in NOTIFIED_OUTCOMES and delivery not in FINAL_DELIVERIES:
                verdict.wrong.append(f"{key}: its job is {status.value}, the message stays {delivery.value}")
            elif delivery not in FINAL_DELIVERIES:
                verdict.stuck.append(f"{key} ({entry['medium']}): {delivery.value}")
            elif delivery is DeliveryStatus.FAILED and not str(entry.get("lastError") or "").strip():
                verdict.wrong.append(f"{key}: failed without a reason")
            elif delivery is DeliveryStatus.SENT and not arrivals.get(str(entry["medium"]), Counter())[key]:
                verdict.lost.append(f"{key} ({entry['medium']}): sent, never received")
    for medium, counts in received.items():
        verdict.duplicated += [f"{key} ({medium}): received {n} times" for key, n in counts.items() if n > 1]
    return verdict


def rendered_once(jobs: Iterable[Job], completed: Mapping[str, int]) -> Verdict:
    """Each job the renderer finished announced its outcome on ``export.completed`` once: none
    lost (the notifier would never hear of it), none twice (a render thrown away and re-done)."""
    verdict = Verdict("renders")
    for job in jobs:
        count = completed.get(str(job["_id"]), 0)
        if job["status"] in (JobStatus.DONE, JobStatus.FAILED):
            verdict.checked += 1
            if count == 0 and job["status"] == JobStatus.DONE:
                verdict.lost.append(f"{job['_id']}: done, never announced")
        if count > 1:
            verdict.duplicated.append(f"{job['_id']}: {count} outcomes announced")
    return verdict


def iam_once(versions: Mapping[str, int], events: Mapping[tuple[str, int], int]) -> Verdict:
    """One ``iam.policy-updated`` event per change of each request: versions 1 to its stored
    version, each announced by exactly one distinct event (``events``: by (request id, version))."""
    verdict = Verdict("iam events")
    for request_id, version in versions.items():
        for number in range(1, version + 1):
            verdict.checked += 1
            count = events.get((request_id, number), 0)
            if count == 0:
                verdict.lost.append(f"{request_id} v{number}")
            elif count > 1:
                verdict.duplicated.append(f"{request_id} v{number}: {count} events")
    known = set(versions)
    verdict.duplicated += [
        f"{rid} v{v}: no such change" for rid, v in events if rid in known and v > versions[rid]
    ]
    return verdict


def grants_applied(sent: Mapping[str, int], stored: Mapping[str, int]) -> Verdict:
    """Each grant the IAM side changed is stored at its last version."""
    verdict = Verdict("grants", checked=len(sent))
    for grant_id, version in sent.items():
        have = stored.get(grant_id)
        if have is None:
            verdict.lost.append(f"{grant_id}: not stored")
        elif have != version:
            verdict.wrong.append(f"{grant_id}: stored v{have}, last sent v{version}")
    return verdict


def ingested_once(sent: Mapping[str, int], stored: Mapping[str, int]) -> Verdict:
    """Every reading published is stored exactly once (counts by publisher)."""
    verdict = Verdict("readings", checked=sum(sent.values()))
    for publisher, count in sent.items():
        have = stored.get(publisher, 0)
        if have < count:
            verdict.lost.append(f"{publisher}: {count - have} of {count} readings missing")
        elif have > count:
            verdict.duplicated.append(f"{publisher}: {have - count} readings stored twice")
    return verdict


def _sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"
