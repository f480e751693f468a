"""The scheduler's use case: fire what is due, each scheduled time exactly once.

A pass takes the schedule shards one by one. For each, ONE transaction reads a batch of due
requests, works out each one's runs (``domain.schedule.due_runs``), moves every schedule on,
inserts every job and queues their ``export.requested`` as one outbox entry. Nothing is leased:
the transaction's snapshot is the claim. Should another replica, or an edit through the API,
change one of those requests after it was read, the schedule's write conflicts, the transaction
aborts, and the pass goes on to the next shard; the next pass reads this one again on fresh
data, where that request is no longer due (or due as edited). A replica killed inside its
transaction thus holds up only its own batch, until the store reaps the transaction. Each
replica walks the shards in its own random order, so replicas rarely meet at all.

A job's id derives from request and scheduled time, so a run can never become two jobs; should a
job exist already (a run fired by other means), that run is left out and its schedule still moves
on, rather than the shard failing for ever.

One poison request never stops the others: a request whose runs cannot be planned (a window out
of the calendar's range), or whose stored document no longer validates, is paused in the same
transaction (no next run, the reason on its schedule, an IAM ``pause`` event); the detail goes
to the log under its id, and the rest of the batch fires. Its owner resumes it by editing it. A
batch that fails for another reason is fired again one request at a time (see ``fire_shard``),
and whatever still fails is logged while the pass goes on with the next shard.

Runs that would pass their owner's queued-jobs quota or join a job in flight on their target
are recorded as ``skipped`` jobs instead of queued (see ``scheduler.admission``).
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError, PyMongoError

from exporter.adapters.mongo.client import Document, is_conflict
from exporter.adapters.mongo.jobs import skipped_job_document
from exporter.adapters.mongo.outbox import outbox_message
from exporter.adapters.mongo.requests import SCHEDULE_SHARDS, Advance, Identity, RequestRecord, Unreadable
from exporter.contracts.base import utcnow
from exporter.domain.schedule import due_runs, window_start_before_first_run
from exporter.log_context import log_context
from exporter.runtime import Runtime
from exporter.service_layer.dispatch import queued_job
from exporter.service_layer.iam import request_event
from exporter.service_layer.unit_of_work import Transaction, UnitOfWork
from exporter.settings import SchedulerSettings
from exporter.topics import Topic
from scheduler.admission import Admission

log = logging.getLogger(__name__)
SOURCE = "exporter/scheduler"
# Who paused a request, in its IAM event.
ACTOR = "system:scheduler"
RESUME = "edit the request to resume"
# What ``job_for`` raises for dates, periods or windows past what a calendar can hold; the
# exception's own text stays in the log.
OUT_OF_RANGE = "a date, period or window in it is out of range"


@dataclass(frozen=True, slots=True)
class Firing:
    """One due request's share of a pass: its schedule's move, the runs it fires (each a job and
    its ``export.requested``) and what else it announces (a pause)."""

    advance: Advance
    runs: list[tuple[Document, Document]]
    notices: list[Document]


def shard_order() -> list[int]:
    """This replica's walk over the shards: random, so that replicas start apart."""
    return random.sample(range(SCHEDULE_SHARDS), SCHEDULE_SHARDS)


def plan(settings: SchedulerSettings, record: RequestRecord, now: datetime) -> Firing:
    request = record.request
    due_at = record.next_run_at
    assert due_at is not None  # read because it was due
    due = due_runs(request, due_at, now, settings.max_catch_up_runs)
    if due.skipped:
        log.warning(
            "request %s: %d missed runs skipped (catchUp=%s)", request.id, due.skipped, request.catch_up
        )
    runs = []
    # Each run's window starts where the previous fired run's ended: no gaps after skips.
    previous_end = record.last_run_at or window_start_before_first_run(request)
    for scheduled_at in due.runs:
        runs.append(queued_job(request, scheduled_at, SOURCE, previous_end))
        previous_end = scheduled_at
    last_run_at = due.runs[-1] if due.runs else record.last_run_at
    return Firing(Advance(request.id, due.next_run_at, last_run_at), runs, [])


def paused(identity: Identity, last_run_at: datetime | None, reason: str, now: datetime) -> Firing:
    """A request stopped until its owner edits it, and its IAM ``pause`` event."""
    event = request_event(
        identity.request_id, identity.tenant, identity.owner, identity.version, "pause", ACTOR, source=SOURCE
    )
    message = outbox_message(Topic.IAM_POLICY_UPDATED, identity.request_id, event)
    return Firing(Advance(identity.request_id, None, last_run_at, now, reason), [], [message])


def plan_or_pause(settings: SchedulerSettings, entry: RequestRecord | Unreadable, now: datetime) -> Firing:
    """``plan``, or, for a request that cannot be planned, its pause: never an exception."""
    with log_context(request_id=entry.identity.request_id, tenant=entry.identity.tenant):
        return _plan_or_pause(settings, entry, now)


def _plan_or_pause(settings: SchedulerSettings, entry: RequestRecord | Unreadable, now: datetime) -> Firing:
    if isinstance(entry, Unreadable):
        log.error("request %s: paused: %s", entry.identity.request_id, entry.problem)
        return paused(entry.identity, entry.last_run_at, f"paused: {entry.problem}; {RESUME}", now)
    try:
        return plan(settings, entry, now)
    except Exception as error:
        due_at = entry.next_run_at.isoformat() if entry.next_run_at else "?"
        log.exception("request %s: its run at %s could not be planned; paused", entry.request.id, due_at)
        calendar = isinstance(error, ValueError | ArithmeticError) and not isinstance(error, ValidationError)
        problem = OUT_OF_RANGE if calendar else "of an internal error"
        reason = f"paused: its run at {due_at} could not be planned because {problem}; {RESUME}"
        return paused(entry.identity, entry.last_run_at, reason, now)


