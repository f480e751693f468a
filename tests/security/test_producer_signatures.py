"""Issue 14, finding 8: only configured producers may publish ``export.requested``,
``export.completed`` and grant events, each on its topics and for its tenants.

The renderer's and the ingestor's FastStream applications run in-process against the real broker
and store. Refused records must leave no trace but their dead letter (with the reason); the
consumer must carry on and take the valid record sent after them, on the same partition.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

import renderer.app
from exporter.adapters.mongo.client import GRANTS
from exporter.adapters.mongo.jobs import new_job_document
from exporter.contracts.events import ExportRequested
from exporter.contracts.job import JobSpec
from exporter.domain.job_life import JobStatus
from exporter.local.demo import publish, send_record
from exporter.runtime import Runtime
from exporter.settings import Settings
from exporter.signing import Headers, Producer
from exporter.topics import Topic
from ingestor.app import create_app as ingestor_app
from tests.integration import conftest as integration
from tests.integration.notifier_support import (
    ChatReceiver,
    NotifierProcess,
    chat_receiver,
    completed_event,
    deliveries,
    finished_job,
    notifier_settings,
)
from tests.integration.renderer_support import body, job_spec, series_item
from tests.integration.test_messaging import read_topic
from tests.signing import signer, with_producer

pytestmark = pytest.mark.servers
runtime = integration.runtime  # the fixture: a wired runtime with a database of its own

UPSTREAM = "acme-erp"
INTRUDER = Producer("intruder", b"intruder-secret-0123456789")
MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))


def spec_for(job_id: str, tenant: str) -> JobSpec:
    spec = job_spec(tenant, body("csv", [series_item("weight", *MARCH)]))
    return spec.model_copy(update={"job_id": job_id})


def export_requested(job_id: str, tenant: str, data_tenant: str | None = None) -> bytes:
    """An ad-hoc ``export.requested``; ``data_tenant`` makes its job another tenant's."""
    spec = spec_for(job_id, data_tenant or tenant)
    wire = ExportRequested(id=job_id, source="erp", subject=job_id, tenant=spec.tenant, data=spec).to_wire()
    return json.dumps({**wire, "tenant": tenant}).encode()


async def eventually(probe: Callable[[], Awaitable[bool]], seconds: float = 120) -> None:
    async with asyncio.timeout(seconds):
        while not await probe():
            await asyncio.sleep(0.2)


async def dead_letters(settings: Settings, topic: Topic, marker: str, expected: int) -> dict[str, str]:
    """Reasons of the dead letters of ``topic`` that contain ``marker``, by their event id."""
    letters = await read_topic(settings, topic.dead_letter, expected, marker)
    return {
        json.loads(letter.value)["id"]: dict(letter.headers)["x-dlq-reason"].decode() for letter in letters
    }


