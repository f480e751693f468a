"""The service layer's decisions, on fakes: fast, beside the integration tests on real servers.

Admission (quota and target conflicts), a delivery's retries and give-up, poison isolation when
firing, and the unit of work's promise that a retried transaction publishes once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from pymongo import AsyncMongoClient

from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.outbox import OutboxRepository
from exporter.adapters.mongo.requests import Identity, RequestRecord, Unreadable
from exporter.contracts.job import job_id_for
from exporter.contracts.request import ExportRequest, ExportRequestSpec
from exporter.domain.job_life import DeliveryStatus, JobStatus
from exporter.service_layer.outbox import OutboxRelay
from exporter.service_layer.unit_of_work import Transaction, UnitOfWork
from exporter.settings import ApiSettings, OutboxSettings, SchedulerSettings
from exporter.settings.notifier import NotifierSettings
from exporter.topics import Topic
from notifier.attempts import Attempt, Progress, after_attempt
from request_api.commands import admit_job
from request_api.errors import Conflict, TooManyRequests
from scheduler import firing
from scheduler.firing import RESUME, plan_or_pause
from tests.fakes import FakeClient, FakeOutbox, FakePublisher, FakeSession, FakeTransaction
from tests.request_cases import SEED_000, with_fields

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
TARGET = SEED_000["items"][0]["params"]["target"]["value"]


def export_request(owner: str = "alice", request_id: str = "r-1") -> ExportRequest:
    """Seed 000, run once at ``NOW``."""
    body = with_fields({"type": "oneTime", "startAt": NOW.isoformat()})
    body.pop("periodicity")
    spec = ExportRequestSpec.model_validate(body)
    return spec.stored(
        request_id=request_id, tenant="acme", owner=owner, version=1, created_at=NOW, updated_at=NOW
    )


def job(job_id: str, owner: str, status: JobStatus, targets: list[str]) -> Document:
    return {"_id": job_id, "tenant": "acme", "owner": owner, "status": status.value, "targets": targets}


# Admission (the request-api's "run now" and one-time creates).


async def test_an_admitted_job_is_stored_and_its_export_requested_raised() -> None:
    transaction = FakeTransaction()

    await admit_job(ApiSettings(), export_request(), NOW, transaction, "someone")

    job_id = job_id_for("r-1", NOW)
    assert transaction.jobs.documents[job_id]["status"] == JobStatus.NOT_PROCESSED.value
    assert [(m["topic"], m["key"], m["id"]) for m in transaction.raised] == [
        (Topic.EXPORT_REQUESTED.value, job_id, job_id)
    ]
    # Serialized first, on the owner and the target: concurrent admissions conflict.
    assert transaction.admissions.serialized == [("acme", "alice", [TARGET])]


async def test_a_full_quota_refuses_with_429_and_stores_nothing() -> None:
    settings = ApiSettings(max_active_jobs_per_user=2, quota_retry_after_seconds=7)
    transaction = FakeTransaction()
    for index, status in enumerate([JobStatus.NOT_PROCESSED, JobStatus.IN_PROGRESS]):
        await transaction.jobs.add(job(f"j{index}", "alice", status, [f"other-{index}"]))

    with pytest.raises(TooManyRequests) as refused:
        await admit_job(settings, export_request(), NOW, transaction, "someone")

    assert refused.value.headers == {"Retry-After": "7"}
    assert len(transaction.jobs.documents) == 2
    assert transaction.raised == []


async def test_finished_jobs_do_not_count_against_the_quota() -> None:
    transaction = FakeTransaction()
    for index, status in enumerate([JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED]):
        await transaction.jobs.add(job(f"j{index}", "alice", status, [TARGET]))

    await admit_job(ApiSettings(max_active_jobs_per_user=1), export_request(), NOW, transaction, "someone")

    assert len(transaction.raised) == 1


async def test_a_job_in_flight_on_the_target_refuses_with_409_naming_it() -> None:
    transaction = FakeTransaction()
    await transaction.jobs.add(job("bobs", "bob", JobStatus.IN_PROGRESS, [TARGET]))

    with pytest.raises(Conflict) as refused:
        await admit_job(ApiSettings(), export_request(), NOW, transaction, "someone")

    assert refused.value.extra == {"jobId": "bobs"}
    assert "already inProgress" in refused.value.message
    assert transaction.raised == []


async def test_without_the_target_rule_a_busy_target_is_no_conflict() -> None:
    transaction = FakeTransaction()
    await transaction.jobs.add(job("bobs", "bob", JobStatus.IN_PROGRESS, [TARGET]))

    settings = ApiSettings(one_active_job_per_target=False)
    await admit_job(settings, export_request(), NOW, transaction, "someone")

    assert len(transaction.raised) == 1
    assert transaction.admissions.serialized == [("acme", "alice", [])]


# A delivery's retries and give-up (the notifier, after each attempt).


def test_a_transient_failure_with_attempts_left_is_retried_after_a_backoff() -> None:
    settings = NotifierSettings(max_attempts=3, backoff_initial_seconds=2.0)
    progress = Progress(attempts=1, sent=[], refused={"c@x": "no such user"})

    status, delay, error = after_attempt(Attempt(deferred={"a@x": "421 busy"}), progress, None, settings)

    assert status is DeliveryStatus.RETRYING
    assert delay is not None
    assert 1.0 <= delay <= 2.0
    assert error == "a@x: 421 busy; c@x: no such user"
    assert progress.refused == {"c@x": "no such user"}  # not given up on yet


def test_a_server_asking_to_wait_longer_is_obeyed() -> None:
    attempt = Attempt(deferred={"#ops": "429"}, retry_after=30.0)

    _, delay, _ = after_attempt(attempt, Progress(1, [], {}), None, NotifierSettings())

    assert delay == 30.0


def test_the_last_attempt_gives_up_on_what_is_still_deferred() -> None:
    progress = Progress(attempts=3, sent=[], refused={})

    status, delay, error = after_attempt(
        Attempt(deferred={"a@x": "421 busy"}), progress, None, NotifierSettings(max_attempts=3)
    )

    assert (status, delay) == (DeliveryStatus.FAILED, None)
    assert progress.refused == {"a@x": "421 busy (gave up after 3 attempts)"}
    assert error == "a@x: 421 busy (gave up after 3 attempts)"


def test_a_delivery_that_reached_someone_is_sent_even_when_others_were_given_up_on() -> None:
    progress = Progress(attempts=3, sent=["b@x"], refused={})

    status, delay, _ = after_attempt(
        Attempt(deferred={"a@x": "421 busy"}), progress, None, NotifierSettings(max_attempts=3)
    )

    assert (status, delay) == (DeliveryStatus.SENT, None)


def test_an_attempt_that_could_not_start_fails_with_its_reason() -> None:
    reason = "no recipients given, and no email contact is configured for the owner"

    status, delay, error = after_attempt(Attempt(), Progress(1, [], {}), reason, NotifierSettings())

    assert (status, delay, error) == (DeliveryStatus.FAILED, None, reason)


# Poison isolation when firing (the scheduler): a request that cannot be planned is paused.


def test_an_unreadable_request_is_paused_with_its_problem_and_announced() -> None:
    entry = Unreadable(Identity("r-9", "acme", "alice", 4), NOW, "items.0: field required")

    fired = plan_or_pause(SchedulerSettings(), entry, NOW)

    assert fired.runs == []
    assert fired.advance.next_run_at is None
    assert fired.advance.last_run_at == NOW
    assert fired.advance.paused_reason == f"paused: items.0: field required; {RESUME}"
    [notice] = fired.notices
    assert (notice["topic"], notice["key"]) == (Topic.IAM_POLICY_UPDATED.value, "r-9")
    assert notice["payload"]["data"]["action"] == "pause"


@pytest.mark.parametrize(
    ("error", "because"),
    [(OverflowError("year 10000"), firing.OUT_OF_RANGE), (KeyError("bug"), "of an internal error")],
)
def test_a_request_whose_planning_raises_is_paused_not_raised(
    monkeypatch: pytest.MonkeyPatch, error: Exception, because: str
) -> None:
    def failing(*_: Any, **__: Any) -> Any:
        raise error

    monkeypatch.setattr(firing, "queued_job", failing)
    record = RequestRecord(export_request(), next_run_at=NOW, last_run_at=None)

    fired = plan_or_pause(SchedulerSettings(), record, NOW)

    assert fired.runs == []
    assert fired.advance.paused_reason is not None
    assert because in fired.advance.paused_reason
    assert len(fired.notices) == 1


def test_a_plannable_request_fires_its_due_run() -> None:
    record = RequestRecord(export_request(), next_run_at=NOW, last_run_at=None)

    fired = plan_or_pause(SchedulerSettings(), record, NOW)

    assert [job["_id"] for job, _ in fired.runs] == [job_id_for("r-1", NOW)]
    assert fired.advance.paused_reason is None


# The unit of work: a retried transaction publishes its events once.


def unit_of_work(
    session: FakeSession, outbox: FakeOutbox, publisher: FakePublisher
) -> tuple[UnitOfWork, OutboxRelay]:
    """A unit of work on fakes, and its relay (publishing to the fake publisher)."""
    relay = OutboxRelay(cast("OutboxRepository", outbox), publisher, OutboxSettings())
    unused: Any = None  # the works below use no repository
    client = cast("AsyncMongoClient[Document]", FakeClient(session))
    return UnitOfWork(client, relay, unused, unused, unused, unused, unused), relay


def message(event_id: str) -> Document:
    return {"id": event_id, "topic": Topic.EXPORT_COMPLETED.value, "key": "job-1", "payload": {"n": 1}}


async def test_a_retried_transaction_publishes_only_what_its_committed_attempt_raised() -> None:
    outbox, publisher = FakeOutbox(), FakePublisher()
    uow, relay = unit_of_work(FakeSession(failed_attempts=2), outbox, publisher)
    attempts: list[int] = []

    async def work(transaction: Transaction) -> int:
        attempts.append(len(attempts) + 1)
        transaction.raise_messages([message("job-1:completed")])
        return len(attempts)

    assert await uow.run(work) == 3

    await relay.publish_handed()
    assert [(topic, key) for topic, key, _ in publisher.sent] == [(Topic.EXPORT_COMPLETED.value, "job-1")]
    assert outbox.deleted == ["job-1:completed"]


async def test_a_transaction_the_work_aborted_publishes_nothing() -> None:
    outbox, publisher = FakeOutbox(), FakePublisher()
    session = FakeSession(failed_attempts=0)
    uow, relay = unit_of_work(session, outbox, publisher)

    async def work(transaction: Transaction) -> bool:
        transaction.raise_messages([message("never")])
        session.in_transaction = False  # as ``abort_transaction`` leaves it
        return False

    assert await uow.run(work) is False

    assert await relay.publish_handed() == 0
    assert outbox.inserted == []
    assert publisher.sent == []
