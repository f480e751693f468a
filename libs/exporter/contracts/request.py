"""The export request: what a client asks for (seeds 000 and 002), validated once, here.

Every rule names the field it concerns, so the API can answer 400 with a precise message.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

import isodate
from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from exporter.contracts.base import UtcDatetime, WireModel
from exporter.contracts.ingest import EntityTypeName


class ExportType(StrEnum):
    RECURRING = "recurring"
    ONE_TIME = "oneTime"


ColumnId = Literal["publisher", "channel", "subtopic", "name", "unit", "time", "value", "created"]
Extension = Literal["csv", "xls", "xlsx", "pdf", "json", "jsonl"]
DownsampleFunction = Literal["avg", "min", "max", "sum", "count", "first", "last"]
NotificationPolicy = Literal["onSuccess", "onFailure", "always"]
CatchUp = Literal["latest", "all"]
NotificationMedium = Literal["email", "slack", "telegram", "discord"]
TimestampFormat = Literal["ISO_8601", "EPOCH_MILLIS"]
Compression = Literal["gzip", "zstd"]

MAX_FILENAME_LENGTH = 120
# Every instant a request names (`startAt`, `from`/`to`, the list filters) lies in this range, and
# every period is at most MAX_PERIOD: wide for any real schedule or data, narrow enough that no
# run time, window start or look-up computed from them leaves the years datetime can hold.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)
LATEST_EPOCH_MS = int(LATEST_TIME.timestamp()) * 1000
MAX_PERIOD = "P10Y"
_PERIOD_REFERENCE = datetime(2000, 1, 1)
_LONGEST_PERIOD_END = _PERIOD_REFERENCE + isodate.parse_duration(MAX_PERIOD)
MAX_BUCKET = timedelta(days=366)
# Unnamed groups: the pattern also goes into the OpenAPI schema, whose regex dialect lacks (?P<…>).
_DOWNSAMPLE_RE = re.compile(r"^([1-9][0-9]{0,3})(s|m|h|d)$")
# urn:<namespace…>:<publisher>:<metric>, the last two non-empty.
_URN_RE = re.compile(r"^urn:(?:[^:]*:)*[^:]+:[^:]+$")
_DOWNSAMPLE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# `${path}` or `${path:format}`; a path is dotted names, a format one its kind allows.
_PLACEHOLDER_RE = re.compile(r"\$\{(?P<path>[^}:]*)(?::(?P<spec>[^}]*))?\}")
_PLACEHOLDER_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class PlaceholderKind(StrEnum):
    """What a placeholder's value is, and so which formats it takes (see ``placeholder_problem``)."""

    NUMBER = "number"
    TEXT = "text"
    TIME = "time"


