"""What every part of the jobs repository shares: the collection, the filters of a transition,
and the one reading of a stored document as a ``Job``.

The transitions themselves (which statuses each leaves and reaches, and who makes it) are stated
in ``exporter.domain.job_life``; the repository's parts only carry them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import JOBS, Document
from exporter.adapters.mongo.unreadable import unreadable_because
from exporter.contracts.job import Job, Stored
from exporter.domain.job_life import JobStatus, Transition

M = TypeVar("M", bound=Stored)


def _as(kind: type[M], document: Document) -> M:
    fields = {name: value for name, value in document.items() if name != "_id"}
    return kind.model_validate({"id": document["_id"], **fields})


def to_job(document: Document) -> Job:
    """Raises ``ValidationError`` when the document no longer validates (see ``read_job``)."""
    return _as(Job, document)


@dataclass(frozen=True, slots=True)
class UnreadableJob:
    """A stored job that no longer validates as ``Job`` (written by an older version, by hand, or
    by a bug): a read of many jobs returns it in its place, so that it cannot fail the others."""

    job_id: str
    problem: str


def read_job(document: Document, kind: type[M]) -> M | UnreadableJob:
    """``document`` as ``kind`` (a ``Job``, or the part of one a projection read)."""
    try:
        return _as(kind, document)
    except ValidationError as error:
        return UnreadableJob(str(document.get("_id")), unreadable_because(error))


class JobStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[JOBS]


def status_in(statuses: frozenset[JobStatus]) -> str | Document:
    """A filter on ``status``: the value itself when there is one (the embedded store plans that
    best), else ``$in``, or ``$ne`` for every status but one."""
    if len(statuses) == 1:
        return next(iter(statuses)).value
    others = set(JobStatus) - statuses
    if len(others) == 1:
        return {"$ne": others.pop().value}
    return {"$in": [status.value for status in JobStatus if status in statuses]}


def leaving(transition: Transition, job_id: str) -> Document:
    """The guard of ``transition`` for one job: it applies only to a job in one of its sources."""
    return {"_id": job_id, "status": status_in(transition.sources)}


def running(transition: Transition, job_id: str, started_at: datetime | None) -> Document:
    """The guard of ``transition`` out of ``inProgress`` (or of a heartbeat, which holds while
    the run may still finish): given the run's ``started_at``, only that run's."""
    assert transition.sources == {JobStatus.IN_PROGRESS}, transition
    query = leaving(transition, job_id)
    if started_at is not None:
        query["startedAt"] = started_at
    return query
