"""Measurement messages straight into columns: the ingestor's per-record path.

``decode_measurements`` (pydantic) builds a model per record and a ``Measurement`` per reading,
which holds the ingestor to about 80k records/s. Here ``msgspec`` validates a whole pack against
typed structs (strict, unknown fields refused, the same length limits) and the pack's base
values are applied a column at a time. Whatever this path does not accept as is (an envelope,
any error at all) goes through ``decode_measurements``, so what is stored and the reason a
message is dead-lettered stay exactly what that path says.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import UnionType
from typing import Annotated, Any, Union, cast, get_args, get_origin

import msgspec
import numpy as np
import numpy.typing as npt
import polars as pl
from annotated_types import MaxLen, MinLen
from pydantic import BaseModel

from exporter.adapters.mongo.ingested import READINGS, readings_frame
from exporter.adapters.mongo.segments import POSITION_BITS
from exporter.contracts.ingest import (
    MAX_NAME_LENGTH,
    MAX_RECORDS_PER_PACK,
    MILLISECONDS_FROM,
    MeasurementPack,
    MeasurementRecord,
)
from ingestor.batches import SourceRecord
from ingestor.decoding import Limits, decode_measurements, tenant_header


def mirror(
    model: type[BaseModel],
    only: Collection[str] | None = None,
    structs: Mapping[type[BaseModel], type[msgspec.Struct]] | None = None,
) -> type[msgspec.Struct]:
    """A msgspec struct that takes what ``model`` takes by its fields' types and lengths (wire
    names, unknown fields refused), of its fields ``only`` those when given, with ``structs``
    for the models it holds; the model's own validators are not carried over."""
    chosen = {name: info for name, info in model.model_fields.items() if only is None or name in only}
    fields = [
        (
            name,
            _mirrored(info.annotation, info.metadata, structs or {}),
            msgspec.NODEFAULT if info.is_required() else info.default,
        )
        for name, info in chosen.items()
    ]
    struct: type[msgspec.Struct] = msgspec.defstruct(
        model.__name__,
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        rename={name: info.alias or name for name, info in chosen.items()},
    )
    return struct


def _mirrored(
    annotation: Any, metadata: Sequence[Any], structs: Mapping[type[BaseModel], type[msgspec.Struct]]
) -> Any:
    if get_origin(annotation) is Annotated:
        inner, *extra = get_args(annotation)
        more = (m for e in extra for m in getattr(e, "metadata", [e]))
        return _mirrored(inner, [*metadata, *more], structs)
    if get_origin(annotation) in (Union, UnionType):
        # A union built from a tuple of members: only ``Union[...]`` takes one (``|`` takes two).
        return Union[tuple(_mirrored(member, (), structs) for member in get_args(annotation))]  # noqa: UP007
    if get_origin(annotation) is list:
        [item] = get_args(annotation)
        annotation = list[_mirrored(item, (), structs)]  # type: ignore[misc]
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        annotation = structs.get(annotation) or mirror(annotation)
    unknown = [c for c in metadata if not isinstance(c, MinLen | MaxLen)]
    if unknown:
        raise TypeError(f"no mirror for the constraints {unknown!r}")
    if not metadata:
        return annotation
    shortest = next((c.min_length for c in metadata if isinstance(c, MinLen)), None)
    longest = next((c.max_length for c in metadata if isinstance(c, MaxLen)), None)
    return Annotated[annotation, msgspec.Meta(min_length=shortest, max_length=longest)]


# Decoded mirrors have their models' attributes, so the code below is typed with the models.
_RECORD_STRUCT = mirror(MeasurementRecord)
_PACK_STRUCT = mirror(MeasurementPack)
# The usual pack: records of a name, a time and a number, all else from the pack. When these
# take a message, no record has a field of its own to look for.
_PLAIN_RECORD = mirror(MeasurementRecord, only=("name", "time", "value"))
_PLAIN_PACK = mirror(MeasurementPack, structs={MeasurementRecord: _PLAIN_RECORD})
_DECODERS = {
    (plain, shape): msgspec.json.Decoder(struct)
    for plain, shape, struct in (
        (True, "pack", _PLAIN_PACK),
        (False, "pack", _PACK_STRUCT),
        (True, "records", list[_PLAIN_RECORD]),  # type: ignore[valid-type]
        (False, "records", list[_RECORD_STRUCT]),  # type: ignore[valid-type]
        (True, "record", _PLAIN_RECORD),
        (False, "record", _RECORD_STRUCT),
    )
}
# The text columns; a name is its pack's base name (``base``) and the record's own (``name``),
# joined when the flush is made a frame.
_FIELDS = ("tenant", "channel", "subtopic", "publisher", "base", "name", "unit", "protocol", "kind")


