"""The demo export of ``make run``: real data through the ingestor, one export end to end.

The e2e tests use the same data and request, so what the README promises is what CI checks.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.kafka import client_options
from exporter.adapters.mongo.client import MEASUREMENTS, Document, connect, database
from exporter.contracts.events import MeasurementsPublished, ThingUpdated
from exporter.contracts.ingest import MeasurementPack, MeasurementRecord, Thing, ThingDefinition, ThingMetric
from exporter.settings import Settings
from exporter.signing import Headers, Producer, own_producer
from exporter.topics import Topic

START = datetime(2026, 1, 1, tzinfo=UTC)
DEVICE = "D0CF5EFFFE26FDAB1"
POINTS = 90  # one reading a minute from START
WINDOW_MINUTES = 60
DEMO_USER = "demo-user"
DEMO_RECIPIENT = "ops@localhost"  # the default settings let every tenant mail @localhost only

DEMO_EXPORT: dict[str, Any] = {
    "name": "Plant temperatures",
    "type": "oneTime",
    "format": {
        "extension": "csv",
        "columns": [
            {"id": "time", "label": "Ora"},
            {"id": "publisher", "label": "Dispositivo"},
            {"id": "value", "label": "Temperatura"},
            {"id": "unit", "label": "Unità"},
        ],
        "timezone": "Europe/Rome",
    },
    "items": [
        {
            "params": {
                "target": {"value": f"urn:cpt:smartdevice:nid:{DEVICE}:temperature", "label": "temperature"},
                "from": int(START.timestamp() * 1000),
                "to": int(START.timestamp() * 1000) + WINDOW_MINUTES * 60_000,
            },
            "filename": "plant-temperatures",
        }
    ],
    "notification": {
        "messages": [
            {
                "policy": "onSuccess",
                "medium": "email",
                "title": "Export ${export.name} is ready",
                "text": "${job.rows} rows: ${download.url}",
                "recipients": [DEMO_RECIPIENT],
            }
        ]
    },
}


def demo_measurements(tenant: str = "default") -> MeasurementsPublished:
    """One SenML pack: the device's temperature once a minute, times relative to ``START``."""
    pack = MeasurementPack(
        channel="plant-1",
        subtopic="events.data",
        publisher=DEVICE,
        protocol="mqtt",
        base_time=START.timestamp(),
        base_unit="Cel",
        records=[
            MeasurementRecord(name="temperature", time=60 * minute, value=round(20 + minute / 10, 1))
            for minute in range(POINTS)
        ],
    )
    return MeasurementsPublished(id="demo-batch-1", source="exporter/demo", tenant=tenant, data=pack)


def demo_thing(tenant: str = "default") -> ThingUpdated:
    """The demo device's metadata, for file-name masks such as ``${thing.serialNumber}``."""
    thing = Thing(
        id=DEVICE,
        version=1,
        serial_number="SN-0001",
        name="Plant 1 sensor",
        thing_definition=ThingDefinition(id="td-1", name="TemperatureSensor"),
        customer_id="customer-1",
        location_id="plant-1",
        metrics=[ThingMetric(name="temperature", unit="Cel")],
    )
    return ThingUpdated(id=f"demo-thing-{DEVICE}-v1", source="exporter/demo", tenant=tenant, data=thing)


async def publish(
    settings: Settings, topic: str, key: str, payload: dict[str, Any], signer: Producer | None = None
) -> None:
    """Publishes like an upstream system would: a plain Kafka producer, JSON value, signed as
    ``signer`` (by default with the services' own key, which the local services trust)."""
    value = json.dumps(payload).encode()
    headers = (signer or own_producer(settings.kafka)).raw_headers(topic, value)
    await send_record(settings, topic, key, value, headers)


async def send_record(settings: Settings, topic: str, key: str, value: bytes, headers: Headers) -> None:
    """One record, exactly these bytes and headers, from a plain Kafka producer."""
    producer = AIOKafkaProducer(**client_options(settings.kafka))
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key.encode(), headers=list(headers))
    finally:
        await producer.stop()


