"""An item is exactly one kind: a device's metric, per-thing files or an entity type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from exporter.contracts.job import Window
from exporter.contracts.request import ExportRequestSpec
from exporter.domain.windows import resolve_windows

SERIES = {"params": {"target": {"value": "urn:cpt:smartdevice:nid:D0CF5EFFFE26FDAB1:onoff"}}}
THINGS = {"things": {"customerId": "c1", "metrics": ["weight", "temperature"], "period": "P1D"}}
ENTITIES = {"entities": {"entityType": "OrderItem"}}
SCHEDULED_AT = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)


def spec(*items: dict[str, Any], extension: str = "jsonl") -> ExportRequestSpec:
    return ExportRequestSpec.model_validate(
        {"type": "oneTime", "format": {"extension": extension}, "items": list(items)}
    )


def problem(*items: dict[str, Any], extension: str = "jsonl") -> str:
    with pytest.raises(ValidationError) as raised:
        spec(*items, extension=extension)
    [error] = raised.value.errors()
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"


def test_each_kind_has_its_own_target() -> None:
    request = spec(SERIES, THINGS, ENTITIES, {"things": {"locationId": "l2", "thingId": "t9"}})
    assert [item.kind for item in request.items] == ["params", "things", "entities", "things"]
    assert request.targets == [
        "entities:OrderItem",
        "things",  # seed 001: one bulk export of the tenant's things at a time, whichever
        "urn:cpt:smartdevice:nid:D0CF5EFFFE26FDAB1:onoff",
    ]
    things = request.items[1].things
    assert things is not None
    assert (things.customer_id, things.metrics) == ("c1", ["weight", "temperature"])
    assert request.to_wire()["items"][1]["things"]["customerId"] == "c1"


def test_an_item_needs_exactly_one_kind() -> None:
    assert problem({"filename": "x"}) == (
        "items.0: Value error, an item needs exactly one of 'params' (a device's metric), 'things' "
        "(per-thing files) or 'entities' (an entity type); found none"
    )
    assert problem({**SERIES, **ENTITIES}).endswith("found 'params', 'entities'")


def test_entity_exports_are_json_lines() -> None:
    assert problem(SERIES, ENTITIES, extension="csv") == (
        ": Value error, items.1.entities: entity exports are JSON Lines; "
        "format.extension must be 'jsonl', not 'csv'"
    )


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"entities": {"entityType": "../etc"}}, "items.0.entities.entityType: String should match pattern"),
        (
            {"things": {"metrics": ["a", "a"]}},
            "items.0.things.metrics: Value error, metric names must be unique",
        ),
        ({"things": {"from": 5, "to": 1}}, "items.0.things: Value error, 'from' must be before 'to'"),
        (
            {"things": {"period": "P0D"}},
            "items.0.things.period: Value error, 'P0D' must be a positive duration",
        ),
        ({"things": {"thingId": ""}}, "items.0.things.thingId: String should have at least 1 character"),
    ],
)
def test_selections_are_validated_field_by_field(item: dict[str, Any], expected: str) -> None:
    assert problem(item).startswith(expected)


def test_entities_have_no_window_and_things_have_theirs() -> None:
    windows = resolve_windows(spec(ENTITIES, THINGS), SCHEDULED_AT)
    assert windows == [
        Window(item=0),
        Window(item=1, from_=SCHEDULED_AT - timedelta(days=1), to=SCHEDULED_AT),
    ]