# What a file name mask may refer to, checked at create; the renderer's `naming_context` offers
# exactly these for every item (empty text where an item's kind has no such value).
MASK_PLACEHOLDERS: Mapping[str, PlaceholderKind] = {
    **dict.fromkeys(("export.id", "export.name", "export.type"), PlaceholderKind.TEXT),
    **dict.fromkeys(("job.id", "job.tenant"), PlaceholderKind.TEXT),
    "job.scheduledAt": PlaceholderKind.TIME,
    "item.index": PlaceholderKind.NUMBER,
    **dict.fromkeys(("item.channelId", "item.subtopic"), PlaceholderKind.TEXT),
    **dict.fromkeys(
        ("target.value", "target.label", "target.publisher", "target.metric"), PlaceholderKind.TEXT
    ),
    **dict.fromkeys(
        ("thing.id", "thing.serialNumber", "thing.name", "thing.customerId", "thing.locationId"),
        PlaceholderKind.TEXT,
    ),
    **dict.fromkeys(("thingDefinition.id", "thingDefinition.name"), PlaceholderKind.TEXT),
    "entity.type": PlaceholderKind.TEXT,
    **dict.fromkeys(("window.from", "window.to"), PlaceholderKind.TIME),
}
FILENAME_MASK_ROOTS = tuple(sorted({path.split(".")[0] for path in MASK_PLACEHOLDERS}))
# The formats each kind takes, so that no format can build a long string: numbers zero-padded to
# at most MAX_NUMBER_WIDTH, text only cut short (`.8`), times a strftime subset of bounded length.
MAX_NUMBER_WIDTH = 12
MAX_PIECE_LENGTH = MAX_FILENAME_LENGTH - 32
MAX_TIME_FORMAT_LENGTH = 32
TIME_DIRECTIVES = "YmdHMSjyb"
_NUMBER_SPEC_RE = re.compile(r"^0?([1-9][0-9]?)?d?$")
_TEXT_SPEC_RE = re.compile(r"^\.([0-9]{1,2})$")
_TIME_SPEC_RE = re.compile(rf"^(?:%[{TIME_DIRECTIVES}]|[A-Za-z0-9 _.-])+$")
_SPEC_FORMS = {
    PlaceholderKind.NUMBER: (
        f"a number takes no format but zero-padding such as :03d (width at most {MAX_NUMBER_WIDTH})"
    ),
    PlaceholderKind.TEXT: f"a text takes no format but a truncation such as :.8 (at most {MAX_PIECE_LENGTH})",
    PlaceholderKind.TIME: (
        f"a time takes a format of at most {MAX_TIME_FORMAT_LENGTH} characters made of "
        + " ".join(f"%{directive}" for directive in TIME_DIRECTIVES)
        + ", letters, digits, spaces and '-', '_', '.'"
    ),
}


def placeholder_problem(kind: PlaceholderKind, spec: str) -> str | None:
    """Why ``spec`` is not a format a ``kind`` placeholder takes, or None when it is one."""
    if kind is PlaceholderKind.NUMBER:
        match = _NUMBER_SPEC_RE.match(spec)
        allowed = match is not None and int(match[1] or 0) <= MAX_NUMBER_WIDTH
    elif kind is PlaceholderKind.TEXT:
        match = _TEXT_SPEC_RE.match(spec)
        allowed = match is not None and int(match[1]) <= MAX_PIECE_LENGTH
    else:
        allowed = len(spec) <= MAX_TIME_FORMAT_LENGTH and _TIME_SPEC_RE.match(spec) is not None
    return None if allowed else _SPEC_FORMS[kind]


_ISO_EARLIEST, _ISO_LATEST = (f"{moment:%Y-%m-%dT%H:%M:%SZ}" for moment in (EARLIEST_TIME, LATEST_TIME))


