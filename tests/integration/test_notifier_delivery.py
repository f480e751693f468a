"""Which messages go out, and that each goes out once: policies, redelivery, batches, sweeps, shutdown."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from exporter.adapters.mongo.client import JOBS
from exporter.adapters.mongo.deliveries import DeliveryResult, delivery_result
from exporter.contracts.job import Delivery
from exporter.domain.job_life import DeliveryStatus, JobStatus
from exporter.runtime import Runtime
from exporter.service_layer.unit_of_work import UnitOfWork
from notifier.attempts import CUT_OFF, delivery_key
from notifier.results import DeliveryResults
from tests.integration.notifier_support import (
    ChatReceiver,
    chat_receiver,
    completed_event,
    deliveries,
    entries_when,
    finished_job,
    make_notifier,
    notifier_settings,
)

chat = pytest.fixture(scope="module")(chat_receiver)
POLICIES = [
    {
        "policy": policy,
        "medium": "discord",
        "title": f"{policy} ${{job.status}}",
        "recipients": ["webhook:ops"],
    }
    for policy in ("onSuccess", "onFailure", "always")
]


def titles(chat: ChatReceiver, job_id: str, before: int) -> list[str]:
    """Titles of the Discord posts about ``job_id`` since the first ``before`` posts."""
    posts = chat.calls("/webhooks/discord-ops")[before:]
    return sorted(p.json["embeds"][0]["title"] for p in posts if job_id in p.json["embeds"][0]["description"])


@pytest.mark.parametrize(
    ("status", "outcomes"),
    [
        (JobStatus.DONE, ["sent", "skipped", "sent"]),
        (JobStatus.FAILED, ["skipped", "sent", "sent"]),
    ],
)
async def test_each_policy_sends_or_records_skipped(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path, status: JobStatus, outcomes: list[str]
) -> None:
    messages = [{**m, "text": "${job.id}"} for m in POLICIES]
    spec, result = await finished_job(runtime, messages, tmp_path, status=status)
    before = len(chat.calls("/webhooks/discord-ops"))

    await make_notifier(runtime, notifier_settings(runtime.settings, chat)).on_export_completed(
        [completed_event(spec, result)]
    )
    entries = await deliveries(runtime, spec.job_id)

    assert [e.status for e in entries] == outcomes
    [skipped] = [e for e in entries if e.status == "skipped"]
    assert skipped.detail == f"policy {skipped.policy} does not apply to a {status.value} job"
    assert skipped.attempts == 0
    sent_policies = [m["policy"] for m, outcome in zip(POLICIES, outcomes, strict=True) if outcome == "sent"]
    assert titles(chat, spec.job_id, before) == sorted(f"{p} {status.value}" for p in sent_policies)


async def test_a_redelivered_export_completed_sends_nothing_twice(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    messages = [{**m, "text": "${job.id}"} for m in POLICIES]
    spec, result = await finished_job(runtime, messages, tmp_path)
    event = completed_event(spec, result)
    before = len(chat.calls("/webhooks/discord-ops"))
    settings = notifier_settings(runtime.settings, chat)
    first, second = make_notifier(runtime, settings), make_notifier(runtime, settings)

    # Two notifiers get the event at once (a rebalance), and one of them gets it again later.
    await asyncio.gather(first.on_export_completed([event]), second.on_export_completed([event]))
    entries = await deliveries(runtime, spec.job_id)
    await second.on_export_completed([event])
    await second.sweep()

    assert [e.status for e in entries] == ["sent", "skipped", "sent"]
    assert [e.attempts for e in await deliveries(runtime, spec.job_id)] == [1, 0, 1]
    assert titles(chat, spec.job_id, before) == ["always done", "onSuccess done"]


async def test_a_sweep_delivers_what_no_event_announced(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    spec, _ = await finished_job(runtime, [{**POLICIES[2], "text": "${job.id}"}], tmp_path)
    before = len(chat.calls("/webhooks/discord-ops"))
    notifier = make_notifier(runtime, notifier_settings(runtime.settings, chat, sweep_interval_seconds=0.1))

    await asyncio.sleep(0.2)  # the job finished longer ago than the sweep's grace
    assert await notifier.sweep() == 1
    [entry] = await deliveries(runtime, spec.job_id)

    assert entry.status == "sent"
    assert titles(chat, spec.job_id, before) == ["always done"]


async def test_a_damaged_job_does_not_stop_a_sweep_from_notifying_the_others(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    messages = [{**POLICIES[2], "text": "${job.id}"}]
    jobs = [(await finished_job(runtime, messages, tmp_path))[0].job_id for _ in range(3)]
    bad_spec, bad_entry, healthy = jobs
    await runtime.db[JOBS].update_one({"_id": bad_spec}, {"$set": {"spec": {"damaged": True}}})
    await runtime.db[JOBS].update_one({"_id": bad_entry}, {"$set": {"notifications.0.attempts": "twice"}})
    before = len(chat.calls("/webhooks/discord-ops"))
    notifier = make_notifier(runtime, notifier_settings(runtime.settings, chat, sweep_interval_seconds=0.1))

    await asyncio.sleep(0.2)  # the jobs finished longer ago than the sweep's grace
    assert await notifier.sweep() == 3
    [entry] = await deliveries(runtime, healthy)

    assert entry.status == "sent"
    assert [title for job_id in jobs for title in titles(chat, job_id, before)] == ["always done"]
    damaged = runtime.db[JOBS].find({"_id": {"$in": [bad_spec, bad_entry]}}).sort("_id")
    assert [job["notifications"][0]["status"] async for job in damaged] == ["pending", "pending"]


async def test_a_send_cut_off_by_a_crash_is_recorded_as_failed_and_never_resent(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    spec, _ = await finished_job(runtime, [{**POLICIES[2], "text": "${job.id}"}], tmp_path)
    before = len(chat.calls("/webhooks/discord-ops"))
    # A notifier claimed the delivery, then died before recording what became of it.
    key = delivery_key(spec.job_id, 0)
    assert await runtime.jobs.claim_deliveries(spec.job_id, {0: (key, 0)}, timedelta(seconds=0.2))
    notifier = make_notifier(runtime, notifier_settings(runtime.settings, chat, sweep_interval_seconds=0.1))

    await asyncio.sleep(0.3)  # past the claim's lease
    await notifier.sweep()
    [entry] = await deliveries(runtime, spec.job_id)

    assert (entry.status, entry.attempts, entry.last_error) == ("failed", 1, CUT_OFF)
    assert titles(chat, spec.job_id, before) == []


async def test_shutdown_lets_a_send_in_flight_finish_and_be_recorded(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    spec, result = await finished_job(runtime, [{**POLICIES[2], "recipients": ["webhook:dev"]}], tmp_path)
    gate = chat.hold("/webhooks/discord-dev")
    notifier = make_notifier(runtime, notifier_settings(runtime.settings, chat))
    try:
        await notifier.on_export_completed([completed_event(spec, result)])
        await entries_when(runtime, spec.job_id, lambda e: e[0].status == "sending", "the send")
        draining = asyncio.create_task(notifier.drain())
        await asyncio.sleep(0.2)
        assert not draining.done()  # waiting for the send, not cutting it off
    finally:
        gate.set()
    await draining
    [entry] = await deliveries(runtime, spec.job_id)
    assert (entry.status, entry.attempts) == ("sent", 1)


async def test_a_batch_claims_its_jobs_together_and_leaves_another_notifiers_claim_alone(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    jobs = [await finished_job(runtime, [{**POLICIES[2], "text": "${job.id}"}], tmp_path) for _ in range(3)]
    held = jobs[2][0].job_id
    # Another notifier claimed the third job's message and is sending it.
    assert await runtime.jobs.claim_deliveries(held, {0: (delivery_key(held, 0), 0)}, timedelta(minutes=5))
    before = len(chat.calls("/webhooks/discord-ops"))
    notifier = make_notifier(runtime, notifier_settings(runtime.settings, chat))

    await notifier.on_export_completed([completed_event(spec, result) for spec, result in jobs])
    sent = [(await deliveries(runtime, spec.job_id))[0] for spec, _ in jobs[:2]]
    await notifier.drain()

    assert [(e.status, e.attempts) for e in sent] == [("sent", 1), ("sent", 1)]
    job = await runtime.jobs.get(held)
    assert job is not None
    [entry] = job.notifications
    assert (entry.status, entry.attempts) == ("sending", 1)
    for spec, _ in jobs:
        assert titles(chat, spec.job_id, before) == ([] if spec.job_id == held else ["always done"])


async def test_a_result_after_its_claim_was_cut_off_changes_nothing_and_the_other_is_recorded(
    runtime: Runtime, tmp_path: Path
) -> None:
    spec, _ = await finished_job(runtime, [POLICIES[2], POLICIES[2]], tmp_path)
    job_id = spec.job_id
    claims = {index: (delivery_key(job_id, index), 0) for index in (0, 1)}
    assert await runtime.jobs.claim_deliveries(job_id, claims, timedelta(seconds=0.2))
    await asyncio.sleep(0.3)  # past the claims' lease: a sweep cuts the first one off
    assert await runtime.jobs.cut_off_delivery(job_id, 0, 1, CUT_OFF)
    results = DeliveryResults(UnitOfWork.of(runtime), runtime.jobs)

    def sent(index: int) -> DeliveryResult:
        outcome = DeliveryStatus.SENT
        return delivery_result(job_id, index, 1, outcome, recipients=["x"], sent_to=["x"], refused={})

    # Both results in one write, as when they arrive together.
    await asyncio.gather(results.record(sent(0)), results.record(sent(1)))
    job = await runtime.jobs.get(job_id)
    assert job is not None
    first, second = job.notifications

    assert (first.status, first.last_error, "sent_to" in first.model_fields_set) == ("failed", CUT_OFF, False)
    assert (second.status, second.sent_to, second.lease_until) == ("sent", ["x"], None)


async def test_a_claim_on_the_deliveries_as_read_matches_them_after_every_write(
    runtime: Runtime, tmp_path: Path
) -> None:
    """The typed deliveries give the stored entries back field for field, in their order: the
    claim compares the whole array, and a mismatch would refuse every claim made on a read."""
    spec, _ = await finished_job(runtime, [POLICIES[2]] * 3, tmp_path)
    job_id = spec.job_id
    lease = timedelta(seconds=30)

    async def as_read() -> list[Delivery]:
        job = await runtime.jobs.get(job_id)
        assert job is not None
        stored = await runtime.db[JOBS].find_one({"_id": job_id})
        assert stored is not None
        assert [list(d.to_stored().items()) for d in job.notifications] == [
            list(entry.items()) for entry in stored["notifications"]
        ]
        return job.notifications

    claim = {0: (delivery_key(job_id, 0), 0)}
    assert await runtime.jobs.claim_deliveries(job_id, claim, lease, {1: "skipped"}, await as_read())
    sent = delivery_result(job_id, 0, 1, DeliveryStatus.SENT, recipients=["x"], sent_to=["x"], refused={})
    await runtime.jobs.record_results([sent])
    claim = {2: (delivery_key(job_id, 2), 0)}
    assert await runtime.jobs.claim_deliveries(job_id, claim, lease, seen=await as_read())
    assert not await runtime.jobs.claim_deliveries(job_id, claim, lease, seen=[])  # it compares
    assert [d.status for d in await as_read()] == ["sent", "skipped", "sending"]
