"""Names and keys of export files: masks with placeholders, MD5-hashed names (seed 001), safe and unique."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from exporter.contracts.job import JobSpec
from exporter.contracts.request import MAX_FILENAME_LENGTH, ItemParams, mask_placeholders, safe_filename

# Room left in a name for `-part-001`, a `-2` that makes it unique, and `.jsonl.zst`.
MAX_STEM_LENGTH = MAX_FILENAME_LENGTH - 32
# Printable, but refused by Windows or meaningful to shells and URLs.
_RESERVED = frozenset('/\\<>:"|?*')
_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")
DEFAULT_DATETIME_FORMAT = "%Y%m%dT%H%M%S"


class MaskError(ValueError):
    """A file name mask that cannot be rendered: a placeholder the context lacks, a bad format."""


def naming_context(
    spec: JobSpec,
    index: int,
    thing: Mapping[str, object] | None = None,
    thing_definition: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """What a mask may name for item ``index`` (from 0) of a job: one entry per known root.

    Times are in the request's timezone, so ``${job.scheduledAt:%Y%m%d}`` is the local date. The
    thing is the target's publisher unless the caller knows more about it. A root an item's kind
    lacks (``target`` of a thing item, ``entity`` of a series) names empty text.
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
        "thing": {**series["thing"], **(thing or {})},
        "thingDefinition": {**series["thingDefinition"], **(thing_definition or {})},
        "entity": {"type": item.entities.entity_type if item.entities else ""},
        "window": {
            "from": local(window.from_ if window else None),
            "to": local(window.to if window else None),
        },
    }


def _series_context(params: ItemParams | None) -> dict[str, dict[str, object]]:
    """The roots a device's metric names: its target, its publisher as the thing."""
    if params is None:
        return {
            "item": {"channelId": "", "subtopic": ""},
            "target": dict.fromkeys(("value", "label", "publisher", "metric"), ""),
            "thing": {"id": "", "serialNumber": ""},
            "thingDefinition": {"name": ""},
        }
    target = params.target
    # `urn:cpt:<thing definition>:nid:<publisher>:<metric>`, as in seed 000.
    urn = target.value.split(":")
    return {
        "item": {"channelId": params.channel_id or "", "subtopic": params.subtopic or ""},
        "target": {
            "value": target.value,
            "label": target.label or target.metric,
            "publisher": target.publisher,
            "metric": target.metric,
        },
        "thing": {"id": target.publisher, "serialNumber": target.publisher},
        "thingDefinition": {"name": urn[2] if len(urn) >= 6 else ""},
    }


def render_mask(mask: str, context: Mapping[str, object] | object) -> str:
    """``${thing.serialNumber}_${job.scheduledAt:%Y%m%d}`` with the context's values in place.

    The context is nested mappings, dataclasses or objects; ``scheduledAt`` also finds an attribute
    ``scheduled_at``. A format after ``:`` is a strftime pattern for times, else a format() spec.
    """
    try:
        placeholders = mask_placeholders(mask)
    except ValueError as error:
        raise MaskError(f"file name mask '{mask}' {error}") from error
    pieces, end = [], 0
    for placeholder in placeholders:
        value = _lookup(context, placeholder["path"], mask)
        pieces += [mask[end : placeholder.start()], _formatted(value, placeholder["spec"], placeholder[0])]
        end = placeholder.end()
    return "".join([*pieces, mask[end:]])


def _lookup(context: object, path: str, mask: str) -> object:
    node = context
    for name in path.split("."):
        found, node = _child(node, name)
        if not found:
            known = ", ".join(sorted(_paths(context)))
            raise MaskError(f"unknown placeholder '${{{path}}}' in file name mask '{mask}'; known: {known}")
    return node


def _child(node: object, name: str) -> tuple[bool, object]:
    if isinstance(node, Mapping):
        return (True, node[name]) if name in node else (False, None)
    for attribute in (name, _CAMEL_HUMP.sub("_", name).lower()):
        if not attribute.startswith("_") and hasattr(node, attribute):
            return True, getattr(node, attribute)
    return False, None


def _paths(node: object, prefix: str = "") -> Iterator[str]:
    """The placeholders a context offers, for an error message that says what would have worked."""
    if isinstance(node, Mapping):
        children: Mapping[str, object] = {str(key): value for key, value in node.items()}
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        children = {field.name: getattr(node, field.name) for field in dataclasses.fields(node)}
    else:
        yield prefix.rstrip(".")
        return
    for name, child in children.items():
        yield from _paths(child, f"{prefix}{name}.")


def _formatted(value: object, spec: str | None, placeholder: str) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.strftime(spec or DEFAULT_DATETIME_FORMAT)
    try:
        return format(value, spec or "")
    except (ValueError, TypeError) as error:
        raise MaskError(f"cannot format {placeholder}: {error}") from error


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
        candidate, counter = f"{stem}.{self.suffix}", 2
        while candidate.casefold() in self._taken:
            candidate, counter = f"{stem}-{counter}.{self.suffix}", counter + 1
        self._taken.add(candidate.casefold())
        return safe_filename(candidate)


def object_key(tenant: str, request_id: str, job_id: str, name: str) -> str:
    """Deterministic: a job rendered twice overwrites its own files instead of adding new ones."""
    return f"{job_prefix(tenant, request_id, job_id)}{name}"


def job_prefix(tenant: str, request_id: str, job_id: str) -> str:
    return f"{tenant}/{request_id}/{job_id}/"
