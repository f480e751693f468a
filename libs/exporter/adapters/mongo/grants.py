"""The grants collection: access to other users' export requests, kept in step by the IAM side."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import GRANTS, Document
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
        return [_to_grant(document) async for document in self._collection.find({"tenant": tenant})]

    async def put(self, grant_id: str, grant: Grant) -> None:
        await self._collection.replace_one(
            {"_id": grant_id},
            {
                "tenant": grant.tenant,
                "subjects": sorted(grant.subjects),
                "actions": sorted(a.value for a in grant.actions),
                "resource": grant.resource,
            },
            upsert=True,
        )
