"""The export form as flat HTML field names, and back: the fields are named by the wire request's
own paths (``items.0.params.target.value``), so the API's validation errors (pydantic locations)
land on the field they concern. The rules themselves stay in ``ExportRequestSpec``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from exporter.contracts.job import JobResult, JobSpec
from exporter.contracts.request import DEFAULT_COLUMNS, ExportRequestSpec, ExportType, Format
from exporter.contracts.time_bounds import known_timezones
from exporter.domain.job_life import JobStatus
from exporter.domain.schedule import first_run_at, upcoming_runs
from exporter.notifications.messages import placeholder_values
from request_api.views import UPCOMING_RUNS

MAX_COLUMNS = 8
MAX_ROWS = 20
_INDEX = re.compile(r"^\d{1,2}$")
# Fields the browser sends as text that the wire request holds in another shape.
_WINDOW_BOUNDS = ("from", "to")
PERIODICITY_PRESETS = {"Every 15 minutes": "PT15M", "Hourly": "PT1H", "Daily": "P1D", "Weekly": "P1W"}
PERIODICITY_PRESETS |= {"Monthly": "P1M"}
SPEC_FIELDS = tuple(spec.alias or name for name, spec in ExportRequestSpec.model_fields.items())


@dataclass
class ExportForm:
    """What the form shows: its values by field name, and the problems by field name ("" for
    those of the whole request)."""

    values: dict[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)
    items: int = 1
    messages: int = 1

    def problem(self, name: str) -> str:
        return "; ".join(self.errors.get(name, []))

    def kept(self) -> dict[str, str]:
        """Values of the request the form has no field for (a file-name mask, an archive, a
        thing selection): sent back as they were, so an edit never drops them."""
        shown = field_names(self)
        return {name: value for name, value in self.values.items() if value and name not in shown}


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list) and not prefix.endswith("recipients"):
        for index, inner in enumerate(value):
            _flatten(inner, f"{prefix}.{index}", out)
    elif isinstance(value, list):
        out[prefix] = "\n".join(value)
    elif isinstance(value, bool):
        out[prefix] = "on" if value else ""
    elif value is not None:
        out[prefix] = str(value)


def _local(epoch_ms: str, zone: str) -> str:
    instant = datetime.fromtimestamp(int(epoch_ms) / 1000, UTC).astimezone(ZoneInfo(zone))
    return instant.strftime("%Y-%m-%dT%H:%M")


def form_of(wire: dict[str, Any]) -> ExportForm:
    """A stored request (its wire shape) as the form's values; window bounds in its timezone."""
    values: dict[str, str] = {}
    _flatten({key: wire.get(key) for key in SPEC_FIELDS}, "", values)
    zone = values.get("format.timezone") or "UTC"
    for name in [name for name in values if name.rsplit(".", 1)[-1] in _WINDOW_BOUNDS]:
        values[name] = "" if values[name] == "0" else _local(values[name], zone)
    items = len(wire.get("items") or [])
    for index in range(items):
        dated = values.get(f"items.{index}.params.from")
        values[f"items.{index}.window"] = "dates" if dated else "period"
    messages = len((wire.get("notification") or {}).get("messages") or [])
    return ExportForm(values, items=items + 1, messages=messages + 1)


def blank_form() -> ExportForm:
    values = {"type": "recurring", "periodicity": "P1D", "format.extension": "csv"}
    values |= {"format.timezone": "UTC", "items.0.window": "period", "items.0.params.period": "P1D"}
    for index, column in enumerate(DEFAULT_COLUMNS):
        values |= {f"format.columns.{index}.id": column.id, f"format.columns.{index}.label": column.label}
    return ExportForm(values)


def _put(tree: dict[str, Any], path: list[str], value: str) -> None:
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _listed(node: Any) -> Any:
    """Dicts keyed by row numbers become lists in row order, rows left blank dropped."""
    if not isinstance(node, dict):
        return node
    listed = {key: _listed(inner) for key, inner in node.items()}
    node = {key: inner for key, inner in listed.items() if inner not in ("", {}, [])}
    if node and all(_INDEX.match(key) for key in node):
        return [node[key] for key in sorted(node, key=int)]
    return node


def _epoch_ms(text: str, zone: str) -> int:
    local = datetime.fromisoformat(text)
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(zone if zone in known_timezones() else "UTC"))
    return int(local.timestamp() * 1000)


def _windows(values: dict[str, str], errors: dict[str, list[str]]) -> dict[str, str | int]:
    """Each item's window as the chosen kind (dates or a period), its dates as epoch ms."""
    zone = values.get("format.timezone") or "UTC"
    windows: dict[str, str | int] = {}
    for name, value in values.items():
        head, _, last = name.rpartition(".")
        if last not in _WINDOW_BOUNDS or not value:
            continue
        if values.get(f"{head.removesuffix('.params')}.window") == "period":
            continue
        try:
            windows[name] = _epoch_ms(value, zone)
        except ValueError:
            errors.setdefault(name, []).append("must be a date and time such as 2026-01-31T00:00")
    return windows


