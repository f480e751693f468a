"""Export request bodies shared by the contract's unit tests and the API's HTTP tests."""

from __future__ import annotations

import copy
from typing import Any

SEED_000: dict[str, Any] = {
    "format": {"extension": "csv", "columns": [{"id": "unit", "label": "unit of measure"}], "timezone": {}},
    "type": "recurring",
    "items": [
        {
            "params": {
                "target": {"value": "urn:cpt:smartdevice:nid:D0CF5EFFFE26FDAB1:onoff", "label": "onoff"},
                "channelId": "0115c85d-ef3e-4de9-9732-d0c5c4f2c482",
                "subtopic": "events.data",
                "from": 0,
                "to": 0,
                "period": "P1Y6M4DT12H30M5S",
                "decimation": {"ds": "15m", "dsf": "avg"},
            },
            "filename": "string",
        }
    ],
    "periodicity": "P1Y6M4DT12H30M5S",
    "notification": {
        "messages": [{"policy": "onSuccess", "medium": "email", "title": "string", "text": "string"}]
    },
}


def with_field(path: str, value: Any) -> dict[str, Any]:
    return with_fields({path: value})


def with_fields(changes: dict[str, Any]) -> dict[str, Any]:
    """Seed 000 with each dotted path set to its value."""
    body = copy.deepcopy(SEED_000)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node: Any = body
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    return body


# Issue 14: every mask, date, time and duration bounded; each of these was accepted (or a 500).
BOUND_FIELDS: list[tuple[str, Any, str, str]] = [
    ("format.filenameMask", "${item.index:2000000000}", "format.filenameMask", "zero-padding"),
    ("format.filenameMask", "${item.index:>9}", "format.filenameMask", "zero-padding"),
    ("format.filenameMask", "${item.index:013d}", "format.filenameMask", "width at most 12"),
    ("format.filenameMask", "${thing.serialNumber:>1000}", "format.filenameMask", "truncation"),
    ("format.filenameMask", "${job.scheduledAt:%s}", "format.filenameMask", "%Y"),
    ("format.filenameMask", "${job.scheduledAt:%c}", "format.filenameMask", "%Y"),
    ("format.filenameMask", "${window.to:" + "%Y" * 17 + "}", "format.filenameMask", "at most 32"),
    ("format.filenameMask", "${thing.bogus}", "format.filenameMask", "thing.serialNumber"),
    ("format.filenameMask", "${job.scheduledAt.year}", "format.filenameMask", "job.scheduledAt"),
    ("items.0.filename", "${thing.bogus}", "items.0.filename", "thing.serialNumber"),
    ("periodicity", "P3000Y", "periodicity", "at most P10Y"),
    ("periodicity", "P10YT1S", "periodicity", "at most P10Y"),
    ("periodicity", "PT99999999999999999999H", "periodicity", "at most P10Y"),
    ("periodicity", "P1.5Y", "periodicity", "whole"),
    ("items.0.params.period", "P3654D", "items.0.params.period", "at most P10Y"),
    ("items.0.params.to", 10**15, "items.0.params.to", "4102444800000"),
    ("items.0.params.from", 10**15, "items.0.params.from", "4102444800000"),
    ("startAt", "9999-06-01T00:00:00Z", "startAt", "2100-01-01"),
    ("startAt", "0001-01-01T00:00:00+01:00", "startAt", "1970-01-01"),
    ("startAt", "1969-12-31T23:59:59Z", "startAt", "1970-01-01"),
    ("items.0.params.decimation", {"ds": "9999d"}, "items.0.params.decimation.ds", "366d"),
    ("items.0.params.decimation", {"ds": "8785h"}, "items.0.params.decimation.ds", "366d"),
    ("items.0.params.target.label", "x" * 201, "items.0.params.target.label", "200"),
    ("items.0.params.channelId", "c" * 201, "items.0.params.channelId", "200"),
    ("items.0.params.subtopic", "s" * 201, "items.0.params.subtopic", "200"),
]


