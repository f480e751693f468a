"""The export request model: seed 000's body is accepted as is, each bad field is named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from exporter.contracts.request import EXAMPLE_REQUEST, ExportRequestSpec, ExportType, Item
from exporter.contracts.time_bounds import EARLIEST_TIME, LATEST_EPOCH_MS, LATEST_TIME
from tests.request_cases import BAD_FIELDS, SEED_000, bad_body, with_field, with_fields


def test_seed_000_body_is_accepted_with_utc_for_empty_timezone() -> None:
    spec = ExportRequestSpec.model_validate(SEED_000)
    assert spec.type is ExportType.RECURRING
    assert spec.format.timezone == "UTC"
    params = spec.items[0].params
    assert params is not None
    target = params.target
    assert (target.publisher, target.metric) == ("D0CF5EFFFE26FDAB1", "onoff")
    assert spec.to_wire()["items"][0]["params"]["from"] == 0


def test_seed_002_single_notification_object_becomes_one_message() -> None:
    body = copy.deepcopy(SEED_000)
    body["notification"] = {"medium": "slack", "title": "t", "text": "x"}
    spec = ExportRequestSpec.model_validate(body)
    assert [m.medium for m in spec.notification.messages] == ["slack"]
    assert spec.notification.messages[0].policy == "always"


def test_seed_001_file_options_are_accepted() -> None:
    body = with_field(
        "format",
        {
            "extension": "xlsx",
            "timezone": "Europe/Rome",
            "timestampFormat": "EPOCH_MILLIS",
            "includeUnit": True,
            "compression": "zstd",
            "filenameMask": "${thing.serialNumber}_${thingDefinition.name}_${job.scheduledAt:%Y%m%d}",
            "hashFilenames": True,
        },
    )
    body["items"][0]["filename"] = "${target.label}-${item.index:03d}"
    spec = ExportRequestSpec.model_validate(body)
    assert spec.format.timestamp_format == "EPOCH_MILLIS"
    assert (spec.format.include_unit, spec.format.hash_filenames) == (True, True)
    assert spec.format.compression == "zstd"
    assert spec.to_wire()["format"]["filenameMask"].startswith("${thing.serialNumber}")
    defaults = ExportRequestSpec.model_validate(SEED_000).format
    assert (defaults.timestamp_format, defaults.compression, defaults.filename_mask) == (
        "ISO_8601",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    BAD_FIELDS,
)
def test_bad_field_is_named_in_the_error(path: str, value: Any, field: str, words: str) -> None:
    body = bad_body(path, value)
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
        ExportRequestSpec.model_validate(with_field("format.colour", "red"))


def test_values_at_the_bounds_are_accepted() -> None:
    spec = ExportRequestSpec.model_validate(
        with_fields(
            {
                "startAt": "1970-01-01T00:00:00Z",
                "periodicity": "P120M",
                "items.0.params.period": "P3653D",
                "items.0.params.to": LATEST_EPOCH_MS,
                "items.0.params.decimation": {"ds": "8784h"},
                "items.0.params.target": {"value": "urn:x:d:m", "label": "l" * 200},
                "format.filenameMask": "${window.to:%Y%m%d%H%M%S%j%y%b%H%M%S-_. }${thing.name:.88}",
            }
        )
    )
    assert spec.start_at == EARLIEST_TIME
    late = ExportRequestSpec.model_validate(with_fields({"startAt": "2100-01-01T01:00:00+01:00"}))
    assert late.start_at == LATEST_TIME


def test_the_documented_example_and_every_item_kind_agree_with_the_schema() -> None:
    """The OpenAPI example is a valid request, and the schema's one-kind rule matches the model's."""
    ExportRequestSpec.model_validate(EXAMPLE_REQUEST)
    kinds = Item.model_json_schema()["oneOf"]
    assert [branch["required"] for branch in kinds] == [["params"], ["things"], ["entities"]]
    with pytest.raises(ValidationError, match="exactly one of"):
        Item.model_validate({"params": None, "entities": None})