def request_of(values: dict[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The wire request the form describes (as the API would receive it), and the problems of
    fields that could not even be read as their type."""
    errors: dict[str, list[str]] = {}
    tree: dict[str, Any] = {}
    windows = _windows(values, errors)
    for name, value in values.items():
        path = name.split(".")
        if path[-1] == "window" or path[-1] in _WINDOW_BOUNDS or len(path) > 6:
            continue
        if path[-1] == "period" and values.get(name.replace("params.period", "window")) == "dates":
            continue
        _put(tree, path, value.strip() if path[-1] != "text" else value)
    for name, epoch_ms in windows.items():
        _put(tree, name.split("."), epoch_ms)  # type: ignore[arg-type]
    wire: dict[str, Any] = _listed(tree)
    wire.setdefault("format", {})["includeUnit"] = values.get("format.includeUnit") == "on"
    notification = wire.get("notification") or {}
    if isinstance(notification.get("messages"), list):  # a row with only its "When" is left blank
        notification["messages"] = [row for row in notification["messages"] if set(row) != {"policy"}]
    for message in notification.get("messages", []):
        if isinstance(message, dict) and isinstance(message.get("recipients"), str):
            message["recipients"] = [line.strip() for line in re.split(r"[\n,]", message["recipients"])]
            message["recipients"] = [recipient for recipient in message["recipients"] if recipient]
    if wire.get("type") == "oneTime":
        wire.pop("periodicity", None)
    return wire, errors


def _field_for(path: str, known: set[str]) -> str:
    """The field a location names, or the one field inside it (a missing ``target`` is shown on
    ``target.value``); "" for a rule of the whole request or of a group of fields."""
    inside = [name for name in known if name.startswith(f"{path}.")]
    if path in known or len(inside) != 1:
        return path if path in known else ""
    return inside[0]


def errors_of(error: ValidationError, known: set[str]) -> dict[str, list[str]]:
    """The API's own messages, each on the deepest form field (or row) its location names."""
    errors: dict[str, list[str]] = {}
    for issue in error.errors():
        message = str(issue["msg"]).removeprefix("Value error, ")
        path = ".".join(str(part) for part in issue["loc"])
        name = _field_for(path, known)
        errors.setdefault(name, []).append(message if name else f"{path or 'request'}: {message}")
    return errors


Problems = dict[str, list[str]]


def validated(values: dict[str, str], known: set[str]) -> tuple[ExportRequestSpec | None, Problems]:
    wire, errors = request_of(values)
    try:
        spec = ExportRequestSpec.model_validate(wire)
    except ValidationError as error:
        for name, problems in errors_of(error, known).items():
            errors.setdefault(name, []).extend(problems)
        return None, errors
    return (None, errors) if errors else (spec, errors)


def next_runs(spec: ExportRequestSpec, now: datetime) -> list[datetime]:
    """The first runs the spec would have if created now, by the scheduler's own rules."""
    request = spec.stored(
        request_id="preview", tenant="", owner="", version=1, created_at=now, updated_at=now
    )
    return upcoming_runs(request, first_run_at(request), UPCOMING_RUNS)


@cache
def placeholders() -> tuple[str, ...]:
    """The names a title or text may use, as the notifier fills them (listed next to the fields)."""
    request = ExportRequestSpec.model_construct(
        name="", type=ExportType.ONE_TIME, items=[], format=Format(extension="csv")
    )
    spec = JobSpec.model_construct(
        job_id="",
        request_id="",
        request_version=1,
        tenant="",
        owner="",
        scheduled_at=datetime.now(UTC),
        request=request,
        windows=[],
    )
    return tuple(f"${{{name}}}" for name in placeholder_values(spec, JobResult(status=JobStatus.DONE), ()))


def field_names(form: ExportForm) -> set[str]:
    """Every field the form shows (see templates/export_form.html), for placing errors."""
    names = {"name", "type", "periodicity", "startAt", "catchUp"}
    shown = ("extension", "timezone", "timestampFormat", "includeUnit", "compression", "columns")
    names |= {f"format.{name}" for name in shown}
    for index in range(MAX_COLUMNS):
        names |= {f"format.columns.{index}.id", f"format.columns.{index}.label"}
    for index in range(form.items):
        item = f"items.{index}.params"
        names |= {f"items.{index}.window", f"{item}.target.value", f"{item}.channelId", f"{item}.subtopic"}
        names |= {f"{item}.{name}" for name in ("from", "to", "period", "decimation.ds", "decimation.dsf")}
    for index in range(form.messages):
        message = f"notification.messages.{index}"
        names |= {f"{message}.{name}" for name in ("policy", "medium", "recipients", "title", "text")}
    return names
