"""The chaos run's workload, drawn from its seed: readings streaming into the ingestor, export
requests over HTTP (one-time and recurring, every format, some split and zipped, email and chat
notifications), their edits, deletes and job cancels, ad-hoc ``export.requested`` from an upstream
producer, and IAM grant changes. It records what it did, for the checks.

Each call is retried through faults as a careful client would: a create with the same
``Idempotency-Key``, a record with the same bytes (so a retry is a redelivery, never new work).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from exporter.adapters.kafka import client_options
from exporter.contracts.events import ExportRequested, GrantChanged, GrantChangedData, MeasurementsPublished
from exporter.contracts.ingest import MeasurementPack, MeasurementRecord
from exporter.contracts.request import ExportRequestSpec
from exporter.domain.jobs import job_for
from exporter.local.demo import DEMO_RECIPIENT, DEMO_USER, START
from exporter.settings import Settings
from exporter.signing import Producer
from exporter.topics import Topic
from tests.chaos.sinks import CHAT_TITLE, CHAT_WEBHOOK
from tests.chaos.system import TENANT, UPSTREAM
from tests.signing import signer

FORMATS = ["csv", "xlsx", "pdf", "json", "jsonl"]
HISTORY_DEVICE = "CHAOS-HIST"
HISTORY_POINTS = 600  # one reading a minute from START: what the exports read
LIVE_DEVICES = 4
LIVE_BASE = datetime(2025, 6, 1, tzinfo=UTC)  # live readings' times: in the past, one a second
PACK_READINGS = 20
CALL_SECONDS = 15.0


@dataclass
class Created:
    """An export request the workload created, and what became of it."""

    id: str
    body: dict[str, Any]
    expected_rows: int | None  # rows of each done job, known from the history data; None: not known
    edited: bool = False
    deleted: bool = False  # by the workload, as a user would
    closed: bool = False  # deleted by ``close`` at the end: its schedule ran until then


@dataclass
class Done:
    """What the workload did, for the checks."""

    requests: dict[str, Created] = field(default_factory=dict)
    adhoc_jobs: list[str] = field(default_factory=list)
    readings: dict[str, int] = field(default_factory=dict)
    grants: dict[str, int] = field(default_factory=dict)
    cancels: int = 0
    fired_until: datetime | None = None  # before ``close``: every run due up to here had fired
    refused: list[str] = field(default_factory=list)  # calls that failed for good, with why


def readings(event_id: str, device: str, base: datetime, count: int, step: int) -> MeasurementsPublished:
    """``count`` temperature readings of ``device``, ``step`` seconds apart from ``base``."""
    pack = MeasurementPack(
        channel="chaos",
        publisher=device,
        base_time=base.timestamp(),
        base_unit="Cel",
        records=[
            MeasurementRecord(name="temperature", time=step * i, value=float(i % 50)) for i in range(count)
        ],
    )
    return MeasurementsPublished(id=event_id, source="chaos", tenant=TENANT, data=pack)


def history_pack() -> MeasurementsPublished:
    """One reading a minute from ``START``: what every export reads."""
    return readings("chaos-history", HISTORY_DEVICE, START, HISTORY_POINTS, 60)


def export_body(rng: random.Random, recurring: bool, index: int) -> tuple[dict[str, Any], int]:
    """A request over the history data, and the rows each of its runs holds."""
    extension = FORMATS[index % len(FORMATS)]
    items, rows = [], 0
    for number in range(rng.choice([1, 1, 2, 3])):  # several items: the files are zipped too
        first = rng.randrange(0, HISTORY_POINTS - 120)
        span = rng.choice([5, 30, 90])  # 90 rows are split at the chaos settings' 40
        frm = START + timedelta(minutes=first)
        items.append(
            {
                "params": {
                    "target": {"value": f"urn:cpt:smartdevice:nid:{HISTORY_DEVICE}:temperature"},
                    "from": int(frm.timestamp() * 1000),
                    "to": int((frm + timedelta(minutes=span)).timestamp() * 1000),
                },
                "filename": f"item-{number}",
            }
        )
        rows += span
    messages: list[dict[str, Any]] = []
    if rng.random() < 0.7:
        messages.append(
            {"policy": "always", "medium": "email", "title": "${job.id}", "recipients": [DEMO_RECIPIENT]}
        )
    if rng.random() < 0.5:
        title = CHAT_TITLE.replace("INDEX", str(len(messages)))
        messages.append(
            {
                "policy": "always",
                "medium": "discord",
                "title": title,
                "recipients": [f"webhook:{CHAT_WEBHOOK}"],
            }
        )
    body: dict[str, Any] = {
        "name": f"chaos {index}",
        "type": "recurring" if recurring else "oneTime",
        "format": {"extension": extension, "timezone": "UTC"},
        "items": items,
    }
    if recurring:
        body |= {"periodicity": f"PT{rng.choice([20, 30, 45, 60])}S", "catchUp": "all"}
    if messages:
        body["notification"] = {"messages": messages}
    return body, rows


class Workload:
    def __init__(self, settings: Settings, api_url: str, seed: int, exports: int) -> None:
        self.settings = settings
        self.rng = random.Random(seed)
        self.exports = exports
        self.done = Done()
        self._api = httpx.AsyncClient(
            base_url=api_url, headers={"X-User-Id": DEMO_USER}, timeout=CALL_SECONDS
        )
        self._producer = AIOKafkaProducer(**client_options(settings.kafka), request_timeout_ms=10_000)
        self._own: Producer = signer(settings)
        self._upstream: Producer = signer(settings, UPSTREAM)
        self._live_sequence = 0
        self._grant_versions: dict[str, int] = {}

    async def __aenter__(self) -> Workload:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._api.aclose()
        await self._producer.stop()

    async def run(self, seconds: float) -> None:
        """Creates the exports spread over the first two thirds of ``seconds``; meanwhile streams
        readings, edits, deletes, cancels, ad-hoc requests and grants; returns at ``seconds``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        gap = seconds * 2 / 3 / max(self.exports, 1)
        index = 0
        while (now := loop.time()) < end:
            tasks = [self.stream_readings()]
            if index < self.exports and now >= end - seconds + index * gap:
                tasks.append(self.create(index))
                index += 1
            roll = self.rng.random()
            if roll < 0.05:
                tasks.append(self.edit_or_delete())
            elif roll < 0.08:
                tasks.append(self.cancel_a_job())
            elif roll < 0.11:
                tasks.append(self.adhoc())
            elif roll < 0.14:
                tasks.append(self.grant())
            await asyncio.gather(*tasks)
            await asyncio.sleep(max(0.0, min(gap, 1.0) - (loop.time() - now)))

    async def close(self) -> None:
        """Deletes the recurring requests still live, so nothing fires while the checks read."""
        for created in self.done.requests.values():
            if created.body["type"] == "recurring" and not created.deleted:
                response = await self.call("DELETE", f"/exports/{created.id}")
                created.closed = response is not None and response.status_code == 200

    async def publish_history(self) -> None:
        """The readings every export reads: published before the exports, so their rows are known."""
        await self.publish(Topic.MEASUREMENTS, HISTORY_DEVICE, history_pack().to_wire())
        self.done.readings[HISTORY_DEVICE] = HISTORY_POINTS

    async def publish(
        self, topic: Topic, key: str, event: dict[str, Any], by: Producer | None = None
    ) -> None:
        """Sends until the broker acknowledges: the same bytes each time."""
        value = json.dumps(event).encode()
        headers = list((by or self._own).raw_headers(topic.value, value))
        while True:
            try:
                async with asyncio.timeout(CALL_SECONDS):
                    await self._producer.send_and_wait(topic.value, value, key=key.encode(), headers=headers)
                return
            except Exception:  # the broker restarting: any error is "not yet"
                await asyncio.sleep(1.0)

    async def call(self, method: str, path: str, **options: Any) -> httpx.Response | None:
        """An API call retried through transport errors and 5xx (a 503 while MongoDB is away)."""
        for _ in range(20):
            try:
                response = await self._api.request(method, path, **options)
            except httpx.TransportError:
                await asyncio.sleep(1.0)
                continue
            if response.status_code < 500:
                return response
            await asyncio.sleep(1.0)
        self.done.refused.append(f"{method} {path}: no answer below 500 after 20 tries")
        return None

    async def stream_readings(self) -> None:
        device = f"CHAOS-LIVE-{self._live_sequence % LIVE_DEVICES}"
        base = LIVE_BASE + timedelta(seconds=self._live_sequence * PACK_READINGS)
        self._live_sequence += 1
        event = readings(f"live-{self._live_sequence}", device, base, PACK_READINGS, 1)
        await self.publish(Topic.MEASUREMENTS, device, event.to_wire())
        self.done.readings[device] = self.done.readings.get(device, 0) + PACK_READINGS

    async def create(self, index: int) -> None:
        body, rows = export_body(self.rng, self.rng.random() < 0.3, index)
        headers = {"Idempotency-Key": f"chaos-{index}-{uuid.UUID(int=self.rng.getrandbits(128))}"}
        response = await self.call("POST", "/exports", json=body, headers=headers)
        if response is None or response.status_code != 201:
            self.done.refused.append(f"create {index}: {response and response.text[:200]}")
            return
        request_id = response.json()["id"]
        self.done.requests[request_id] = Created(request_id, body, rows)

    async def edit_or_delete(self) -> None:
        live = [created for created in self.done.requests.values() if not created.deleted]
        if not live:
            return
        created = self.rng.choice(live)
        if self.rng.random() < 0.5:
            body = created.body | {"name": f"{created.body['name']} (edited)"}
            response = await self.call("PUT", f"/exports/{created.id}", json=body)
            created.edited = created.edited or (response is not None and response.status_code == 200)
        else:
            response = await self.call("DELETE", f"/exports/{created.id}")
            created.deleted = created.deleted or (
                response is not None and response.status_code in (200, 204, 410)
            )

    async def cancel_a_job(self) -> None:
        if not self.done.requests:
            return
        created = self.rng.choice(list(self.done.requests.values()))
        jobs = await self.call("GET", f"/exports/{created.id}/jobs")
        if jobs is None or jobs.status_code != 200 or not jobs.json()["items"]:
            return
        job = self.rng.choice(jobs.json()["items"])
        cancelled = await self.call("POST", f"/jobs/{job['id']}/cancel")
        self.done.cancels += cancelled is not None and cancelled.status_code == 200

    async def adhoc(self) -> None:
        """An upstream system's own export, published as the scheduler would publish a job."""
        body, _ = export_body(self.rng, False, len(self.done.adhoc_jobs))
        now = datetime.now(UTC)
        request = ExportRequestSpec.model_validate(body).stored(
            request_id=f"adhoc-{self.rng.getrandbits(48):012x}",
            tenant=TENANT,
            owner=DEMO_USER,
            version=1,
            created_at=now,
            updated_at=now,
        )
        spec = job_for(request, now)
        event = ExportRequested(id=f"adhoc-{spec.job_id}", source=UPSTREAM, tenant=TENANT, data=spec)
        await self.publish(Topic.EXPORT_REQUESTED, spec.job_id, event.to_wire(), self._upstream)
        self.done.adhoc_jobs.append(spec.job_id)

    async def grant(self) -> None:
        grant_id = f"chaos-grant-{self.rng.randrange(5)}"
        version = self._grant_versions[grant_id] = self._grant_versions.get(grant_id, 0) + 1
        data = GrantChangedData(
            grant_id=grant_id,
            tenant=TENANT,
            subjects=[f"user:reader-{version}"],
            actions=["exporter:exports:read"],
            version=version,
        )
        event = GrantChanged(id=f"{grant_id}-v{version}", source="iam", tenant=TENANT, data=data)
        await self.publish(Topic.IAM_POLICY_UPDATED, grant_id, event.to_wire())
        self.done.grants[grant_id] = version
