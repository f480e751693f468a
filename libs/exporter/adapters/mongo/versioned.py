"""Versioned upserts: a document changes only when an update carries a higher version.

Upstream updates arrive at least once and not always in order (replays, partitions, retries),
so each write is conditional on the stored version being lower. The condition travels in the
upsert's filter: when a newer version is stored, the filter matches nothing, the upsert tries
to insert a second document with the same ``_id`` and the store refuses it with a duplicate
key: that update was stale. The same refusal happens in a race, when two writers both find no
document and both insert; the loser is then applied once more without ``upsert``, where only
the version decides.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.bulk import bulk_write
from exporter.adapters.mongo.client import Document
from exporter.contracts.base import utcnow
from exporter.contracts.ingest import IngestModel

ModelT = TypeVar("ModelT", bound=IngestModel)
# Fields the store adds to the model's own: the key, the tenant and the time of the last write.
STORED_ONLY = ("_id", "tenant", "updated")


@dataclass(frozen=True, slots=True)
class UpsertOutcome:
    written: int  # documents created or replaced by a newer version
    stale: int  # updates ignored: the stored version was the same or newer
    failures: dict[int, str]  # index of an update the store refused → why


async def upsert_newer(collection: AsyncCollection[Document], documents: Sequence[Document]) -> UpsertOutcome:
    """Writes each document (with ``_id`` and ``version``) unless its stored version is not lower."""
    # Within one batch only the highest version of each document can matter; on a tie the
    # first one stands, as it would against the store.
    latest: dict[object, int] = {}
    for index, document in enumerate(documents):
        held = latest.get(document["_id"])
        if held is None or documents[held]["version"] < document["version"]:
            latest[document["_id"]] = index
    chosen = list(latest.values())

    def update(index: int, upsert: bool) -> UpdateOne:
        document = documents[index]
        fields = {key: value for key, value in document.items() if key != "_id"}
        guard = {"_id": document["_id"], "version": {"$lt": document["version"]}}
        return UpdateOne(guard, {"$set": fields}, upsert=upsert)

    first = await bulk_write(collection, [update(index, upsert=True) for index in chosen])
    raced = [chosen[position] for position in first.duplicates]
    second = await bulk_write(collection, [update(index, upsert=False) for index in raced])
    failures = {chosen[position]: reason for position, reason in first.failures.items()}
    failures |= {raced[position]: reason for position, reason in second.failures.items()}
    written = first.upserted + first.modified + second.modified
    return UpsertOutcome(written=written, stale=len(documents) - written - len(failures), failures=failures)


def stored_key(*parts: str) -> str:
    """An unambiguous ``_id`` from several names, whatever characters they hold."""
    return json.dumps(parts)


class VersionedRepository(ABC, Generic[ModelT]):
    """A collection of versioned upstream models, one document per tenant and key."""

    model: type[ModelT]

    def __init__(self, db: AsyncDatabase[Document], collection: str) -> None:
        self._collection: AsyncCollection[Document] = db[collection]

    @staticmethod
    @abstractmethod
    def key(tenant: str, item: ModelT) -> str: ...

    async def upsert_many(self, items: Sequence[tuple[str, ModelT]]) -> UpsertOutcome:
        """Stores (tenant, item) pairs; an update not newer than the stored one is ignored."""
        updated = utcnow()
        documents = [
            {"_id": self.key(tenant, item), "tenant": tenant, **item.to_document(), "updated": updated}
            for tenant, item in items
        ]
        return await upsert_newer(self._collection, documents)

    async def _one(self, key: str) -> ModelT | None:
        document = await self._collection.find_one({"_id": key})
        return None if document is None else self._read(document)

    def _read(self, document: Document) -> ModelT:
        return self.model.model_validate({k: v for k, v in document.items() if k not in STORED_ONLY})
