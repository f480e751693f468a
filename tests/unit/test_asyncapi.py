"""The AsyncAPI document: checked in as generated, valid AsyncAPI 3.0, true to what the services
subscribe to, and its payload and header schemas true to what goes on the wire."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import yaml
from faststream import FastStream

from exporter.adapters.kafka import dead_letter_headers
from exporter.contracts.asyncapi import DEAD_LETTER_HEADERS, as_json, as_yaml, asyncapi_document
from exporter.contracts.events import ExportRequested, GrantChanged, GrantChangedData
from exporter.contracts.job import JobResult
from exporter.service_layer.dispatch import completed_event
from exporter.service_layer.iam import request_event
from exporter.settings import Settings
from ingestor.app import create_app as ingestor_app
from notifier.app import create_app as notifier_app
from renderer.app import create_app as renderer_app
from scheduler.app import create_app as scheduler_app
from tests.notify_cases import job_spec

ROOT = Path(__file__).parents[2]
ASYNCAPI_SCHEMA = Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json"
DOCUMENT = asyncapi_document()


def test_the_checked_in_files_are_the_generated_document() -> None:
    """``make asyncapi`` rewrites them; a change to a contract without it fails here."""
    assert (ROOT / "docs" / "asyncapi.json").read_text() == as_json(DOCUMENT)
    assert (ROOT / "docs" / "asyncapi.yaml").read_text() == as_yaml(DOCUMENT)
    assert yaml.safe_load(as_yaml(DOCUMENT)) == DOCUMENT


def asyncapi_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(ASYNCAPI_SCHEMA.read_text()))
    errors = validator.iter_errors(document)
    return [f"{list(error.absolute_path)}: {error.message[:200]}" for error in errors]


def test_the_document_is_valid_asyncapi_3() -> None:
    assert asyncapi_errors(DOCUMENT) == []
    deployed = asyncapi_document(Settings().kafka)
    assert asyncapi_errors(deployed) == []
    # The official schema does look inside: an operation with an unknown action is refused.
    broken = json.loads(json.dumps(DOCUMENT))
    broken["operations"]["renderer-receive-export.requested"]["action"] = "consume"
    assert asyncapi_errors(broken)


def received(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(service, topic) of every receive operation of the services (not the CLI's), by its tag."""
    found = set()
    for operation in document["operations"].values():
        service = operation["tags"][0]["name"]
        if operation["action"] == "receive" and service != "exporter-cli":
            channel = document["channels"][operation["channel"]["$ref"].rpartition("/")[2]]
            found.add((service, channel["address"]))
    return found


def faststream_receives(name: str, app: FastStream) -> set[tuple[str, str]]:
    """What FastStream's own generator says the service subscribes to: it does get the topics right."""
    document = app.schema.to_specification().to_jsonable()
    return {(name, channel["address"]) for channel in document.get("channels", {}).values()}


def test_every_topic_a_service_subscribes_to_is_a_receive_operation_and_nothing_else() -> None:
    settings = Settings()
    apps = {
        "ingestor": ingestor_app(settings),
        "notifier": notifier_app(settings),
        "renderer": renderer_app(settings),
        "scheduler": scheduler_app(settings),
    }
    subscribed = set().union(*(faststream_receives(name, app) for name, app in apps.items()))
    assert ("ingestor", "messages") in subscribed
    assert received(DOCUMENT) == subscribed


def component_validator(document: dict[str, Any], reference: dict[str, str]) -> jsonschema.Validator:
    """A validator for one schema of the document, its references resolved inside the document."""
    return jsonschema.Draft202012Validator({**reference, "components": document["components"]})


def payload_of(document: dict[str, Any], message: str) -> dict[str, str]:
    payload: dict[str, str] = document["components"]["messages"][message]["payload"]
    return payload


def events() -> dict[str, dict[str, Any]]:
    """One event of each type, built the way the services build them, in their wire form."""
    spec = job_spec()
    result = JobResult(status="done", bucket="exports", row_count=3, size_in_bytes=10)
    requested = ExportRequested(id=spec.job_id, source="exporter/scheduler", tenant=spec.tenant, data=spec)
    grant = GrantChangedData(
        grant_id="g1", tenant="acme", subjects=["user:bob"], actions=["exporter:exports:read"], version=1
    )
    return {
        "ExportRequested": requested.to_wire(),
        "ExportCompleted": completed_event(spec, result, "exporter/renderer").to_wire(),
        "IamPolicyUpdated": request_event("r1", "acme", "alice", 1, "create", "alice").to_wire(),
        "GrantChanged": GrantChanged(id="g1:v1", source="iam", tenant="acme", data=grant).to_wire(),
        "MeasurementsBare": {"records": [{"publisher": "d1", "name": "t", "time": 1.0, "value": 2.5}]},
    }


@pytest.mark.parametrize(("message", "event"), events().items())
def test_each_payload_schema_takes_the_events_we_send_and_refuses_a_field_of_none(
    message: str, event: dict[str, Any]
) -> None:
    validator = component_validator(DOCUMENT, payload_of(DOCUMENT, message))
    assert list(validator.iter_errors(event)) == []
    assert list(validator.iter_errors({**event, "unknownField": 1}))


def test_the_dead_letter_headers_are_the_documented_ones() -> None:
    record = SimpleNamespace(
        topic="things", partition=2, offset=7, headers=[("x-tenant", b"acme"), ("x-signature", b"ab")]
    )
    headers = dead_letter_headers(record, "bad")
    schema = {"$ref": "#/components/schemas/DeadLetterHeaders"}
    assert list(component_validator(DOCUMENT, schema).iter_errors(headers)) == []
    documented = {name for name in headers if name.startswith("x-dlq-")}
    assert documented <= set(DEAD_LETTER_HEADERS)
    assert "x-signature" not in headers
    del headers["x-dlq-reason"]
    assert list(component_validator(DOCUMENT, schema).iter_errors(headers))


@pytest.mark.parametrize("attribute", ["specversion", "id", "source", "type"])
def test_an_event_without_a_required_cloudevents_attribute_is_refused(attribute: str) -> None:
    """The models default ``specversion`` and ``type`` (our consumers take events without them);
    the contract says what a CloudEvent must carry."""
    for message, event in events().items():
        if "specversion" in event:
            validator = component_validator(DOCUMENT, payload_of(DOCUMENT, message))
            assert list(validator.iter_errors({k: v for k, v in event.items() if k != attribute})), message


def references(node: Any) -> list[str]:
    """Every ``$ref`` in ``node``."""
    if isinstance(node, dict) and "$ref" in node:
        return [node["$ref"]]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return [ref for child in children for ref in references(child)]


def resolve(document: dict[str, Any], pointer: str) -> Any:
    node: Any = document
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_reference_resolves_and_operations_send_only_their_channels_messages() -> None:
    """What the AsyncAPI parser checks beyond the JSON schema."""
    deployed = asyncapi_document(Settings().kafka)
    pointers = references(deployed)
    assert len(pointers) > 100
    for pointer in pointers:
        assert resolve(deployed, pointer) is not None, pointer
    for name, operation in deployed["operations"].items():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/"), name
