"""Unordered bulk writes that report each refused document instead of failing the whole batch.

A document the store refuses for what it is (a duplicate key, a field name it cannot hold) will
be refused again on every retry, so the caller needs to know which one it was; anything else
(the connection, the write concern) is worth retrying and is raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from exporter.adapters.mongo.client import Document

DUPLICATE_KEY = 11000


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    inserted: int = 0
    upserted: int = 0
    modified: int = 0
    # Indexes of operations that hit an existing ``_id`` (or another unique key).
    duplicates: list[int] = field(default_factory=list)
    # Index of each operation the store refused for another reason → the store's words.
    failures: dict[int, str] = field(default_factory=dict)


async def bulk_write(collection: AsyncCollection[Document], operations: Sequence[Any]) -> BulkOutcome:
    """One unordered ``bulk_write``: every operation is tried whatever happens to the others."""
    if not operations:
        return BulkOutcome()
    details: Mapping[str, Any]
    try:
        details = (await collection.bulk_write(list(operations), ordered=False)).bulk_api_result
    except BulkWriteError as error:
        details = error.details
        if details.get("writeConcernErrors"):
            raise
    errors = details.get("writeErrors", [])
    return BulkOutcome(
        inserted=details.get("nInserted", 0),
        upserted=details.get("nUpserted", 0),
        modified=details.get("nModified", 0),
        duplicates=[error["index"] for error in errors if error["code"] == DUPLICATE_KEY],
        failures={
            error["index"]: f"the store refused it: {error.get('errmsg', '')} (code {error['code']})"
            for error in errors
            if error["code"] != DUPLICATE_KEY
        },
    )
