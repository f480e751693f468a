"""The export request: what a client asks for (seeds 000 and 002), validated once, here.

Every rule names the field it concerns, so the API can answer 400 with a precise message.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from exporter.contracts.base import UtcDatetime, WireModel
from exporter.contracts.filename_masks import (
    filename_mask,
)
from exporter.contracts.ingest import EntityTypeName
from exporter.contracts.notification import Notification
from exporter.contracts.thing_filters import MetricName, ThingFilters
from exporter.contracts.time_bounds import (
    DOWNSAMPLE_RE,
    LATEST_EPOCH_MS,
    BoundedInstant,
    known_timezones,
    parse_downsample,
    parse_iso_duration,
)


class ExportType(StrEnum):
    RECURRING = "recurring"
    ONE_TIME = "oneTime"


ColumnId = Literal["publisher", "channel", "subtopic", "name", "unit", "time", "value", "created"]
Extension = Literal["csv", "xls", "xlsx", "pdf", "json", "jsonl"]
DownsampleFunction = Literal["avg", "min", "max", "sum", "count", "first", "last"]
CatchUp = Literal["latest", "all"]
TimestampFormat = Literal["ISO_8601", "EPOCH_MILLIS"]
Compression = Literal["gzip", "zstd"]

# urn:<namespace…>:<publisher>:<metric>, the last two non-empty.
_URN_RE = re.compile(r"^urn:(?:[^:]*:)*[^:]+:[^:]+$")


class Column(WireModel):
    id: ColumnId
    label: Annotated[str, Field(min_length=1, max_length=200)]

    @field_validator("label")
    @classmethod
    def _label_not_blank(cls, label: str) -> str:
        if not label.strip():
            raise ValueError("must not be blank")
        return label


DEFAULT_COLUMNS: tuple[Column, ...] = tuple(
    Column(id=column_id, label=column_id) for column_id in ("time", "publisher", "name", "value", "unit")
)


def _name_or_empty_object(schema: dict[str, Any]) -> None:
    """The IANA names, and seed 000's ``{}`` (like an empty name or null: UTC). Listed whole, so
    the schema says exactly what is accepted and generated clients and fuzzers can use it."""
    schema.pop("type", None)
    schema["anyOf"] = [
        {"type": "string", "enum": ["", *sorted(known_timezones())]},
        {"type": "object", "maxProperties": 0},
        {"type": "null"},
    ]


class Format(WireModel):
    extension: Extension
    columns: Annotated[list[Column], Field(min_length=1, max_length=8)] = Field(
        default_factory=lambda: list(DEFAULT_COLUMNS)
    )
    timezone: Annotated[str, Field(json_schema_extra=_name_or_empty_object)] = "UTC"
    timestamp_format: TimestampFormat = "ISO_8601"
    # Seed 001: `Weight [kg]`, the unit appended to the value column's label.
    include_unit: bool = False
    compression: Compression | None = None
    # Seed 001's `thingFileName`: the name of every item's file that has no `filename` of its own.
    filename_mask: str | None = None
    # Seed 001's `hashThingFileName`: names (without extension) anonymised as their MD5.
    hash_filenames: bool = False
    # Seed 001's archive: the files zipped even when there is only one (or none).
    archive: bool = False

    @field_validator("filename_mask")
    @classmethod
    def _filename_mask(cls, value: str | None) -> str | None:
        return None if value is None else filename_mask(value)

    @field_validator("timezone", mode="before")
    @classmethod
    def _timezone_name(cls, value: Any) -> Any:
        # Seed 000 sends `{}` for "no timezone": that means UTC.
        if value is None or value == {} or value == "":
            return "UTC"
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        # Looked up in the list, never opened as given: a name is a path into the tz database.
        if value not in known_timezones():
            raise ValueError(f"'{value[:80]}' is not an IANA timezone name such as Europe/Rome")
        return value

    @field_validator("columns")
    @classmethod
    def _unique_columns(cls, columns: list[Column]) -> list[Column]:
        ids = [column.id for column in columns]
        if len(set(ids)) != len(ids):
            raise ValueError("column ids must be unique")
        labels = [column.label for column in columns]
        if len(set(labels)) != len(labels):
            raise ValueError("column labels must be unique")
        return columns


class Target(WireModel):
    """A metric of a device: ``urn:cpt:smartdevice:nid:<publisher>:<metric name>``."""

    value: Annotated[str, Field(min_length=1, max_length=500, json_schema_extra={"pattern": _URN_RE.pattern})]
    label: Annotated[str, Field(max_length=200)] | None = None

    @property
    def publisher(self) -> str:
        return self._parts()[0]

    @property
    def metric(self) -> str:
        return self._parts()[1]

    def _parts(self) -> tuple[str, str]:
        parts = self.value.split(":")
        return parts[-2], parts[-1]

    @field_validator("value")
    @classmethod
    def _urn_shape(cls, value: str) -> str:
        if not _URN_RE.match(value):
            raise ValueError("must be a URN ending in ':<publisher>:<metric>'")
        return value


class Decimation(WireModel):
    ds: Annotated[str, Field(json_schema_extra={"pattern": DOWNSAMPLE_RE.pattern})]
    dsf: DownsampleFunction = "avg"

    @field_validator("ds")
    @classmethod
    def _bucket(cls, value: str) -> str:
        parse_downsample(value)
        return value


class TimeWindow(WireModel):
    """Which measurements: ``from``/``to`` in epoch milliseconds (0: open), or the ``period`` that
    ends at the run's scheduled time; a recurring item with neither continues where the previous
    run stopped. ``decimation`` buckets them."""

    # Strict: epoch milliseconds are whole numbers, never 1.5 or true.
    from_: Annotated[int, Field(alias="from", ge=0, le=LATEST_EPOCH_MS, strict=True)] = 0
    to: Annotated[int, Field(ge=0, le=LATEST_EPOCH_MS, strict=True)] = 0
    period: str | None = None
    decimation: Decimation | None = None

    @field_validator("period")
    @classmethod
    def _period_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_iso_duration(value)
        return value

    @model_validator(mode="after")
    def _window_order(self) -> TimeWindow:
        if self.from_ and self.to and self.from_ >= self.to:
            raise ValueError("'from' must be before 'to'")
        return self


class ItemParams(TimeWindow):
    """One metric of one device (seed 000): a file of that series."""

    target: Target
    channel_id: Annotated[str, Field(max_length=200)] | None = None
    subtopic: Annotated[str, Field(max_length=200)] | None = None


class ThingSelection(TimeWindow, ThingFilters):
    """Things by customer, location, id, product model (and part) or thing definition, each
    optional (seed 001's data-export): one file per matching thing, with a time column and one
    column per metric (``Weight [kg]`` with ``includeUnit``). ``metrics`` are metric names; none
    means every metric the thing declares. The file name mask defaults to seed 001's
    ``${thing.serialNumber}_${thingDefinition.name}``."""

    metrics: Annotated[list[MetricName], Field(max_length=100)] = Field(default_factory=list)

    @field_validator("metrics")
    @classmethod
    def _unique_metrics(cls, metrics: list[str]) -> list[str]:
        if len(set(metrics)) != len(metrics):
            raise ValueError("metric names must be unique")
        return metrics

    @property
    def target_key(self) -> str:
        """What seed 001's "only one bulk export can be scheduled at a time" is about: the
        tenant's things, whichever of them a selection picks."""
        return "things"


class EntitySelection(WireModel):
    """Every entity of one type of the tenant (seed 003), as JSON Lines: one stored document per
    line, split into numbered parts by the renderer's split settings. Needs ``format.extension``
    ``jsonl``; ``columns`` and ``timezone`` do not apply."""

    entity_type: EntityTypeName


ItemKind = Literal["params", "things", "entities"]
ITEM_KINDS: tuple[ItemKind, ...] = ("params", "things", "entities")


def _exactly_one_kind_schema(schema: dict[str, Any]) -> None:
    """Says in the schema what ``Item._exactly_one_kind`` checks: one kind an object, the others
    absent or null."""
    schema["oneOf"] = [
        {
            "required": [kind],
            "properties": {
                other: {"type": "object"} if other == kind else {"type": "null"} for other in ITEM_KINDS
            },
        }
        for kind in ITEM_KINDS
    ]


class Item(WireModel):
    """One thing to export, of exactly one kind: ``params`` (a device's metric, seed 000),
    ``things`` (per-thing files, seed 001) or ``entities`` (an entity type, seed 003)."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_kind_schema)

    params: ItemParams | None = None
    things: ThingSelection | None = None
    entities: EntitySelection | None = None
    # A name without extension; it may hold placeholders like the format's `filenameMask`.
    filename: str | None = None

    @field_validator("filename")
    @classmethod
    def _safe_filename(cls, value: str | None) -> str | None:
        return None if value is None else filename_mask(value)

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Item:
        present = [kind for kind in ITEM_KINDS if getattr(self, kind) is not None]
        if len(present) != 1:
            found = ", ".join(f"'{kind}'" for kind in present) or "none"
            raise ValueError(
                "an item needs exactly one of 'params' (a device's metric), 'things' (per-thing files) "
                f"or 'entities' (an entity type); found {found}"
            )
        return self

    @property
    def kind(self) -> ItemKind:
        return next(kind for kind in ITEM_KINDS if getattr(self, kind) is not None)

    @property
    def window(self) -> TimeWindow | None:
        """The item's measurement window; None for entities, which have no time."""
        return self.params or self.things

    @property
    def target_key(self) -> str:
        """What one export in flight at a time is counted by: a series, a selection of things, or
        an entity type (seed 003: one pending or processing export per entity type)."""
        if self.params is not None:
            return self.params.target.value
        if self.things is not None:
            return self.things.target_key
        assert self.entities is not None  # exactly one kind, validated
        return f"entities:{self.entities.entity_type}"


EXAMPLE_REQUEST: dict[str, Any] = {
    "name": "Daily temperatures",
    "type": "recurring",
    "periodicity": "P1D",
    "format": {"extension": "csv", "timezone": "Europe/Rome"},
    "items": [
        {
            "params": {
                "target": {"value": "urn:cpt:smartdevice:nid:D0CF5EFFFE26FDAB1:temperature"},
                "period": "P1D",
                "decimation": {"ds": "15m", "dsf": "avg"},
            }
        }
    ],
    "notification": {"messages": [{"medium": "email", "recipients": ["ops@example.com"]}]},
}


class ExportRequestSpec(WireModel):
    """What a client sends to create or replace an export request."""

    # Shown in the API's docs, and the first body the API fuzzer sends.
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_REQUEST]})

    name: Annotated[str, Field(max_length=200)] | None = None
    type: ExportType
    format: Format
    items: Annotated[list[Item], Field(min_length=1, max_length=100)]
    periodicity: str | None = None
    # A recurring request's first run, the grid its runs keep (default: one period after creation).
    start_at: BoundedInstant | None = None
    # After scheduler downtime: one run for the latest missed time, or one per missed period.
    catch_up: CatchUp = "latest"
    notification: Notification = Field(default_factory=Notification)
    # A transfer location of the tenant (``/transfer-locations``): each run's files are pushed there.
    transfer_location_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,100}$")] | None = None

    @field_validator("periodicity")
    @classmethod
    def _periodicity_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_iso_duration(value)
        return value

    @model_validator(mode="after")
    def _recurring_needs_periodicity(self) -> ExportRequestSpec:
        if self.type is ExportType.RECURRING and self.periodicity is None:
            raise ValueError("'periodicity' is required when type is 'recurring'")
        return self

    @model_validator(mode="after")
    def _entities_are_json_lines(self) -> ExportRequestSpec:
        for index, item in enumerate(self.items):
            if item.entities is not None and self.format.extension != "jsonl":
                raise ValueError(
                    f"items.{index}.entities: entity exports are JSON Lines; "
                    f"format.extension must be 'jsonl', not '{self.format.extension}'"
                )
        return self

    @property
    def targets(self) -> list[str]:
        return sorted({item.target_key for item in self.items})

    def stored(
        self,
        *,
        request_id: str,
        tenant: str,
        owner: str,
        version: int,
        created_at: datetime,
        updated_at: datetime,
    ) -> ExportRequest:
        """This spec as a stored request. The spec was validated when it arrived, so the request
        is assembled without validating every field again, which cost as much as the parse."""
        return ExportRequest.model_construct(
            **{name: getattr(self, name) for name in ExportRequestSpec.model_fields},
            id=request_id,
            tenant=tenant,
            owner=owner,
            version=version,
            created_at=created_at,
            updated_at=updated_at,
        )


class ExportRequest(ExportRequestSpec):
    """A stored export request: the client's spec plus identity, ownership and version."""

    id: str
    tenant: str
    owner: str
    version: int = 1
    created_at: UtcDatetime
    updated_at: UtcDatetime
    deleted_at: UtcDatetime | None = None

    def spec(self) -> ExportRequestSpec:
        return ExportRequestSpec.model_validate(self.model_dump(include=set(ExportRequestSpec.model_fields)))
