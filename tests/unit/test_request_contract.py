"""The export request model: seed 000's body is accepted as is, each bad field is named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from exporter.contracts.request import ExportRequestSpec, ExportType

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


def test_seed_000_body_is_accepted_with_utc_for_empty_timezone() -> None:
    spec = ExportRequestSpec.model_validate(SEED_000)
    assert spec.type is ExportType.RECURRING
    assert spec.format.timezone == "UTC"
    target = spec.items[0].params.target
    assert (target.publisher, target.metric) == ("D0CF5EFFFE26FDAB1", "onoff")
    assert spec.to_wire()["items"][0]["params"]["from"] == 0


def test_seed_002_single_notification_object_becomes_one_message() -> None:
    body = copy.deepcopy(SEED_000)
    body["notification"] = {"medium": "slack", "title": "t", "text": "x"}
    spec = ExportRequestSpec.model_validate(body)
    assert [m.medium for m in spec.notification.messages] == ["slack"]
    assert spec.notification.messages[0].policy == "always"


def _with(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(SEED_000)
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[last] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("type", "weekly", "type", "recurring"),
        ("periodicity", "every day", "periodicity", "ISO 8601"),
        ("periodicity", "PT0S", "periodicity", "positive"),
        ("format.extension", "docx", "format.extension", "csv"),
        ("format.timezone", "Mars/Olympus", "format.timezone", "IANA"),
        ("format.columns", [{"id": "colour", "label": "c"}], "format.columns.0.id", "publisher"),
        ("format.columns", [{"id": "unit", "label": " "}], "format.columns.0.label", "blank"),
        (
            "format.columns",
            [{"id": "unit", "label": "a"}, {"id": "unit", "label": "b"}],
            "format.columns",
            "unique",
        ),
        ("items", [], "items", "at least 1"),
        ("items.0.params.decimation", {"ds": "15x", "dsf": "avg"}, "items.0.params.decimation.ds", "bucket"),
        ("items.0.params.decimation", {"ds": "15m", "dsf": "median"}, "items.0.params.decimation.dsf", "avg"),
        ("items.0.params.period", "yesterday", "items.0.params.period", "ISO 8601"),
        ("items.0.params.from", 2000, "items.0.params", "before"),
        ("items.0.filename", "../etc/passwd", "items.0.filename", "separators"),
        ("items.0.filename", "a\x07b", "items.0.filename", "control"),
        ("items.0.params.target", {"value": "not-a-urn"}, "items.0.params.target.value", "URN"),
        ("notification", {"messages": [{"medium": "pigeon"}]}, "notification.messages.0.medium", "email"),
    ],
)
def test_bad_field_is_named_in_the_error(path: str, value: Any, field: str, words: str) -> None:
    body = _with(path, value)
    if path == "items.0.params.from":
        body["items"][0]["params"]["to"] = 1000
    with pytest.raises(ValidationError) as caught:
        ExportRequestSpec.model_validate(body)
    problems = {".".join(str(p) for p in e["loc"]): e["msg"] for e in caught.value.errors()}
    assert field in problems, problems
    assert words in problems[field]


def test_recurring_without_periodicity_is_refused() -> None:
    body = copy.deepcopy(SEED_000)
    del body["periodicity"]
    with pytest.raises(ValidationError, match="'periodicity' is required"):
        ExportRequestSpec.model_validate(body)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ExportRequestSpec.model_validate(_with("format.colour", "red"))
