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
    body = copy.deepcopy(SEED_000)
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[last] = value
    return body


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
]


def bad_body(path: str, value: Any) -> dict[str, Any]:
    body = with_field(path, value)
    if path == "items.0.params.from":
        body["items"][0]["params"]["to"] = 1000
    return body