class _Slow(Exception):
    """The fast path does not take this message as is."""


# A text column of a flush: per message, one text for all its readings or one per reading.
Chunks = list[str | list[str]]


@dataclass
class Readings:
    """A flush in the making: decoded readings as growing columns (``READINGS`` in the end)."""

    text: dict[str, Chunks] = field(default_factory=lambda: {name: [] for name in _FIELDS})
    counts: list[int] = field(default_factory=list)  # readings per message
    numbers: list[float | None] = field(default_factory=list)
    texts: list[str | None] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)  # per message
    positions: list[npt.NDArray[np.int64]] = field(default_factory=list)
    times: list[npt.NDArray[np.int64]] = field(default_factory=list)
    others: list[pl.DataFrame] = field(default_factory=list)  # what the slow path decoded
    count: int = 0

    def frame(self) -> pl.DataFrame:
        counts = np.asarray(self.counts, dtype=np.int64)
        text = {name: _text_column(chunks, counts) for name, chunks in self.text.items()}
        text["name"] = text.pop("base") + text["name"]
        columns: dict[str, Any] = {
            "partition": np.repeat(np.asarray(self.partitions, dtype=np.int64), counts),
            "position": np.concatenate(self.positions) if self.positions else [],
            **text,
            "time": np.concatenate(self.times) if self.times else [],
            "number": self.numbers,
            "text": self.texts,
        }
        return pl.concat([pl.DataFrame(columns, schema=READINGS), *self.others])

    def add(self, record: SourceRecord, limits: Limits, now: datetime) -> int:
        """Decodes one message's readings into the columns; raises ``Rejected`` with the reason
        the message cannot be stored. Returns how many readings it held."""
        try:
            return self._add_fast(record, limits, now)
        except (_Slow, msgspec.MsgspecError):
            pass
        measurements = decode_measurements(record.value, record.headers, limits, now)
        positions = [(record.offset << POSITION_BITS) | index for index in range(len(measurements))]
        self.others.append(readings_frame(measurements, positions, record.partition))
        self.count += len(measurements)
        return len(measurements)

    def _add_fast(self, record: SourceRecord, limits: Limits, now: datetime) -> int:
        value = record.value
        if not value or len(value) > limits.max_message_bytes:
            raise _Slow
        tenant = tenant_header(record.headers)
        if tenant is None:
            raise _Slow
        pack, plain = _pack_of(value)
        records = pack.records
        count = len(records)
        latest_ms = int((now + limits.max_future_skew).timestamp() * 1000)
        times = _times_ms(pack, latest_ms)
        columns: dict[str, str | list[str]] = {
            "tenant": tenant,
            "base": pack.base_name,
            "name": _names(pack),
            "channel": _column(plain, value, records, "channel", pack.channel),
            "publisher": _column(plain, value, records, "publisher", pack.publisher),
            "subtopic": _column(plain, value, records, "subtopic", pack.subtopic, ""),
            "protocol": _column(plain, value, records, "protocol", pack.protocol, ""),
            "unit": _column(plain, value, records, "unit", None, pack.base_unit),
        }
        columns["kind"], numbers, texts = _values(plain, value, records)
        for name, column in columns.items():
            self.text[name].append(column)
        self.numbers += numbers
        self.texts += texts
        self.times.append(times)
        self.counts.append(count)
        self.partitions.append(record.partition)
        self.positions.append((record.offset << POSITION_BITS) | np.arange(count, dtype=np.int64))
        self.count += count
        return count


def _text_column(chunks: Chunks, counts: npt.NDArray[np.int64]) -> pl.Series:
    if all(isinstance(chunk, str) for chunk in chunks):
        return pl.Series(chunks, dtype=pl.String).gather(np.repeat(np.arange(len(chunks)), counts))
    flat: list[str] = []
    for chunk, count in zip(chunks, counts.tolist(), strict=True):
        flat += [chunk] * count if isinstance(chunk, str) else chunk
    return pl.Series(flat, dtype=pl.String)


