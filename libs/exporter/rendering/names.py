"""Names and keys of export files: masks with placeholders, MD5-hashed names (seed 001), safe and unique."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from exporter.contracts.filename_masks import (
    MAX_PIECE_LENGTH,
    PlaceholderKind,
    mask_placeholders,
    safe_filename,
)
from exporter.contracts.ingest import Thing, ThingDefinition
from exporter.contracts.job import JobSpec
from exporter.contracts.request import ItemParams

# Room left in a name for `-part-001`, a `-2` that makes it unique, and `.jsonl.zst`; also the
# longest a rendered mask, or any piece of one, may be.
MAX_STEM_LENGTH = MAX_PIECE_LENGTH
# Printable, but refused by Windows or meaningful to shells and URLs.
_RESERVED = frozenset('/\\<>:"|?*')
_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")
DEFAULT_DATETIME_FORMAT = "%Y%m%dT%H%M%S"


class MaskError(ValueError):
    """A file name mask that cannot be rendered: a placeholder the context lacks, a bad format."""


def naming_context(spec: JobSpec, index: int, thing: Thing | None = None) -> dict[str, dict[str, object]]:
    """What a mask may name for item ``index`` (from 0) of a job: exactly MASK_PLACEHOLDERS.

    Times are in the request's timezone, so ``${job.scheduledAt:%Y%m%d}`` is the local date. The
    thing is the target's publisher unless the caller knows the thing. A value an item's kind
    lacks (``target`` of a thing item, ``entity`` of a series) is empty text.
    """
    request = spec.request
    item = request.items[index]
    window = next((w for w in spec.windows if w.item == index), None)
    zone = ZoneInfo(request.format.timezone)

    def local(moment: datetime | None) -> datetime | None:
        return None if moment is None else moment.astimezone(zone)

    series = _series_context(item.params)
    return {
        "export": {"id": spec.request_id, "name": request.name or "", "type": str(request.type)},
        "job": {"id": spec.job_id, "scheduledAt": local(spec.scheduled_at), "tenant": spec.tenant},
        "item": {"index": index + 1, **series["item"]},
        "target": series["target"],
        **(_thing_context(thing) if thing is not None else {root: series[root] for root in _THING_ROOTS}),
        "entity": {"type": item.entities.entity_type if item.entities else ""},
        "window": {
            "from": local(window.from_ if window else None),
            "to": local(window.to if window else None),
        },
    }


_THING_ROOTS = ("thing", "thingDefinition")


def _thing_context(thing: Thing) -> dict[str, dict[str, object]]:
    """What masks may name of a thing and of its definition."""
    definition = thing.thing_definition
    return {
        "thing": {
            "id": thing.id,
            "serialNumber": thing.serial_number or thing.id,
            "name": thing.name or "",
            "customerId": thing.customer_id or "",
            "locationId": thing.location_id or "",
            "productModelId": thing.product_model_id or "",
            "productModelPartId": thing.product_model_part_id or "",
        },
        "thingDefinition": {
            "id": (definition.id if definition else None) or "",
            "name": definition.name if definition else "",
        },
    }


def _series_context(params: ItemParams | None) -> dict[str, dict[str, object]]:
    """The roots a device's metric names: its target, its publisher as the thing."""
    if params is None:
        return {
            "item": {"channelId": "", "subtopic": ""},
            "target": dict.fromkeys(("value", "label", "publisher", "metric"), ""),
            **_thing_context(Thing.model_construct(id="", version=0)),
        }
    target = params.target
    # `urn:cpt:<thing definition>:nid:<publisher>:<metric>`, as in seed 000.
    urn = target.value.split(":")
    definition = ThingDefinition.model_construct(name=urn[2]) if len(urn) >= 6 else None
    publisher = Thing.model_construct(id=target.publisher, version=0, thing_definition=definition)
    return {
        "item": {"channelId": params.channel_id or "", "subtopic": params.subtopic or ""},
        "target": {
            "value": target.value,
            "label": target.label or target.metric,
            "publisher": target.publisher,
            "metric": target.metric,
        },
        **_thing_context(publisher),
    }


