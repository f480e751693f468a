"""Seed 001 (Servitly's ``POST /data/dataExports``, docs/seeds/001.txt): its bodies and its
answers' shape, shared by the unit, integration and end-to-end tests of the seed's routes."""

from __future__ import annotations

from typing import Any

# The seed's own example values, as written there (it shows one per field, not a whole body).
# As a body they ask for an empty window: startTimestamp equals endTimestamp.
SEED_001_EXAMPLES: dict[str, Any] = {
    "name": "AllTemperatures_march_20200",
    "dateTime": 1578438000000,
    "thingFileName": "${thing.serialNumber}_${thingDefinition.name}",
    "startTimestamp": 1578438000000,
    "endTimestamp": 1578438000000,
    "timestampFormat": "ISO_8601",
}


def seed_001_body(start: int, end: int, **changes: Any) -> dict[str, Any]:
    """Every field of the seed's body: its examples where it gives one, and a real window."""
    body = {
        "name": "AllTemperatures_march_20200",
        "dateTime": 1578438000000,
        "thingFileName": "${thing.serialNumber}_${thingDefinition.name}",
        "hashThingFileName": False,
        "customerId": "customer-1",
        "locationId": "plant-1",
        "thingId": "D0CF5EFFFE26FDAB1",
        "qualifiedMetricIds": [
            {"metricId": "temperature", "productModelId": "pm-1", "productModelPartId": "sensor"}
        ],
        "startTimestamp": start,
        "endTimestamp": end,
        "includeUnit": True,
        "timestampFormat": "EPOCH_MILLIS",
    }
    return body | changes


# The data-export bean of the seed's 201 answer: every field and its type.
DATA_EXPORT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "name": str,
    "dateTime": int,
    "thingFileName": str,
    "hashThingFileName": bool,
    "state": str,
    "customerId": str,
    "locationId": str,
    "thingId": str,
    "qualifiedMetricIds": list,
    "startTimestamp": int,
    "endTimestamp": int,
    "includeUnit": bool,
    "timestampFormat": str,
}
QUALIFIED_METRIC_FIELDS = ("metricId", "productModelId", "productModelPartId", "thingDefinitionId")
STATES = ("PENDING", "COMPLETED", "ERROR")


def assert_data_export(answer: dict[str, Any], body: dict[str, Any], details: bool = False) -> None:
    """Field by field: every field of the seed's bean present with its type, the body's values
    back, the state one of the seed's, and ``url`` only in the details."""
    for field, kind in DATA_EXPORT_FIELDS.items():
        assert isinstance(answer[field], kind), (field, answer[field])
    for field in DATA_EXPORT_FIELDS.keys() - {"id", "state", "qualifiedMetricIds"}:
        assert answer[field] == body[field], field
    assert answer["qualifiedMetricIds"] == [
        {field: metric.get(field) for field in QUALIFIED_METRIC_FIELDS}
        for metric in body["qualifiedMetricIds"]
    ]
    assert answer["state"] in STATES
    assert ("url" in answer) is details