async def admitted(
    runtime: Runtime, runs: list[tuple[Document, Document]], now: datetime, transaction: Transaction
) -> tuple[list[Document], list[Document]]:
    """The jobs to insert and the ``export.requested`` to queue: a run that would pass its
    owner's queued-jobs quota or join a job in flight on its target becomes a ``skipped`` job
    with the reason, and queues nothing (see ``scheduler.admission``)."""
    if not runs:
        return [], []
    settings, store, session = runtime.settings.api, transaction.jobs, transaction.session
    jobs = [job for job, _ in runs]
    admission = Admission(settings.max_active_jobs_per_user, settings.one_active_job_per_target)
    admission.active = await store.active_counts(admission.owners(jobs), session)
    if admission.one_per_target:
        admission.note_busy(await store.active_on_targets(admission.targets(jobs), session))
    inserts, messages = [], []
    for job, message in runs:
        if (reason := admission.refusal(job)) is None:
            inserts.append(job)
            messages.append(message)
        else:
            with log_context(job_id=job["_id"], request_id=job.get("requestId"), tenant=job.get("tenant")):
                log.warning("job %s: %s", job["_id"], reason)
            inserts.append(skipped_job_document(job, reason, now))
    return inserts, messages


async def _fire_batch(
    runtime: Runtime,
    shard: int,
    now: datetime,
    only: str | None,
    transaction: Transaction,
    *,
    skip_existing: bool,
) -> int:
    """The transaction's work; returns how many runs it queued."""
    session, batch_size = transaction.session, runtime.settings.scheduler.batch_size
    due = await transaction.requests.due(shard, now, batch_size, session, only)
    if not due:
        return 0
    firings = [plan_or_pause(runtime.settings.scheduler, entry, now) for entry in due]
    runs = [run for firing in firings for run in firing.runs]
    if skip_existing:
        existing = await transaction.jobs.existing([job["_id"] for job, _ in runs], session)
        log.warning("shard %d: %d runs had been fired already; not again", shard, len(existing))
        runs = [(job, message) for job, message in runs if job["_id"] not in existing]
    jobs, messages = await admitted(runtime, runs, now, transaction)
    await transaction.requests.advance_many([firing.advance for firing in firings], session)
    if jobs:
        await transaction.jobs.add_many(jobs, session)
    transaction.raise_messages(messages + [notice for firing in firings for notice in firing.notices])
    return len(messages)


async def fire_shard(runtime: Runtime, shard: int, now: datetime) -> int:
    """Fires one batch of ``shard``'s due requests; returns how many runs it fired.

    Should the batch fail for a reason no request's planning showed (a fault in the store's
    writes, a bug), its requests are fired one by one, and one that fails alone is paused: the
    shard is never stuck behind it."""
    try:
        return await _fire(runtime, shard, now)
    except Exception:
        log.exception("shard %d: batch failed; its requests are fired one by one", shard)
    fired = 0
    for entry in await runtime.requests.due(shard, now, runtime.settings.scheduler.batch_size, None):
        request_id = entry.identity.request_id
        with log_context(request_id=request_id, tenant=entry.identity.tenant):
            try:
                fired += await _fire(runtime, shard, now, request_id)
            except ConnectionFailure:
                raise  # the store's trouble, not the request's: the next pass tries again
            except Exception:
                log.exception("request %s: could not be fired; paused", request_id)
                await _pause_alone(runtime, shard, now, request_id)
    return fired


async def _pause_alone(runtime: Runtime, shard: int, now: datetime, request_id: str) -> None:
    async def write(transaction: Transaction) -> None:
        due = await transaction.requests.due(shard, now, 1, transaction.session, request_id)
        reason = f"paused: it could not be fired because of an internal error; {RESUME}"
        firings = [paused(entry.identity, entry.last_run_at, reason, now) for entry in due]
        await transaction.requests.advance_many([firing.advance for firing in firings], transaction.session)
        transaction.raise_messages([notice for firing in firings for notice in firing.notices])

    await UnitOfWork.of(runtime).run(write)


async def _fire(runtime: Runtime, shard: int, now: datetime, only: str | None = None) -> int:
    """One transaction over ``shard``'s due requests (``only`` that one); the runs it fired."""
    uow = UnitOfWork.of(runtime)
    batch = functools.partial(_fire_batch, runtime, shard, now, only)
    try:
        return await uow.run(functools.partial(batch, skip_existing=False), retry=False)
    except (BulkWriteError, DuplicateKeyError):
        return await uow.run(functools.partial(batch, skip_existing=True))
    except PyMongoError as error:
        if not is_conflict(error):
            raise
        # Another replica fired some of them, or an edit (or a writer that died mid-transaction
        # and is not reaped yet) holds one: the other shards go on, this one is read again next.
        log.info("shard %d: batch lost to another writer (%s); read again next pass", shard, error)
        return 0


async def fire_due(runtime: Runtime, shards: Sequence[int], now: datetime | None = None) -> int:
    """One pass: a batch from each shard, in ``shards``' order; returns how many runs it fired.

    Without ``now``, each shard fires what is due when its turn comes: a pass that takes longer
    than a period (a survivor catching up on its dead peer's shards, a loaded store) would
    otherwise leave every run that fell due during it to the next pass, which then has more to
    do and takes longer still."""
    fired = 0
    for shard in shards:
        try:
            fired += await fire_shard(runtime, shard, now or utcnow())
        except Exception:
            # Whatever it was, the other shards (and the sweeps, on their own loop) go on.
            log.exception("shard %d: pass failed; the next shard goes on", shard)
    if fired:
        log.info("fired %d runs", fired)
    return fired
