"""The base of every wire model: camelCase on the wire, snake_case in Python, unknown fields refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict that goes on the wire or into MongoDB."""
        return self.model_dump(mode="json", by_alias=True)

    def to_document(self) -> dict[str, Any]:
        """The dict MongoDB stores: camelCase keys, real datetimes."""
        return self.model_dump(mode="python", by_alias=True)


def _as_utc(value: datetime) -> datetime:
    """MongoDB hands back naive UTC datetimes; make every instant explicit."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def utcnow() -> datetime:
    """Now, in UTC, truncated to milliseconds as MongoDB stores it."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