def bounded_instant(value: datetime) -> datetime:
    """An instant inside [EARLIEST_TIME, LATEST_TIME], in UTC (a naive one is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # Compared before converting: converting 0001-01-01T00:00+01:00 to UTC overflows.
    if not EARLIEST_TIME <= value <= LATEST_TIME:
        raise ValueError(f"must be between {_ISO_EARLIEST} and {_ISO_LATEST}")
    return value.astimezone(UTC)


BoundedInstant = Annotated[datetime, AfterValidator(bounded_instant)]


@functools.lru_cache(maxsize=1024)
def parse_iso_duration(text: str) -> timedelta | isodate.Duration:
    """An ISO 8601 duration (``P1Y6M4DT12H30M5S``) of at most MAX_PERIOD; years and months stay
    calendar units.

    Cached: schedules re-parse the same few periodicities on every run-time computation."""
    too_long = f"'{text}' must be at most {MAX_PERIOD} (10 years)"
    try:
        duration = isodate.parse_duration(text)
    except OverflowError as error:  # more days than a timedelta holds
        raise ValueError(too_long) from error
    except (isodate.ISO8601Error, ValueError) as error:
        raise ValueError(f"'{text}' is not an ISO 8601 duration such as P1D or PT15M") from error
    if not isinstance(duration, isodate.Duration | timedelta):
        raise ValueError(f"'{text}' is not an ISO 8601 duration")
    if _is_zero_or_negative(duration):
        raise ValueError(f"'{text}' must be a positive duration")
    if isinstance(duration, isodate.Duration) and (duration.years % 1 or duration.months % 1):
        raise ValueError(f"'{text}': years and months must be whole numbers")
    try:
        fits = _PERIOD_REFERENCE + duration <= _LONGEST_PERIOD_END
    except (OverflowError, ValueError):  # beyond the year 9999
        fits = False
    if not fits:
        raise ValueError(too_long)
    return duration


def _is_zero_or_negative(duration: timedelta | isodate.Duration) -> bool:
    if isinstance(duration, isodate.Duration):
        months = duration.years * 12 + duration.months
        return bool(months < 0 or (months == 0 and duration.tdelta <= timedelta(0)))
    return duration <= timedelta(0)


@functools.cache
def known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def parse_downsample(text: str) -> timedelta:
    """A decimation bucket such as ``15m``, ``1h`` or ``1d``."""
    match = _DOWNSAMPLE_RE.match(text)
    if match is None:
        raise ValueError(f"'{text}' is not a bucket size such as 1m, 15m, 1h or 1d")
    count, unit = match.groups()
    bucket = timedelta(**{_DOWNSAMPLE_UNITS[unit]: int(count)})
    if bucket > MAX_BUCKET:
        raise ValueError(f"'{text}' is longer than the longest bucket, {MAX_BUCKET.days}d")
    return bucket


def safe_filename(name: str) -> str:
    """Refuses names that could escape a folder or confuse a shell, a browser or a spreadsheet."""
    if not name or not name.strip():
        raise ValueError("must not be empty")
    if len(name) > MAX_FILENAME_LENGTH:
        raise ValueError(f"must be at most {MAX_FILENAME_LENGTH} characters")
    if "/" in name or "\\" in name:
        raise ValueError("must not contain path separators")
    if name in {".", ".."} or name.startswith("."):
        raise ValueError("must not start with a dot")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise ValueError("must not contain control characters")
    return name


def mask_placeholders(mask: str) -> list[tuple[re.Match[str], PlaceholderKind]]:
    """The ``${path[:format]}`` placeholders of a file name mask with their kinds, each path one of
    MASK_PLACEHOLDERS and each format one its kind takes."""
    placeholders = list(_PLACEHOLDER_RE.finditer(mask))
    if "${" in _PLACEHOLDER_RE.sub("", mask):
        raise ValueError("has a '${' without its closing '}'")
    kinds = []
    for placeholder in placeholders:
        path, text = placeholder["path"], placeholder[0]
        if not _PLACEHOLDER_PATH_RE.match(path):
            raise ValueError(f"'{text}' is not a placeholder such as ${{thing.serialNumber}}")
        root = path.split(".")[0]
        if root not in FILENAME_MASK_ROOTS:
            roots = ", ".join(FILENAME_MASK_ROOTS)
            raise ValueError(f"'{text}' refers to an unknown object; use one of: {roots}")
        kind = MASK_PLACEHOLDERS.get(path)
        if kind is None:
            known = ", ".join(known for known in MASK_PLACEHOLDERS if known.split(".")[0] == root)
            raise ValueError(f"'{text}' is not a placeholder of {root}; use one of: {known}")
        if placeholder["spec"] and (problem := placeholder_problem(kind, placeholder["spec"])):
            raise ValueError(f"'{text}': {problem}")
        kinds.append((placeholder, kind))
    return kinds


def filename_mask(mask: str) -> str:
    """A file name (without extension) that may hold placeholders; its fixed parts must be safe."""
    safe_filename(mask)
    mask_placeholders(mask)
    return mask


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
    ds: Annotated[str, Field(json_schema_extra={"pattern": _DOWNSAMPLE_RE.pattern})]
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


MetricName = Annotated[str, Field(min_length=1, max_length=200)]
FilterId = Annotated[str, Field(min_length=1, max_length=200)]


class ThingSelection(TimeWindow):
    """Things by customer, location or id, all three optional (seed 001's data-export): one file per
    matching thing, with a time column and one column per metric (``Weight [kg]`` with
    ``includeUnit``). ``metrics`` are metric names; none means every metric the thing declares.
    The file name mask defaults to seed 001's ``${thing.serialNumber}_${thingDefinition.name}``."""

    customer_id: FilterId | None = None
    location_id: FilterId | None = None
    thing_id: FilterId | None = None
    metrics: Annotated[list[MetricName], Field(max_length=100)] = Field(default_factory=list)

    @field_validator("metrics")
    @classmethod
    def _unique_metrics(cls, metrics: list[str]) -> list[str]:
        if len(set(metrics)) != len(metrics):
            raise ValueError("metric names must be unique")
        return metrics

    @property
    def target_key(self) -> str:
        """What seed 001's "one export at a time" is about: this selection of things."""
        return "things:" + "/".join(
            value or "*" for value in (self.customer_id, self.location_id, self.thing_id)
        )


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


_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_SLACK_CHANNEL_RE = re.compile(r"^[CGD][A-Z0-9]{6,20}$")
_TELEGRAM_CHAT_RE = re.compile(r"^(?:-?[1-9][0-9]{0,19}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
_WEBHOOK_RE = re.compile(r"^webhook:[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
WEBHOOK_PREFIX = "webhook:"
_RECIPIENT_FORMS: dict[str, tuple[list[re.Pattern[str]], str]] = {
    "email": ([_EMAIL_RE], "an email address such as ops@example.com"),
    "slack": (
        [_SLACK_CHANNEL_RE, _WEBHOOK_RE],
        "a Slack channel id such as C0123456789 or a configured webhook as webhook:NAME",
    ),
    "telegram": ([_TELEGRAM_CHAT_RE], "a Telegram chat id such as -1001234567890 or @channelname"),
    "discord": ([_WEBHOOK_RE], "a configured Discord webhook as webhook:NAME"),
}


def recipient_problem(medium: NotificationMedium, recipient: str) -> str | None:
    """Why ``recipient`` cannot receive ``medium`` messages, or None when its form is right.

    Webhooks are named, never given as URLs: a webhook URL is a credential, and requests are
    returned by the API, so the URLs live in settings only.
    """
    patterns, form = _RECIPIENT_FORMS[medium]
    if len(recipient) > 254 or not any(pattern.match(recipient) for pattern in patterns):
        return f"'{recipient[:80]}' is not {form}"
    return None


def webhook_name(recipient: str) -> str | None:
    """``ops`` for ``webhook:ops`` (names are case-blind), None for any other recipient."""
    return recipient[len(WEBHOOK_PREFIX) :].lower() if recipient.startswith(WEBHOOK_PREFIX) else None


class NotificationMessage(WireModel):
    """One notification of a job's outcome.

    ``recipients`` (optional; none: the owner's contact configured in settings) by medium:
    ``email`` addresses; ``slack`` channel ids (``C0123456789``) or ``webhook:NAME``; ``telegram``
    chat ids (``-1001234567890``) or ``@channelname``; ``discord`` ``webhook:NAME``. ``NAME``
    refers to a webhook in the settings.
    """

    policy: NotificationPolicy = "always"
    medium: NotificationMedium
    title: Annotated[str, Field(max_length=500)] = ""
    text: Annotated[str, Field(max_length=10_000)] = ""
    recipients: Annotated[list[str], Field(max_length=50)] = Field(default_factory=list)

    @field_validator("recipients")
    @classmethod
    def _recipients_fit_medium(cls, recipients: list[str], info: ValidationInfo) -> list[str]:
        medium = info.data.get("medium")
        if medium is None:  # the medium itself is wrong and reported on its own
            return recipients
        for index, recipient in enumerate(recipients):
            if problem := recipient_problem(medium, recipient):
                raise ValueError(f"entry {index}: {problem}")
        if len(set(recipients)) != len(recipients):
            raise ValueError("recipients must be unique")
        return recipients


class Notification(WireModel):
    messages: Annotated[list[NotificationMessage], Field(max_length=20)] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _single_message_form(cls, value: Any) -> Any:
        # Seed 002 sends one message as a bare object: {medium, title, text}.
        if isinstance(value, dict) and "messages" not in value and "medium" in value:
            return {"messages": [value]}
        return value


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
