"""The AsyncAPI 3.0 document of the whole system: every topic, who sends and who receives it,
each message's payload and headers, the dead-letter topics, and the brokers.

Built from the topic registry and the wire models rather than taken from FastStream's generator,
which describes one process at a time and, for ours, wrongly: batch subscribers that decode
their records themselves (the ingestor's topics, the notifier's ``export.completed``) come out
with empty payloads; events leave through the outbox relay's ``broker.publish``, so no send
operation appears at all; channels are named after handler functions; headers (signature,
tenant, dead-letter reasons) and security schemes are missing. What FastStream does get right,
the topics each service subscribes to, is what a test checks this document against
(``tests/unit/test_asyncapi.py``). ``python -m exporter.contracts.asyncapi`` writes the checked-in
``docs/asyncapi.json`` and ``.yaml`` (``make asyncapi``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from exporter.contracts.events import (
    CLOUDEVENTS_CONTENT_TYPE,
    EntityUpdated,
    Envelope,
    ExportCompleted,
    ExportRequested,
    GrantChanged,
    IamPolicyUpdated,
    MeasurementsPublished,
    ThingUpdated,
)
from exporter.contracts.ingest import Entity, MeasurementPack, MeasurementRecord, Thing
from exporter.settings import KafkaSettings
from exporter.signing import KEY_ID_HEADER, SIGNATURE_HEADER, TENANT_HEADER
from exporter.topics import Topic

Schema = dict[str, Any]
JSON = "application/json"
# What a dead letter's headers add to the original record's (``exporter.adapters.kafka``).
DEAD_LETTER_HEADERS: dict[str, str] = {
    "x-dlq-reason": "Why the record was refused, at most 2,000 characters.",
    "x-dlq-source-topic": "On a refused record: the topic it was consumed from.",
    "x-dlq-source-partition": "On a refused record: its partition there.",
    "x-dlq-source-offset": "On a refused record: its offset there, where its original bytes stay.",
    "x-dlq-event-id": "On a letter for an event too large to publish, instead: the event's id.",
}
PRODUCTION_HOST = "kafka:9092"
# The header schemas: of our events, and of bare ingest payloads.
OUR_HEADERS, BARE_HEADERS = "EventHeaders", "BareIngestHeaders"
KAFKA_BINDING = {"bindingVersion": "0.5.0"}
JOB_KEY = "The job id, so that a job's events stay in order."
# An envelope is a CloudEvent: these are required, though the models default two of them, so that
# our consumers still take an upstream event without them.
CLOUDEVENT_REQUIRED = ("specversion", "id", "source", "type")


@dataclass(frozen=True)
class Message:
    name: str
    summary: str
    payload: Any
    headers: str
    # What the record's key is.
    key: str
    content_type: str = CLOUDEVENTS_CONTENT_TYPE


@dataclass(frozen=True)
class Channel:
    topic: Topic
    description: str
    messages: tuple[Message, ...]
    senders: tuple[str, ...]
    receivers: tuple[str, ...]


def _ingest(topic: Topic, description: str, event: type[Any], bare: Any, what: str, key: str) -> Channel:
    """An ingest topic: upstream producers send an event, or its data bare with the tenant in a header."""
    name, stem = event.__name__, event.__name__.removesuffix("Updated").removesuffix("Published")
    messages = (
        Message(name, f"{what} as an event.", event, "IngestHeaders", key),
        Message(f"{stem}Bare", f"{what}, bare: the tenant in a header.", bare, BARE_HEADERS, key, JSON),
    )
    return Channel(topic, description, messages, (), ("ingestor",))


CHANNELS = (
    Channel(
        Topic.EXPORT_REQUESTED,
        "A job to render: a due run from the scheduler, a run now from the request-api, or an "
        "ad hoc export from an upstream system.",
        (Message("ExportRequested", "One job's specification.", ExportRequested, OUR_HEADERS, JOB_KEY),),
        ("scheduler", "request-api"),
        ("renderer",),
    ),
    Channel(
        Topic.EXPORT_COMPLETED,
        "A job's outcome: its files, sizes and row count, or its error.",
        (Message("ExportCompleted", "A job done, failed, expired.", ExportCompleted, OUR_HEADERS, JOB_KEY),),
        ("renderer", "scheduler"),
        ("notifier",),
    ),
    Channel(
        Topic.IAM_POLICY_UPDATED,
        "Between the exporter and the IAM service: an announcement of every change to an export "
        "request, and the IAM service's grants, which the ingestor stores.",
        (
            Message(
                "IamPolicyUpdated",
                "An export request created, changed, run or removed.",
                IamPolicyUpdated,
                OUR_HEADERS,
                "The export request's id.",
            ),
            Message(
                "GrantChanged",
                "A grant as the IAM service holds it now.",
                GrantChanged,
                "UpstreamEventHeaders",
                "Any: one key per stream of changes whose order matters.",
            ),
        ),
        ("request-api", "scheduler"),
        ("ingestor",),
    ),
    _ingest(
        Topic.MEASUREMENTS,
        "SenML-like measurements from upstream devices; bare, a pack, a list of records or one record.",
        MeasurementsPublished,
        MeasurementPack | list[MeasurementRecord] | MeasurementRecord,
        "Measurements",
        "The publisher (device) id: its readings stay in order.",
    ),
    _ingest(Topic.THINGS, "Thing metadata; a newer version wins.", ThingUpdated, Thing, "Things", "Its id."),
    _ingest(
        Topic.ENTITIES,
        "Business entities of any EntityType: upserted unless a newer version is stored.",
        EntityUpdated,
        Entity,
        "Entities",
        "The entity's id.",
    ),
)
DEAD_LETTER = Message(
    "DeadLetter",
    "A record its consumer refused, with its original key and bytes (`exporter dlq` lists, shows and "
    "replays them).",
    None,
    "DeadLetterHeaders",
    "The refused record's own key.",
    "application/octet-stream",
)


def _header_schemas() -> dict[str, Schema]:
    signed = {
        KEY_ID_HEADER: {"type": "string", "description": "The id of the key that signed the record."},
        SIGNATURE_HEADER: {
            "type": "string",
            "pattern": "^[0-9a-f]{64}$",
            "description": "HMAC-SHA256 (hex) of the topic name, a NUL byte and the value bytes.",
        },
    }
    tenant = {TENANT_HEADER: {"type": "string", "minLength": 1, "maxLength": 100}}
    content_type = {"content-type": {"type": "string"}}
    ours = {"content-type": {"const": CLOUDEVENTS_CONTENT_TYPE}}
    letters = {name: {"type": "string", "description": text} for name, text in DEAD_LETTER_HEADERS.items()}
    return {
        OUR_HEADERS: _object(ours | signed, required=["content-type", KEY_ID_HEADER, SIGNATURE_HEADER]),
        "UpstreamEventHeaders": _object(content_type | signed, required=[KEY_ID_HEADER, SIGNATURE_HEADER]),
        "IngestHeaders": _object(
            content_type | signed | tenant,
            description="Signature headers are required on the topics of `EXPORTER_KAFKA__SIGNED_TOPICS`; "
            f"`{TENANT_HEADER}`, if given, must name the envelope's tenant.",
        ),
        BARE_HEADERS: _object(content_type | signed | tenant, required=[TENANT_HEADER]),
        "DeadLetterHeaders": _object(
            letters,
            required=["x-dlq-reason"],
            description=f"Also the original record's headers, but for `{SIGNATURE_HEADER}`.",
            others={"type": "string"},
        ),
    }


def _object(
    properties: Schema, *, required: list[str] | None = None, description: str = "", others: Any = True
) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": others}
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


def _payload_schemas() -> tuple[dict[str, Schema], dict[str, Schema]]:
    """Each message's payload schema (a reference) and the schemas they refer to, from pydantic."""
    messages = [message for channel in CHANNELS for message in channel.messages]
    payloads, definitions = TypeAdapter.json_schemas(
        [(message.name, "validation", TypeAdapter(message.payload)) for message in messages],
        ref_template="#/components/schemas/{model}",
    )
    by_name = {name: _asyncapi_schema(schema) for (name, _), schema in payloads.items()}
    schemas = _asyncapi_schema(definitions.get("$defs", {}))
    for message in messages:
        if isinstance(message.payload, type) and issubclass(message.payload, Envelope):
            schema = schemas[message.payload.__name__]
            others = [name for name in schema["required"] if name not in CLOUDEVENT_REQUIRED]
            schema["required"] = [*CLOUDEVENT_REQUIRED, *others]
    return by_name, schemas