def render_mask(mask: str, context: Mapping[str, object] | object) -> str:
    """``${thing.serialNumber}_${job.scheduledAt:%Y%m%d}`` with the context's values in place, at
    most MAX_STEM_LENGTH characters, as is each value put in.

    The context is nested mappings or objects; ``scheduledAt`` also finds an attribute
    ``scheduled_at``. The mask's placeholders and formats are checked (``mask_placeholders``)
    before anything is formatted, so no format can build a long string.
    """
    try:
        placeholders = mask_placeholders(mask)
    except ValueError as error:
        raise MaskError(f"file name mask '{mask}' {error}") from error
    pieces, end = [], 0
    for placeholder, kind in placeholders:
        value = _lookup(context, placeholder["path"])
        piece = _formatted(value, kind, placeholder["spec"], placeholder[0])
        pieces += [mask[end : placeholder.start()], piece[:MAX_STEM_LENGTH]]
        end = placeholder.end()
    return "".join([*pieces, mask[end:]])[:MAX_STEM_LENGTH]


def _lookup(context: object, path: str) -> object:
    node = context
    for name in path.split("."):
        found, node = _child(node, name)
        if not found:
            raise MaskError(f"the file name's context has no '${{{path}}}'")
    return node


def _child(node: object, name: str) -> tuple[bool, object]:
    if isinstance(node, Mapping):
        return (True, node[name]) if name in node else (False, None)
    for attribute in (name, _CAMEL_HUMP.sub("_", name).lower()):
        if not attribute.startswith("_") and hasattr(node, attribute):
            return True, getattr(node, attribute)
    return False, None


def _formatted(value: object, kind: PlaceholderKind, spec: str | None, placeholder: str) -> str:
    """``spec`` is one that ``kind`` takes, so the result is short whatever the value."""
    if value is None:
        return ""
    try:
        if kind is PlaceholderKind.TIME and isinstance(value, datetime | date | time):
            return value.strftime(spec or DEFAULT_DATETIME_FORMAT)
        if kind is PlaceholderKind.NUMBER and isinstance(value, int):
            return format(value, spec or "")
        if kind is PlaceholderKind.TEXT:
            return format(str(value)[:MAX_STEM_LENGTH], spec or "")
    except ValueError as error:
        raise MaskError(f"cannot format {placeholder}: {error}") from error
    raise MaskError(f"cannot format {placeholder}: '{type(value).__name__}' is not a {kind}")


def safe_stem(text: str) -> str:
    """A name part that cannot leave its folder or upset a file system: may be empty."""
    text = unicodedata.normalize("NFC", text)
    cleaned = "".join(
        "_" if char in _RESERVED or unicodedata.category(char).startswith("C") else char for char in text
    )
    # No hidden files, no `..`, no trailing dots or spaces (Windows drops them).
    return cleaned.strip().lstrip(".")[:MAX_STEM_LENGTH].rstrip(". ")


def md5_name(text: str) -> str:
    """Seed 001's anonymised names: the MD5 of the rendered name, in hex."""
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class FileNamer:
    """Names the files of one job: from masks, optionally hashed, made safe and unique.

    Unique ignoring case, so the files do not overwrite one another once unzipped on macOS or Windows.
    """

    def __init__(self, suffix: str, hash_names: bool = False) -> None:
        self.suffix = suffix
        self._hash_names = hash_names
        self._taken: set[str] = set()
        self._counters: dict[str, int] = {}

    def name(self, mask: str | None, context: Mapping[str, object] | object, fallback: str) -> str:
        """The file name for ``mask`` (or ``fallback`` when the mask renders to nothing)."""
        rendered = render_mask(mask, context) if mask else ""
        if self._hash_names:
            rendered = md5_name(rendered or fallback)
        return self._unique(safe_stem(rendered) or safe_stem(fallback) or "export")

    def part(self, name: str, number: int) -> str:
        """Part ``number`` (from 1) of a file split in several: ``report-part-001.csv``."""
        stem = name.removesuffix(f".{self.suffix}")
        return self._unique(f"{stem}-part-{number:03d}")

    def _unique(self, stem: str) -> str:
        # Counting on from the last number this stem got: a mask that names thousands of files
        # alike costs a look-up or two per file, not one per file named before it.
        counter, candidate = self._counters.get(stem.casefold(), 0), ""
        while not candidate or candidate.casefold() in self._taken:
            counter += 1
            candidate = f"{stem}.{self.suffix}" if counter == 1 else f"{stem}-{counter}.{self.suffix}"
        self._counters[stem.casefold()] = counter
        self._taken.add(candidate.casefold())
        return safe_filename(candidate)


def object_key(tenant: str, request_id: str, job_id: str, name: str) -> str:
    """Deterministic: a job rendered twice overwrites its own files instead of adding new ones."""
    return f"{job_prefix(tenant, request_id, job_id)}{name}"


def job_prefix(tenant: str, request_id: str, job_id: str) -> str:
    return f"{tenant}/{request_id}/{job_id}/"
