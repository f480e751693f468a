"""In-memory stand-ins for the service layer's unit tests (``tests/unit/test_service_layer.py``).

Fakes only for those: every test of an adapter or a service runs on real servers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar, cast

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, OperationFailure

from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.job_queue import ActiveJob
from exporter.domain.job_life import ACTIVE_STATUSES, JobStatus

T = TypeVar("T")
# The fakes hold no transaction: the session is passed along and never read.
NO_SESSION = cast("AsyncClientSession", None)


@dataclass
class FakeJobs:
    """The jobs collection as a dict by id."""

    documents: dict[str, Document] = field(default_factory=dict)

    async def add(self, document: Document, session: AsyncClientSession | None = None) -> None:
        if document["_id"] in self.documents:
            raise DuplicateKeyError(f"job {document['_id']} exists")
        self.documents[document["_id"]] = document

    def _active(self, tenant: str) -> list[Document]:
        active = {status.value for status in ACTIVE_STATUSES}
        return [job for job in self.documents.values() if job["tenant"] == tenant and job["status"] in active]

    async def count_active(self, tenant: str, owner: str, session: AsyncClientSession) -> int:
        return sum(job["owner"] == owner for job in self._active(tenant))

    async def active_for_targets(
        self, tenant: str, targets: list[str], session: AsyncClientSession
    ) -> ActiveJob | None:
        busy = [job for job in self._active(tenant) if set(job["targets"]) & set(targets)]
        return ActiveJob(busy[0]["_id"], JobStatus(busy[0]["status"])) if busy else None


@dataclass
class FakeAdmissions:
    serialized: list[tuple[str, str, list[str]]] = field(default_factory=list)

    async def serialize(
        self, tenant: str, user: str, targets: list[str], session: AsyncClientSession
    ) -> None:
        self.serialized.append((tenant, user, targets))


@dataclass
class FakeTransaction:
    """A unit of work's transaction: in-memory repositories, and the events raised in it."""

    jobs: FakeJobs = field(default_factory=FakeJobs)
    admissions: FakeAdmissions = field(default_factory=FakeAdmissions)
    session: AsyncClientSession = NO_SESSION
    raised: list[Document] = field(default_factory=list)

    def raise_messages(self, messages: list[Document]) -> None:
        self.raised += messages


class TransientError(OperationFailure):
    """What a transaction that lost a write conflict raises: PyMongo runs the callback again."""

    def __init__(self) -> None:
        super().__init__("write conflict", 112, {"errorLabels": ["TransientTransactionError"]})


@dataclass
class FakeSession:
    """Runs ``with_transaction``'s callback as PyMongo does when the first attempt meets a
    transient error: the first attempt's writes are rolled back, the callback runs again."""

    failed_attempts: int
    in_transaction: bool = True

    async def with_transaction(self, callback: Callable[[Any], Awaitable[T]]) -> T:
        for _ in range(self.failed_attempts):
            await callback(self)
        return await callback(self)

    async def __aenter__(self) -> FakeSession:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


@dataclass
class FakeClient:
    session: FakeSession

    def start_session(self) -> FakeSession:
        return self.session


@dataclass
class FakeOutbox:
    """The outbox collection: what the last (the committed) attempt inserted, and what went out."""

    inserted: list[list[Document]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    async def add(self, document: Document, session: AsyncClientSession | None = None) -> None:
        self.inserted.append([document])

    async def add_many(self, documents: list[Document], session: AsyncClientSession) -> None:
        self.inserted.append(documents)

    async def mark_published(self, ids: list[str]) -> None:
        self.deleted += ids

    async def claim(self, limit: int, lease: timedelta) -> list[Document]:
        return []


@dataclass
class FakePublisher:
    sent: list[tuple[str, str, dict[str, object]]] = field(default_factory=list)

    async def publish_raw(self, topic: str, key: str, payload: dict[str, object]) -> None:
        self.sent.append((topic, key, payload))
