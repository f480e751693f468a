"""The ``transferLocations`` collection: a tenant's destinations, their secrets sealed.

A document holds the destination as clients may see it (secrets as ``***``) and, apart, the
sealed secrets; nothing here opens them (``exporter.adapters.transfer.sealing`` does).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import Document
from exporter.contracts.base import utcnow

TRANSFER_LOCATIONS = "transferLocations"


@dataclass(frozen=True)
class StoredLocation:
    id: str
    tenant: str
    name: str
    destination: dict[str, Any]
    sealed: str
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, document: Document) -> StoredLocation:
        return cls(
            id=document["_id"],
            tenant=document["tenant"],
            name=document["name"],
            destination=document["destination"],
            sealed=document["sealed"],
            created_by=document["createdBy"],
            created_at=document["createdAt"],
            updated_at=document["updatedAt"],
        )

    def to_document(self) -> Document:
        return {
            "_id": self.id,
            "tenant": self.tenant,
            "name": self.name,
            "destination": self.destination,
            "sealed": self.sealed,
            "createdBy": self.created_by,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


def new_location_id() -> str:
    return f"tl-{uuid.uuid4().hex}"


class TransferLocationRepository:
    """Every read and write names the tenant: another tenant's location does not exist."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[TRANSFER_LOCATIONS]

    async def add(self, location: StoredLocation) -> None:
        await self._collection.insert_one(location.to_document())

    async def get(self, tenant: str, location_id: str) -> StoredLocation | None:
        document = await self._collection.find_one({"_id": location_id, "tenant": tenant})
        return None if document is None else StoredLocation.of(document)

    async def list(self, tenant: str, limit: int) -> list[StoredLocation]:
        cursor = self._collection.find({"tenant": tenant}).sort("createdAt", 1).limit(limit)
        return [StoredLocation.of(document) async for document in cursor]

    async def count(self, tenant: str) -> int:
        return await self._collection.count_documents({"tenant": tenant})

    async def replace(self, location: StoredLocation) -> bool:
        kept = {"_id", "createdBy", "createdAt"}
        fields = {k: v for k, v in location.to_document().items() if k not in kept}
        result = await self._collection.update_one(
            {"_id": location.id, "tenant": location.tenant}, {"$set": fields | {"updatedAt": utcnow()}}
        )
        return result.matched_count == 1

    async def delete(self, tenant: str, location_id: str) -> bool:
        result = await self._collection.delete_one({"_id": location_id, "tenant": tenant})
        return result.deleted_count == 1