def read_mails(maildir: Path) -> list[tuple[Path, EmailMessage]]:
    return [
        (path, email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
        for path in sorted(maildir.glob("*.eml"))
    ]


def first_link(message: EmailMessage) -> str | None:
    body = message.get_body(preferencelist=("plain",))
    match = re.search(r"https?://\S+", body.get_content() if body else "")
    return match.group(0) if match else None


async def stored_readings(db: AsyncDatabase[Document], tenant: str) -> int:
    """The demo device's readings in the store: the sum of its live segments' counts."""
    live = {"tenant": tenant, "publisher": DEVICE, "retiredBy": {"$exists": False}}
    pipeline: list[Document] = [{"$match": live}, {"$group": {"_id": None, "readings": {"$sum": "$count"}}}]
    totals = await (await db[MEASUREMENTS].aggregate(pipeline)).to_list()
    return int(totals[0]["readings"]) if totals else 0


class DemoTimeout(TimeoutError):
    """A step of the demo did not finish in time; the message names the step and the likely cause."""


async def ingested(settings: Settings, tenant: str = "default", seconds: float = 60.0) -> None:
    """Waits until the ingestor has stored the demo readings: an export covers what is stored
    when it runs, and a one-time export runs at once."""
    client = connect(settings)
    stored = 0
    try:
        async with asyncio.timeout(seconds):
            # Polled: the ingestor is another process and announces nothing.
            while (stored := await stored_readings(database(client, settings), tenant)) < POINTS:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    except TimeoutError as error:
        raise DemoTimeout(
            f"storing the demo readings did not finish within {seconds:g} s ({stored} of {POINTS} "
            f"stored): the ingestor is behind on {Topic.MEASUREMENTS.value} (other producers' "
            "records first?) or not consuming; see its log"
        ) from error
    finally:
        await client.close()


async def run_demo(settings: Settings, api_url: str, maildir: Path, seconds: float = 120.0) -> str:
    """Ingests the demo data, asks for the export, waits for its email; returns a summary."""
    await publish(settings, Topic.THINGS.value, DEVICE, demo_thing().to_wire())
    await publish(settings, Topic.MEASUREMENTS.value, DEVICE, demo_measurements().to_wire())
    await ingested(settings)
    async with httpx.AsyncClient(base_url=api_url, headers={"X-User-Id": DEMO_USER}, timeout=10) as api:
        created = await api.post("/exports", json=DEMO_EXPORT)
        created.raise_for_status()
        request_id = created.json()["id"]
        loop = asyncio.get_running_loop()
        deadline, job = loop.time() + seconds, None
        while loop.time() < deadline:
            jobs = (await api.get(f"/exports/{request_id}/jobs")).json()["items"]
            job = jobs[0] if jobs else None
            mail = [(path, m) for path, m in read_mails(maildir) if job and job["id"] in str(m["Message-ID"])]
            if job and job["status"] == "failed":
                raise RuntimeError(f"the demo export failed: {job['error']}")
            if job and job["status"] == "done" and mail:
                path, message = mail[0]
                file = job["files"][0]
                return (
                    f"Export request {request_id}: job {job['id']} is {job['status']}, "
                    f"{job['rowCount']} rows in {file['name']} ({file['sizeInBytes']} bytes)\n"
                    f"Email to {message['To']} landed in {path}\n"
                    f"Download (link valid {settings.notifier.link_ttl_seconds // 60} minutes):\n"
                    f"  curl -o {file['name']} '{first_link(message)}'"
                )
            await asyncio.sleep(0.5)
    status = f"job {job['id']} is {job['status']}" if job else "no job was created"
    raise DemoTimeout(
        f"the demo export did not finish within {seconds:g} s ({status}): see the scheduler's, "
        "renderer's and notifier's logs"
    )