def _asyncapi_schema(node: Any) -> Any:
    """pydantic's JSON Schema in AsyncAPI's dialect: its ``discriminator`` is the property's name,
    where pydantic writes OpenAPI's object."""
    if isinstance(node, list):
        return [_asyncapi_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _asyncapi_schema(value) for key, value in node.items()}
    if isinstance(converted.get("discriminator"), dict):
        converted["discriminator"] = converted["discriminator"]["propertyName"]
    return converted


def server(kafka: KafkaSettings, description: str) -> Schema:
    """A broker as ``kafka`` connects to it: TLS makes it ``kafka-secure``; its SASL mechanism, or
    else its client certificate, is its security."""
    tls = kafka.security_protocol in ("SSL", "SASL_SSL")
    schemes: list[str] = []
    if kafka.security_protocol.startswith("SASL_"):
        schemes.append(kafka.sasl_mechanism)
    elif tls and kafka.cert_file is not None:
        schemes.append("X509")
    return _server(kafka.bootstrap_servers.split(",")[0].strip(), tls, schemes, description)


def _server(host: str, tls: bool, schemes: list[str], description: str) -> Schema:
    """``schemes``: alternatives, any of which the broker takes."""
    entry: Schema = {"host": host, "protocol": "kafka-secure" if tls else "kafka", "description": description}
    if schemes:
        entry["security"] = [{"$ref": f"#/components/securitySchemes/{SCHEMES[name]}"} for name in schemes]
    return entry


