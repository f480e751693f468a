"""Settings for a test that needs a database of its own on the session's servers."""

from __future__ import annotations

import uuid
from typing import Any

from exporter.settings import Settings


def own_database(settings: Settings, prefix: str, **sections: dict[str, Any]) -> Settings:
    """``settings`` with a fresh database (``<prefix><random>``), so tests never see each other's
    documents, and the given fields of other sections changed (``outbox={"lease_seconds": 1.0}``)."""
    updates = {name: getattr(settings, name).model_copy(update=fields) for name, fields in sections.items()}
    updates["mongo"] = settings.mongo.model_copy(update={"database": f"{prefix}{uuid.uuid4().hex[:10]}"})
    return settings.model_copy(update=updates)
