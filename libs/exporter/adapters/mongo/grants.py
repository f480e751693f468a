"""The grants collection: access to other users' export requests, kept in step with the IAM
service's ``iam.grant.changed`` events by ``ingestor.grant_events``; the request-api reads it."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from exporter.adapters.mongo.client import GRANTS, Document
from exporter.contracts.events import GrantChangedData
from exporter.domain.access import Action, Grant


def _to_grant(document: Document) -> Grant:
    return Grant(
        tenant=document["tenant"],
        subjects=frozenset(document["subjects"]),
        actions=frozenset(Action(action) for action in document["actions"]),
        resource=document.get("resource", "*"),
    )


class GrantRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[GRANTS]

    async def for_tenant(self, tenant: str) -> list[Grant]:
        live = {"tenant": tenant, "revoked": {"$ne": True}}
        return [_to_grant(document) async for document in self._collection.find(live)]

    async def apply(self, change: GrantChangedData) -> bool:
        """Stores ``change`` unless a version as new or newer is stored; returns whether it did.

        A revoked grant stays as a tombstone, so a late older event cannot bring it back."""
        document = {
            "tenant": change.tenant,
            "subjects": sorted(change.subjects),
            "actions": sorted(change.actions),
            "resource": change.resource,
            "revoked": change.revoked,
            "version": change.version,
        }
        older = {"_id": change.grant_id, "$or": [{"version": {"$lt": change.version}}, {"version": None}]}
        try:
            # An upsert that finds no older version inserts, and meets the newer one's _id.
            await self._collection.update_one(older, {"$set": document}, upsert=True)
        except DuplicateKeyError:
            return False
        return True