SCHEMES = {"SCRAM-SHA-256": "scramSha256", "SCRAM-SHA-512": "scramSha512", "PLAIN": "plain", "X509": "X509"}


def _servers(deployment: KafkaSettings | None) -> dict[str, Schema]:
    scram = ["SCRAM-SHA-512", "SCRAM-SHA-256"]
    servers = {
        "embedded": server(KafkaSettings(), "The embedded broker (Tansu) of `make run` and the tests."),
        "production": _server(
            PRODUCTION_HOST,
            False,
            scram,
            "Apache Kafka of docker-compose.yml with SASL/SCRAM (`EXPORTER_KAFKA__SECURITY_PROTOCOL` "
            "`SASL_PLAINTEXT`); its `PLAINTEXT` default takes no security.",
        ),
        "production-tls": _server(
            PRODUCTION_HOST,
            True,
            [*scram, "X509"],
            "The same over TLS: `SASL_SSL` with SCRAM, or `SSL` with a client certificate.",
        ),
    }
    if deployment is not None:
        servers["deployment"] = server(
            deployment, "The broker this deployment's services use, as configured."
        )
    return servers


def _operations(
    address: str, messages: list[str], senders: tuple[str, ...], receivers: tuple[str, ...]
) -> dict[str, Schema]:
    operations = {}
    for action, services in (("send", senders), ("receive", receivers)):
        for service in services:
            operations[f"{service}-{action}-{address}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{address}"},
                "messages": [{"$ref": f"#/channels/{address}/messages/{name}"} for name in messages],
                "tags": [{"name": service}],
                "summary": f"The {service} {action}s on `{address}`.",
            }
    return operations


def _channel(address: str, description: str, messages: list[str]) -> Schema:
    return {
        "address": address,
        "description": description,
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
        "bindings": {"kafka": {"topic": address, **KAFKA_BINDING}},
    }


def _message(message: Message, payload: Schema) -> Schema:
    return {
        "name": message.name,
        "title": message.name,
        "summary": message.summary,
        "contentType": message.content_type,
        "headers": {"$ref": f"#/components/schemas/{message.headers}"},
        "payload": payload,
        "bindings": {"kafka": {"key": {"type": "string", "description": message.key}, **KAFKA_BINDING}},
    }


def asyncapi_document(deployment: KafkaSettings | None = None) -> Schema:
    """The document; ``deployment`` adds the broker the running services use as a server."""
    payloads, schemas = _payload_schemas()
    channels: dict[str, Schema] = {}
    operations: dict[str, Schema] = {}
    messages = {
        DEAD_LETTER.name: _message(DEAD_LETTER, {"description": "The original record's bytes, or none."})
    }
    for channel in CHANNELS:
        names = [message.name for message in channel.messages]
        messages |= {message.name: _message(message, payloads[message.name]) for message in channel.messages}
        address, letters = channel.topic.value, channel.topic.dead_letter
        channels[address] = _channel(address, channel.description, names)
        channels[letters] = _channel(
            letters,
            f"The records refused on `{address}`, and its events too large to publish.",
            [DEAD_LETTER.name],
        )
        operations |= _operations(address, names, channel.senders, channel.receivers)
        # Consumers park what they refuse; the outbox relay parks an event too large to publish.
        operations |= _operations(
            letters, [DEAD_LETTER.name], (*channel.senders, *channel.receivers), ("exporter-cli",)
        )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Exporter",
            "version": version("exporter"),
            "description": "Every Kafka topic of the exporter's five services. Events are CloudEvents 1.0 in "
            "structured mode, signed (HMAC-SHA256 over topic and value).",
            "tags": [
                {"name": service}
                for service in (
                    "request-api",
                    "scheduler",
                    "renderer",
                    "notifier",
                    "ingestor",
                    "exporter-cli",
                )
            ],
        },
        "defaultContentType": CLOUDEVENTS_CONTENT_TYPE,
        "servers": _servers(deployment),
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas | _header_schemas(),
            "messages": messages,
            "securitySchemes": {name: {"type": name} for name in SCHEMES.values()},
        },
    }


def as_json(document: Schema) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def as_yaml(document: Schema) -> str:
    import yaml

    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Writes the AsyncAPI document as DIR/asyncapi.json and .yaml."
    )
    parser.add_argument("directory", type=Path, nargs="?", default=Path("docs"))
    directory = parser.parse_args().directory
    document = asyncapi_document()
    (directory / "asyncapi.json").write_text(as_json(document))
    (directory / "asyncapi.yaml").write_text(as_yaml(document))


if __name__ == "__main__":
    main()
