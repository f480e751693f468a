"""Caps on inserts that commit together: at most so many documents matching a query.

The group commit (``exporter.service_layer.group_commit``) checks a batch's caps in its
transaction against counters kept in documents of ``admissions`` (several caps may share one,
say a tenant's and each of its users'): one read of the batch's counter documents and one write
of each, however many members share them; the store pays per document written, not per field.
A counter is an upper bound (it counts inserts; what later stops matching is not subtracted), so
only a cap that seems full is recounted, with a count bounded by the limit. Concurrent writers
(other API processes) write the same counters, so the store aborts one and its retry sees the
other's inserts: the cap holds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne
from pymongo.client_session import ClientSession
from pymongo.database import Database

from exporter.adapters.mongo.client import ADMISSIONS, Document
from exporter.contracts.base import utcnow


@dataclass(frozen=True, slots=True)
class Cap:
    """At most ``limit`` documents of ``collection`` match ``query``; the count is kept at
    ``field`` (a dotted path) of the counter document ``counter``; ``message`` is what a caller
    past the limit is told. Caps that share a counter document cost one write between them."""

    counter: str
    field: str
    collection: str
    query: Document
    limit: int
    message: str

    @property
    def key(self) -> tuple[str, str]:
        return self.counter, self.field


class CapReached(Exception):
    """An insert that a ``Cap`` refused; nothing of it was written."""


def within_caps(db: Database[Document], batch: list[list[Cap]], session: ClientSession) -> dict[int, Cap]:
    """The members of ``batch`` (each given by its caps, by index) that a cap refuses, with the
    cap; counts the others, in ``session``."""
    if not any(batch):
        return {}
    counters = db[ADMISSIONS]
    ids = sorted({cap.counter for caps in batch for cap in caps})
    stored = {c["_id"]: c for c in counters.find({"_id": {"$in": ids}}, session=session)}
    counts: dict[tuple[str, str], int] = {}
    added: dict[tuple[str, str], int] = defaultdict(int)  # by this batch, not in the snapshot yet
    recounted: set[tuple[str, str]] = set()

    def full(cap: Cap) -> bool:
        if cap.key not in counts:
            counts[cap.key] = _at(stored.get(cap.counter, {}), cap.field, cap.limit)  # none yet: count
        if counts[cap.key] >= cap.limit and cap.key not in recounted:
            recounted.add(cap.key)
            recount = db[cap.collection].count_documents(cap.query, limit=cap.limit, session=session)
            counts[cap.key] = recount + added[cap.key]
        return counts[cap.key] >= cap.limit

    refused: dict[int, Cap] = {}
    for index, caps in enumerate(batch):
        if (over := next((cap for cap in caps if full(cap)), None)) is not None:
            refused[index] = over
            continue
        for cap in caps:
            counts[cap.key] += 1
            added[cap.key] += 1
    fields: dict[str, Document] = defaultdict(lambda: {"countedAt": utcnow()})
    for (counter, field), count in counts.items():
        fields[counter][field] = count
    counters.bulk_write(
        [UpdateOne({"_id": counter}, {"$set": values}, upsert=True) for counter, values in fields.items()],
        session=session,
    )
    return refused


def _at(document: Document, path: str, default: int) -> int:
    value: Any = document
    for name in path.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value if isinstance(value, int) else default