# (path to change, new value, field named in the error, words the message must contain)
BAD_FIELDS: list[tuple[str, Any, str, str]] = [
    ("type", "weekly", "type", "recurring"),
    ("periodicity", "every day", "periodicity", "ISO 8601"),
    ("periodicity", "PT0S", "periodicity", "positive"),
    ("format.extension", "docx", "format.extension", "csv"),
    ("format.timezone", "Mars/Olympus", "format.timezone", "IANA"),
    ("format.timezone", "Europe/" + "Rome" * 100, "format.timezone", "IANA"),
    ("format.timezone", "../../etc/passwd", "format.timezone", "IANA"),
    ("format.columns", [{"id": "colour", "label": "c"}], "format.columns.0.id", "publisher"),
    ("format.columns", [{"id": "unit", "label": " "}], "format.columns.0.label", "blank"),
    (
        "format.columns",
        [{"id": "unit", "label": "a"}, {"id": "unit", "label": "b"}],
        "format.columns",
        "unique",
    ),
    ("format.timestampFormat", "RFC_3339", "format.timestampFormat", "ISO_8601"),
    ("format.compression", "bzip2", "format.compression", "gzip"),
    ("format.filenameMask", "${thing.serialNumber", "format.filenameMask", "closing"),
    ("format.filenameMask", "${device.id}", "format.filenameMask", "unknown object"),
    ("format.filenameMask", "${thing..id}", "format.filenameMask", "not a placeholder"),
    ("format.filenameMask", "out/${thing.serialNumber}", "format.filenameMask", "separators"),
    ("items", [], "items", "at least 1"),
    ("items.0.params.decimation", {"ds": "15x", "dsf": "avg"}, "items.0.params.decimation.ds", "bucket"),
    ("items.0.params.decimation", {"ds": "15m", "dsf": "median"}, "items.0.params.decimation.dsf", "avg"),
    ("items.0.params.period", "yesterday", "items.0.params.period", "ISO 8601"),
    ("items.0.params.from", 2000, "items.0.params", "before"),
    ("items.0.params.to", 1.5, "items.0.params.to", "integer"),
    ("items.0.params.to", True, "items.0.params.to", "integer"),
    ("items.0.filename", "../etc/passwd", "items.0.filename", "separators"),
    ("items.0.filename", "a\x07b", "items.0.filename", "control"),
    ("items.0.filename", "${nope}", "items.0.filename", "unknown object"),
    ("items.0.params.target", {"value": "not-a-urn"}, "items.0.params.target.value", "URN"),
    ("notification", {"messages": [{"medium": "pigeon"}]}, "notification.messages.0.medium", "email"),
    (
        "notification",
        {"messages": [{"medium": "email", "recipients": ["ops@example.com", "Ops <ops@example.com>"]}]},
        "notification.messages.0.recipients",
        "entry 1: 'Ops <ops@example.com>' is not an email address",
    ),
    (
        "notification",
        {"messages": [{"medium": "email", "recipients": ["a@example.com\r\nBcc: x@evil.test"]}]},
        "notification.messages.0.recipients",
        "is not an email address",
    ),
    (
        "notification",
        {"messages": [{"medium": "slack", "recipients": ["https://hooks.slack.com/services/T/B/x"]}]},
        "notification.messages.0.recipients",
        "webhook:NAME",
    ),
    (
        "notification",
        {"messages": [{"medium": "telegram", "recipients": ["my friends"]}]},
        "notification.messages.0.recipients",
        "Telegram chat id",
    ),
    (
        "notification",
        {"medium": "discord", "recipients": ["ops"]},
        "notification.messages.0.recipients",
        "Discord webhook as webhook:NAME",
    ),
    (
        "notification",
        {"messages": [{"medium": "email", "recipients": ["a@example.com", "a@example.com"]}]},
        "notification.messages.0.recipients",
        "unique",
    ),
    *BOUND_FIELDS,
]


def bad_body(path: str, value: Any) -> dict[str, Any]:
    body = with_field(path, value)
    if path == "items.0.params.from":
        body["items"][0]["params"]["to"] = 1000
    return body