def _pack_of(value: bytes) -> tuple[MeasurementPack, bool]:
    """The message as a pack (a pack, a JSON array of records or a single record), and whether
    its records are plain (a name, a time and a number each)."""
    shapes = ("records",) if value.lstrip()[:1] == b"[" else ("pack", "record")
    for shape in shapes:
        for plain in (True, False):
            try:
                decoded: Any = _DECODERS[plain, shape].decode(value)
            except msgspec.ValidationError:
                continue
            if shape == "records":
                if not 0 < len(decoded) <= MAX_RECORDS_PER_PACK:
                    raise _Slow
                decoded = _PACK_STRUCT(records=decoded)
            elif shape == "record":
                decoded = _PACK_STRUCT(records=[decoded])
            return cast("MeasurementPack", decoded), plain
    raise _Slow


def _times_ms(pack: MeasurementPack, latest_ms: int) -> npt.NDArray[np.int64]:
    """``resolve``'s times: base time added, seconds or milliseconds by magnitude, none too late."""
    times = [record.time for record in pack.records]
    if None in times:
        if pack.base_time is None:
            raise _Slow
        times = [0.0 if time is None else time for time in times]
    resolved = np.asarray(times, dtype=np.float64)
    if pack.base_time is not None:
        resolved += pack.base_time
    earliest, latest = resolved.min(), resolved.max()
    if not 0 <= earliest <= latest < math.inf:
        raise _Slow
    if latest < MILLISECONDS_FROM:  # all in seconds, the usual
        resolved *= 1000
    elif earliest < MILLISECONDS_FROM:
        resolved = np.where(resolved >= MILLISECONDS_FROM, resolved, resolved * 1000)
    milliseconds = np.rint(resolved).astype(np.int64)
    if milliseconds.max() > latest_ms:
        raise _Slow
    return milliseconds


def _names(pack: MeasurementPack) -> list[str]:
    """The records' own names (to follow the base name), checked as ``resolve`` checks them."""
    names: list[Any] = [record.name for record in pack.records]
    if None in names:
        names = ["" if name is None else name for name in names]
    base = pack.base_name
    if (not base and "" in names) or (base and len(base) + max(map(len, names)) > MAX_NAME_LENGTH):
        raise _Slow
    return names


def _sent_in_records(value: bytes, key: str, pack_level: bool) -> bool:
    """Whether any record of the pack in ``value`` may carry the field ``key``: the bytes name it
    more often than the pack itself does (a key cannot hide in a string: its quotes would be
    escaped; escaped characters, which could spell one, are taken by the slow path)."""
    if b"\\u" in value:
        raise _Slow
    return value.count(f'"{key}"'.encode()) > pack_level


def _column(
    plain: bool,
    value: bytes,
    records: list[MeasurementRecord],
    name: str,
    pack: str | None,
    default: str | None = None,
) -> str | list[str]:
    """A field of the records: the ``pack``'s (or else ``default``) where a record leaves it out,
    as one text when no record has its own (none has, in ``plain`` records)."""
    fallback = pack if pack is not None else default
    if plain or not _sent_in_records(value, name, pack is not None):
        if fallback is None:
            raise _Slow
        return fallback
    filled = [fallback if item is None else item for item in (getattr(record, name) for record in records)]
    if None in filled:
        raise _Slow
    return filled  # type: ignore[return-value]


def _values(
    plain: bool, value: bytes, records: list[MeasurementRecord]
) -> tuple[str | list[str], list[float | None], list[str | None]]:
    """Each record's one value: its kind, then the number (a truth value as 0 or 1) or the text."""
    numbers: list[Any] = [record.value for record in records]
    if plain:
        if None in numbers:
            raise _Slow  # a plain record without its number has no value at all
        return "value", numbers, [None] * len(records)
    others = ("stringValue", "boolValue", "dataValue", "sum")
    if None not in numbers and not any(_sent_in_records(value, key, False) for key in others):
        return "value", numbers, [None] * len(records)
    kinds: list[str] = []
    texts: list[str | None] = []
    for index, record in enumerate(records):
        present = [
            (kind, item)
            for kind, item in (
                ("value", record.value),
                ("stringValue", record.string_value),
                ("boolValue", record.bool_value),
                ("dataValue", record.data_value),
                ("sum", record.sum),
            )
            if item is not None
        ]
        if len(present) != 1:
            raise _Slow
        [(kind, item)] = present
        kinds.append(kind)
        if isinstance(item, str):
            numbers[index] = None
            texts.append(item)
        else:
            numbers[index] = float(item)
            texts.append(None)
    return kinds, numbers, texts
