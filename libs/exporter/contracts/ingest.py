"""What upstream systems publish for export: SenML-like measurements, things and entities.

Strict on purpose: a JSON string where a number belongs, a bool where a number belongs, an
unknown field or a non-finite number is refused with the field's name rather than coerced, so
bad upstream data shows up in the dead-letter topic instead of in someone's export.

Time: ``time`` and ``baseTime`` are Unix times in seconds or in milliseconds, told apart by
magnitude. A resolved time (``baseTime + time``) below ``MILLISECONDS_FROM`` (1e11, which is
the year 5138 in seconds and 1973-03-03 in milliseconds) is seconds, from it on milliseconds.
Both may carry fractions; the store keeps milliseconds.
"""

from __future__ import annotations

import math
from typing import Annotated, NamedTuple

from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator
from pydantic.alias_generators import to_camel

from exporter.contracts.base import WireModel

MILLISECONDS_FROM = 1e11
MAX_RECORDS_PER_PACK = 10_000
MAX_NAME_LENGTH = 200
# The value fields of a record, wire names in Python order; exactly one is set.
VALUE_FIELDS = ("value", "string_value", "bool_value", "data_value", "sum")

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
Text = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]
Unit = Annotated[str, Field(max_length=50)]
EntityTypeName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")]
Version = Annotated[int, Field(ge=0)]


class IngestModel(WireModel):
    """Upstream input: no type coercion, no NaN or infinity."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)


class MeasurementRecord(IngestModel):
    """One SenML-like record. In a pack, any field left out comes from the pack.

    ``name`` is appended to the pack's ``baseName``, ``time`` added to its ``baseTime`` and
    ``unit`` falls back to its ``baseUnit``, as in SenML (RFC 8428).
    """

    channel: Name | None = None
    subtopic: Text | None = None
    publisher: Name | None = None
    protocol: Unit | None = None
    name: Text | None = None
    unit: Unit | None = None
    time: float | None = None
    value: float | None = None
    string_value: Annotated[str, Field(max_length=10_000)] | None = None
    bool_value: bool | None = None
    # SenML's ``vd``: opaque data, conventionally base64url; stored as given.
    data_value: Annotated[str, Field(max_length=100_000)] | None = None
    sum: float | None = None

    @model_validator(mode="after")
    def _exactly_one_value(self) -> MeasurementRecord:
        present = [name for name in VALUE_FIELDS if getattr(self, name) is not None]
        if len(present) != 1:
            aliases = ", ".join(to_camel(name) for name in VALUE_FIELDS)
            found = ", ".join(to_camel(name) for name in present) or "none"
            raise ValueError(f"exactly one of {aliases} must be set; found {found}")
        return self


class MeasurementPack(IngestModel):
    """A SenML pack: shared fields and base name, time and unit for its records."""

    channel: Name | None = None
    subtopic: Text | None = None
    publisher: Name | None = None
    protocol: Unit | None = None
    base_name: Text = ""
    base_time: float | None = None
    base_unit: Unit = ""
    records: Annotated[list[MeasurementRecord], Field(min_length=1, max_length=MAX_RECORDS_PER_PACK)]


class ThingDefinition(IngestModel):
    id: Name | None = None
    name: Name


class ThingMetric(IngestModel):
    name: Name
    unit: Unit = ""
    id: Name | None = None


class Thing(IngestModel):
    """Thing metadata (seed 001): what file-name masks and the customer, location, product model
    (and part) and thing definition filters read.

    ``id`` is the ``publisher`` of the thing's measurements. ``version`` orders updates: any
    number that grows with each change (a counter, the change time in milliseconds).
    """

    id: Name
    version: Version
    serial_number: Name | None = None
    name: Text | None = None
    thing_definition: ThingDefinition | None = None
    customer_id: Name | None = None
    location_id: Name | None = None
    product_model_id: Name | None = None
    product_model_part_id: Name | None = None
    metrics: Annotated[list[ThingMetric], Field(max_length=1_000)] = Field(default_factory=list)

    @field_validator("metrics")
    @classmethod
    def _unique_metric_names(cls, metrics: list[ThingMetric]) -> list[ThingMetric]:
        names = [metric.name for metric in metrics]
        if len(set(names)) != len(names):
            raise ValueError("metric names must be unique")
        return metrics


class Entity(IngestModel):
    """A business entity of any type (seed 003: Customer, Reservation, OrderItem, ...).

    Stored whole, keyed by (tenant, ``entityType``, ``id``); a ``version`` not above the
    stored one changes nothing.
    """

    entity_type: EntityTypeName
    id: Name
    version: Version
    document: dict[str, JsonValue]

    @field_validator("document")
    @classmethod
    def _storable(cls, document: dict[str, JsonValue]) -> dict[str, JsonValue]:
        if problem := _unstorable(document, "document"):
            raise ValueError(problem)
        return document


def _unstorable(value: JsonValue, path: str) -> str | None:
    """Why ``value`` cannot be stored as a MongoDB document as is, or None when it can."""
    if isinstance(value, list):
        return next((p for i, item in enumerate(value) if (p := _unstorable(item, f"{path}.{i}"))), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("$") or "\x00" in key:
                return f"field name {path}.{key!r} must not start with '$' or contain NUL"
            if problem := _unstorable(item, f"{path}.{key}"):
                return problem
    return None


class Measurement(NamedTuple):
    """A resolved record, ready to store: every field known, time in milliseconds."""

    tenant: str
    channel: str
    subtopic: str
    publisher: str
    protocol: str
    name: str
    unit: str
    time_ms: int
    kind: str  # which value field the record carried, by its wire name
    value: float | str | bool


class RecordError(ValueError):
    """A record of an otherwise valid pack that cannot be resolved; the message names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")