async def test_the_renderer_runs_only_ad_hoc_jobs_signed_by_a_producer_allowed_for_topic_and_tenant(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = uuid.uuid4().hex[:10]
    tenant, other = f"acme{run}", f"globex{run}"
    settings = with_producer(runtime.settings, UPSTREAM, [Topic.EXPORT_REQUESTED.value], [tenant])
    monkeypatch.setattr(renderer.app, "GROUP", f"renderer-{run}")  # from the topic's start, alone
    upstream, own, topic = signer(settings, UPSTREAM), signer(settings), Topic.EXPORT_REQUESTED.value

    def signed(by: Producer, value: bytes, for_topic: str = topic) -> tuple[bytes, Headers]:
        return value, by.raw_headers(for_topic, value)

    genuine = export_requested(f"{run}-tampered", tenant)
    tampered = genuine.replace(b'"owner": "alice"', b'"owner": "mallory"')
    refused: dict[str, tuple[tuple[bytes, Headers], str]] = {
        f"{run}-unsigned": ((export_requested(f"{run}-unsigned", tenant), []), "unsigned: "),
        f"{run}-unknown-key": (
            signed(INTRUDER, export_requested(f"{run}-unknown-key", tenant)),
            "unknown key id 'intruder'",
        ),
        f"{run}-tampered": (
            (tampered, upstream.raw_headers(topic, genuine)),
            f"bad signature for key '{UPSTREAM}'",
        ),
        f"{run}-replayed": (
            # The services' own export.completed signature, put on export.requested.
            signed(own, export_requested(f"{run}-replayed", tenant), Topic.EXPORT_COMPLETED.value),
            "bad signature for key 'exporter'",
        ),
        f"{run}-foreign-tenant": (
            signed(upstream, export_requested(f"{run}-foreign-tenant", other)),
            f"tenant not allowed: key '{UPSTREAM}' may not act for '{other}'",
        ),
        f"{run}-foreign-job": (
            signed(upstream, export_requested(f"{run}-foreign-job", tenant, data_tenant=other)),
            f"data.tenant '{other}' differs from the envelope's '{tenant}'",
        ),
    }
    assert tampered != genuine
    # A validly signed event that names a job another tenant already has.
    others = f"{run}-others-job"
    await runtime.jobs.add(new_job_document(spec_for(others, other), []))
    valid = f"{run}-valid"
    # One key, one partition: the valid event is consumed after every refused one.
    for (value, headers), _ in refused.values():
        await send_record(settings, topic, run, value, headers)
    await send_record(settings, topic, run, *signed(upstream, export_requested(others, tenant)))
    await send_record(settings, topic, run, *signed(upstream, export_requested(valid, tenant)))

    async def finished() -> bool:
        job = await runtime.jobs.get(valid)
        return job is not None and job.status.is_final

    async with renderer.app.create_app(settings):
        await eventually(finished)

    assert [job_id for job_id in refused if await runtime.jobs.get(job_id) is not None] == []
    done, queued = await runtime.jobs.get(valid), await runtime.jobs.get(others)
    assert done is not None
    assert done.status is JobStatus.DONE
    assert queued is not None
    assert queued.status is JobStatus.NOT_PROCESSED
    reasons = await dead_letters(settings, Topic.EXPORT_REQUESTED, run, len(refused) + 1)
    for job_id, (_, reason) in refused.items():
        assert reason in reasons.get(job_id, "not dead-lettered"), job_id
    assert reasons.get(others) == f"tenant not allowed: job '{others}' belongs to another tenant"
    assert valid not in reasons


def grant_event(run: str, tenant: str, name: str) -> bytes:
    grant_id = f"{run}-{name}"
    data = {"grantId": grant_id, "tenant": tenant, "subjects": ["user:bob"], "version": 1}
    data |= {"actions": ["exporter:exports:read"], "resource": grant_id}
    event = {"id": grant_id, "type": "iam.grant.changed.v1", "source": "iam", "tenant": tenant, "data": data}
    return json.dumps(event).encode()


def thing_event(run: str, tenant: str, name: str) -> bytes:
    thing = {"id": f"{run}-{name}", "version": 1, "serialNumber": name}
    thing["thingDefinition"] = {"id": "td", "name": "Boiler"}
    event = {"id": f"{run}-{name}", "type": "exporter.thing.updated.v1", "source": "erp", "tenant": tenant}
    return json.dumps({**event, "data": thing}).encode()


async def test_the_ingestor_takes_grants_and_signed_ingest_topics_only_from_allowed_producers(
    runtime: Runtime,
) -> None:
    run = uuid.uuid4().hex[:10]
    tenant, other = f"acme{run}", f"globex{run}"
    grants, things = Topic.IAM_POLICY_UPDATED, Topic.THINGS
    settings = with_producer(runtime.settings, "iam", [grants.value], ["*"])
    settings = with_producer(settings, "erp", [things.value], [tenant])
    kafka = settings.kafka.model_copy(update={"signed_topics": [*settings.kafka.signed_topics, things.value]})
    ingestor = settings.ingestor.model_copy(update={"group_id": f"ingestor-{run}"})
    settings = settings.model_copy(update={"kafka": kafka, "ingestor": ingestor})
    iam, erp = signer(settings, "iam"), signer(settings, "erp")

    unsigned_grant = grant_event(run, tenant, "unsigned")
    await send_record(settings, grants.value, run, unsigned_grant, [])
    erp_grant = grant_event(run, tenant, "by-erp")  # erp may not publish grants
    await send_record(settings, grants.value, run, erp_grant, erp.raw_headers(grants.value, erp_grant))
    valid_grant = grant_event(run, tenant, "valid")
    await send_record(settings, grants.value, run, valid_grant, iam.raw_headers(grants.value, valid_grant))
    # Things are consumed in batches: the refused records leave the batch, the rest is stored.
    await send_record(settings, things.value, run, thing_event(run, tenant, "unsigned"), [])
    foreign = thing_event(run, other, "foreign")
    await send_record(settings, things.value, run, foreign, erp.raw_headers(things.value, foreign))
    valid_thing = thing_event(run, tenant, "valid")
    await send_record(settings, things.value, run, valid_thing, erp.raw_headers(things.value, valid_thing))

    async def stored() -> bool:
        grant = await runtime.db[GRANTS].find_one({"_id": f"{run}-valid"})
        return grant is not None and await runtime.things.get(tenant, f"{run}-valid") is not None

    async with ingestor_app(settings):
        await eventually(stored)

    grant_ids = [document["_id"] async for document in runtime.db[GRANTS].find({"tenant": tenant})]
    assert grant_ids == [f"{run}-valid"]
    assert await runtime.things.get(tenant, f"{run}-unsigned") is None
    assert await runtime.things.get(other, f"{run}-foreign") is None
    grant_reasons = await dead_letters(settings, grants, run, 2)
    assert grant_reasons[f"{run}-unsigned"].startswith("unsigned: ")
    assert grant_reasons[f"{run}-by-erp"] == f"topic not allowed: key 'erp' may not publish to '{grants}'"
    thing_reasons = await dead_letters(settings, things, run, 2)
    assert thing_reasons[f"{run}-unsigned"].startswith("unsigned: ")
    assert thing_reasons[f"{run}-foreign"] == f"tenant not allowed: key 'erp' may not act for '{other}'"


async def test_every_event_the_services_publish_is_signed_with_their_key(runtime: Runtime) -> None:
    """The outbox relay's publisher signs: a consumer checking signatures takes what it sent."""
    run = uuid.uuid4().hex[:10]
    await runtime.publisher.publish_raw(Topic.EXPORT_COMPLETED.value, run, {"id": run, "tenant": run})
    [record] = await read_topic(runtime.settings, Topic.EXPORT_COMPLETED.value, 1, run)
    signed = signer(runtime.settings).raw_headers(record.topic, record.value)
    assert set(signed) <= set(record.headers)


chat = pytest.fixture(scope="module")(chat_receiver)


async def test_the_notifier_takes_export_completed_only_from_allowed_producers(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    """The notifier's batch consumer, as a process configured by its environment alone."""
    topic = Topic.EXPORT_COMPLETED.value
    settings = with_producer(notifier_settings(runtime.settings, chat), "erp", [topic], ["x"])
    messages = [{"medium": "discord", "text": "${job.id}", "recipients": ["webhook:ops"]}]
    unsigned, unsigned_result = await finished_job(runtime, messages, tmp_path)
    foreign, foreign_result = await finished_job(runtime, messages, tmp_path)
    valid, valid_result = await finished_job(runtime, messages, tmp_path)
    # One key, one partition: the valid event is consumed after the refused ones.
    key = valid.job_id
    value = json.dumps(completed_event(unsigned, unsigned_result).to_wire()).encode()
    await send_record(settings, topic, key, value, [])
    value = json.dumps(completed_event(foreign, foreign_result).to_wire()).encode()
    await send_record(settings, topic, key, value, signer(settings, "erp").raw_headers(topic, value))
    await publish(settings, topic, key, completed_event(valid, valid_result).to_wire())

    process = NotifierProcess(settings, tmp_path / "notifier.log")
    await process.start()
    try:
        [entry] = await deliveries(runtime, valid.job_id)
    finally:
        process.stop()

    assert entry.status == "sent"
    reasons = {
        **await dead_letters(settings, Topic.EXPORT_COMPLETED, unsigned.job_id, 1),
        **await dead_letters(settings, Topic.EXPORT_COMPLETED, foreign.job_id, 1),
    }
    assert reasons[f"{unsigned.job_id}:completed"].startswith("unsigned: ")
    assert reasons[f"{foreign.job_id}:completed"] == "tenant not allowed: key 'erp' may not act for 'default'"
