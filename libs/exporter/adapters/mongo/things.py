"""The things collection: thing metadata for file-name masks and customer/location filters."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import THINGS, Document
from exporter.adapters.mongo.versioned import VersionedRepository, stored_key
from exporter.contracts.ingest import Thing


class ThingRepository(VersionedRepository[Thing]):
    model = Thing

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db, THINGS)

    @staticmethod
    def key(tenant: str, item: Thing) -> str:
        return stored_key(tenant, item.id)

    async def get(self, tenant: str, thing_id: str) -> Thing | None:
        return await self._one(stored_key(tenant, thing_id))

    async def find(
        self, tenant: str, customer_id: str | None = None, location_id: str | None = None
    ) -> list[Thing]:
        """The tenant's things by id, narrowed to a customer and/or a location when given."""
        query: Document = {"tenant": tenant}
        if customer_id is not None:
            query["customerId"] = customer_id
        if location_id is not None:
            query["locationId"] = location_id
        return [self._read(document) async for document in self._collection.find(query).sort("id")]
