"""The entities collection: business entities of any type, for entity exports (seed 003)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import polars as pl
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import ENTITIES, Document
from exporter.adapters.mongo.versioned import VersionedRepository, stored_key
from exporter.contracts.ingest import Entity

DOCUMENT = "document"


class EntityRepository(VersionedRepository[Entity]):
    model = Entity

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db, ENTITIES)

    @staticmethod
    def key(tenant: str, item: Entity) -> str:
        return stored_key(tenant, item.entity_type, item.id)

    async def get(self, tenant: str, entity_type: str, entity_id: str) -> Entity | None:
        return await self._one(stored_key(tenant, entity_type, entity_id))

    async def of_type(self, tenant: str, entity_type: str) -> AsyncIterator[Entity]:
        """Every entity of one type, by id: what an entity export writes."""
        cursor = self._collection.find({"tenant": tenant, "entityType": entity_type}).sort("id")
        async for document in cursor:
            yield self._read(document)

    async def documents(self, tenant: str, entity_type: str, batch_size: int) -> AsyncIterator[pl.DataFrame]:
        """Every entity document of one type, by id, as JSON text in frames of ``batch_size``: what
        an entity export writes, one per line, unchanged."""
        cursor = (
            self._collection.find({"tenant": tenant, "entityType": entity_type}, {"document": 1, "_id": 0})
            .sort("id")
            .batch_size(batch_size)
        )
        lines: list[str] = []
        async for stored in cursor:
            lines.append(json.dumps(stored["document"], ensure_ascii=False, separators=(",", ":")))
            if len(lines) >= batch_size:
                yield pl.DataFrame({DOCUMENT: lines})
                lines = []
        if lines:
            yield pl.DataFrame({DOCUMENT: lines})
