"""Our envelope is a CloudEvent in JSON format, as the official SDK reads it."""

from __future__ import annotations

import json

from cloudevents.core.bindings.kafka import KafkaMessage, from_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from exporter.contracts.events import CLOUDEVENTS_CONTENT_TYPE, ThingUpdated
from exporter.contracts.ingest import Thing


def test_an_event_without_subject_or_actor_leaves_them_out_and_the_sdk_reads_it() -> None:
    """CloudEvents has no null attributes: the SDK refused ``"subject": null``."""
    event = ThingUpdated(id="t1:v1", source="exporter/demo", tenant="acme", data=Thing(id="t1", version=1))
    wire = event.to_wire()
    assert "subject" not in wire
    assert "actor" not in wire
    message = KafkaMessage(
        headers={"content-type": CLOUDEVENTS_CONTENT_TYPE.encode()}, key=None, value=json.dumps(wire).encode()
    )
    read = from_structured(message, JSONFormat(), CloudEvent)
    assert read.get_subject() is None
    assert read.get_extension("tenant") == "acme"
    assert ThingUpdated.model_validate_json(json.dumps(wire)) == event
