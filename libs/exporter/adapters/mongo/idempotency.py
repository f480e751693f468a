"""Idempotency keys: the first answer to a keyed POST, kept a day, returned to its repeats."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import IDEMPOTENCY, Document
from exporter.contracts.base import utcnow


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    body_hash: str
    status_code: int
    body: Any


def body_hash(body: Any) -> str:
    """Same JSON, same hash, whatever the key order or spacing."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def scope(tenant: str, user: str, key: str) -> str:
    """Keys belong to a caller: two users may pick the same key without seeing each other's answer."""
    return f"{tenant}\x1f{user}\x1f{key}"


def idempotency_document(key_scope: str, answer: StoredAnswer) -> Document:
    """Written with the request it answers for; a second writer of the key hits DuplicateKeyError."""
    return {
        "_id": key_scope,
        "bodyHash": answer.body_hash,
        "statusCode": answer.status_code,
        "body": answer.body,
        "createdAt": utcnow(),
    }


class IdempotencyRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[IDEMPOTENCY]

    async def add(self, document: Document, session: AsyncClientSession) -> None:
        """An ``idempotency_document``, inside the caller's transaction."""
        await self._collection.insert_one(document, session=session)

    async def get(self, key_scope: str) -> StoredAnswer | None:
        document = await self._collection.find_one({"_id": key_scope})
        if document is None:
            return None
        return StoredAnswer(document["bodyHash"], document["statusCode"], document["body"])