def to_milliseconds(time: float) -> int:
    """Seconds or milliseconds since the epoch, by magnitude (see the module docstring)."""
    return round(time if time >= MILLISECONDS_FROM else time * 1000)


def resolve(tenant: str, pack: MeasurementPack, latest_ms: int, path: str = "") -> list[Measurement]:
    """The pack's records with its base values applied; times past ``latest_ms`` are refused.

    A record's own field overrides the pack's (SenML's rule). Written for speed: it runs once
    per stored record.
    """
    base_time, base_name, base_unit = pack.base_time, pack.base_name, pack.base_unit
    resolved = []
    for index, record in enumerate(pack.records):
        time = record.time if base_time is None else base_time + (record.time or 0.0)
        if time is None:
            raise RecordError(f"{path}records.{index}.time", "required (here or as the pack's baseTime)")
        if not 0 <= time < math.inf:
            raise RecordError(f"{path}records.{index}.time", f"{time} is not a Unix time")
        time_ms = to_milliseconds(time)
        if time_ms > latest_ms:
            raise RecordError(
                f"{path}records.{index}.time",
                f"{time} is too far in the future (latest accepted: {latest_ms} ms since the epoch)",
            )
        name = base_name + record.name if record.name is not None else base_name
        if not 0 < len(name) <= MAX_NAME_LENGTH:
            raise RecordError(
                f"{path}records.{index}.name",
                f"baseName and name together must have 1 to {MAX_NAME_LENGTH} characters",
            )
        channel = record.channel if record.channel is not None else pack.channel
        publisher = record.publisher if record.publisher is not None else pack.publisher
        if channel is None or publisher is None:
            missing = "channel" if channel is None else "publisher"
            raise RecordError(f"{path}records.{index}.{missing}", "required (here or on the pack)")
        subtopic = record.subtopic if record.subtopic is not None else pack.subtopic
        protocol = record.protocol if record.protocol is not None else pack.protocol
        kind, value = _value(record)
        resolved.append(
            Measurement(
                tenant,
                channel,
                subtopic or "",
                publisher,
                protocol or "",
                name,
                record.unit if record.unit is not None else base_unit,
                time_ms,
                kind,
                value,
            )
        )
    return resolved


def _value(record: MeasurementRecord) -> tuple[str, float | str | bool]:
    """The one value a validated record carries, with its wire name."""
    if record.value is not None:
        return "value", record.value
    if record.string_value is not None:
        return "stringValue", record.string_value
    if record.bool_value is not None:
        return "boolValue", record.bool_value
    if record.data_value is not None:
        return "dataValue", record.data_value
    assert record.sum is not None  # the model holds exactly one value
    return "sum", record.sum
