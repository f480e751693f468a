"""The things collection: thing metadata for file-name masks and the export filters of seed 001."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import THINGS, Document
from exporter.adapters.mongo.versioned import VersionedRepository, stored_key
from exporter.contracts.ingest import Thing
from exporter.contracts.thing_filters import ThingFilters


class ThingRepository(VersionedRepository[Thing]):
    model = Thing

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db, THINGS)

    @staticmethod
    def key(tenant: str, item: Thing) -> str:
        return stored_key(tenant, item.id)

    async def get(self, tenant: str, thing_id: str) -> Thing | None:
        return await self._one(stored_key(tenant, thing_id))

    async def find(self, tenant: str, filters: ThingFilters) -> list[Thing]:
        """The tenant's things by id, narrowed by each filter given (seed 001's data-export)."""
        query: Document = {"tenant": tenant}
        if filters.thing_id is not None:
            query["_id"] = stored_key(tenant, filters.thing_id)
        fields = {
            "customerId": filters.customer_id,
            "locationId": filters.location_id,
            "productModelId": filters.product_model_id,
            "productModelPartId": filters.product_model_part_id,
            "thingDefinition.id": filters.thing_definition_id,
        }
        query |= {field: value for field, value in fields.items() if value is not None}
        return [self._read(document) async for document in self._collection.find(query).sort("id")]
