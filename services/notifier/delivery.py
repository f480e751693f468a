"""The notifier's use case: each notification message of a finished job, delivered once.

The job document is the delivery queue. ``export.completed`` (or a sweep, after a crash or for
a due retry) finds each message's entry; a message whose policy does not match is recorded as
``skipped``; any other is claimed (``pending``/``retrying`` → ``sending``, a compare-and-set on
its attempt count) before anything is sent, and its result recorded after. A redelivered event,
a second notifier or a restart therefore finds the claim and sends nothing twice.

**A crash between send and record.** A notifier can die after a server accepted a message and
before the ``sent`` was written. The entry then stays ``sending`` until its lease runs out
(``EXPORTER_NOTIFIER__SENDING_LEASE_SECONDS``), and is then recorded as ``failed`` with the
reason, never sent again: at most once. We choose this over at least once because a duplicate
cannot be taken back and goes to every recipient of the message (a list, a channel), and a
recurring export would repeat it, while the rare lost message is visible in the job's delivery
status and its file stays downloadable through the API. Every failure the notifier sees itself
(connection refused, 5xx, 429, SMTP 4xx) is known not to have delivered, and is retried.

Events come in batches, and a batch's jobs are read in one query and claimed in one
transaction: the store pays per round trip and per commit, far more than per document. Work runs
in tasks, so the consumer reads on while MongoDB and the media answer: at most
``INTAKE_BATCHES`` batches being read and claimed, and ``concurrency`` deliveries sending, at
once (then the consumer waits). The event is thus committed before its deliveries are claimed;
should the notifier die in between, the entries are still ``pending`` and a sweep takes them
up. A delivery waiting to retry holds nothing, so a slow or failing chat never holds up the
others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from exporter.adapters.mongo.deliveries import DeliveryClaim, delivery_result
from exporter.adapters.mongo.job_store import UnreadableJob
from exporter.adapters.mongo.unreadable import unreadable_because
from exporter.contracts.base import utcnow
from exporter.contracts.events import ExportCompleted
from exporter.contracts.job import Job, JobSpec
from exporter.contracts.notification import NotificationMedium, NotificationMessage
from exporter.domain.job_life import DeliveryStatus
from exporter.log_context import job_context
from exporter.notifications.messages import FileLink, Notice, compose, plan_files
from exporter.notifications.policy import policy_applies, skip_reason
from exporter.notifications.recipients import destination_problem, destinations_of, recipients_for
from exporter.notifications.sending import Attachment, DeliveryFailure, Outgoing, Sender, transient
from exporter.runtime import Runtime
from exporter.service_layer.unit_of_work import UnitOfWork
from notifier.attempts import Attempt, Due, JobContext, Progress, after_attempt, delivery_key
from notifier.results import DeliveryResults

log = logging.getLogger(__name__)

CUT_OFF = (
    "the notifier stopped while sending, so whether it arrived is unknown; "
    "not sent again, so no one gets it twice"
)
SWEEP_BATCH = 500
# Recording a result can take longer than sending it: a slot is held only while sending.
ADMITTED_PER_SLOT = 4
# Batches being read, claimed and started at once. A claimed delivery waits to be admitted, and
# one the notifier dies before sending is cut off, not sent: one batch keeps those few, while the
# deliveries admitted before it still send.
INTAKE_BATCHES = 1


class Notifier:
    def __init__(
        self, runtime: Runtime, senders: Mapping[str, Sender], redact: Callable[[str], str] = str
    ) -> None:
        self._runtime = runtime
        self._jobs = runtime.jobs
        self._settings = runtime.settings.notifier
        self._senders = senders
        self._redact = redact
        self._unit_of_work = UnitOfWork.of(runtime)
        self._results = DeliveryResults(self._unit_of_work, runtime.jobs)
        # Sends at once; deliveries admitted (sending, or recording what they sent) at once.
        self._slots = asyncio.Semaphore(self._settings.concurrency)
        self._admission = asyncio.Semaphore(ADMITTED_PER_SLOT * self._settings.concurrency)
        self._active: dict[str, asyncio.Task[None]] = {}
        self._waiting: set[asyncio.Task[Any]] = set()
        # Batches of jobs being read and claimed; beyond, the consumer waits.
        self._intake = asyncio.Semaphore(INTAKE_BATCHES)
        self._taking_in: set[asyncio.Task[None]] = set()
        self._closing = False

    async def on_export_completed(self, events: Sequence[ExportCompleted]) -> None:
        """Hands the jobs of a batch of events over to a task and returns (see the module's notes)."""
        job_ids = list(dict.fromkeys(event.data.job_id for event in events))
        if self._closing or not job_ids:
            return
        await self._intake.acquire()
        task = asyncio.create_task(
            self._take_in(job_ids), name=f"notify {job_ids[0]} and {len(job_ids) - 1} more"
        )
        self._taking_in.add(task)
        task.add_done_callback(self._taken_in)

    async def _take_in(self, job_ids: list[str]) -> None:
        jobs = await self._jobs.get_many(job_ids)
        found = {job.job_id if isinstance(job, UnreadableJob) else job.id for job in jobs}
        for job_id in set(job_ids) - found:
            log.warning("export.completed for unknown job %s; nothing to notify", job_id)
        await self.process(jobs)

    def _taken_in(self, task: asyncio.Task[None]) -> None:
        self._taking_in.discard(task)
        self._intake.release()
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("taking in jobs failed; a sweep will come back to them", exc_info=error)

    async def process(self, jobs: Sequence[Job | UnreadableJob]) -> None:
        """Records the skips and claims the due deliveries of ``jobs`` that no task here holds, then
        sends them in tasks; does not wait for the sends.
        """
        now = utcnow()
        wanted: list[Due] = []
        for job in jobs:
            if isinstance(job, UnreadableJob):
                log.error("job %s cannot be notified: %s", job.job_id, job.problem)
                continue
            status = job.status
            if not status.is_final:  # a cancelled or expired job's messages are skipped below
                log.info("job %s is %s: nothing to notify yet", job.id, status.value)
                continue
            try:
                context = self._context(job)
            except ValidationError as error:  # its spec is damaged: it cannot stop the others
                log.error("job %s cannot be notified: %s", job.id, unreadable_because(error))
                continue
            due = Due(context, job.notifications)
            for index, entry in enumerate(due.seen):
                if self._closing or delivery_key(context.job_id, index) in self._active:
                    continue
                state = entry.status
                policy = context.message(index).policy
                # A retry always writes its time, a claim its lease: a missing one is damage, and
                # gives no reason to wait for a retry, nor a lease to cut off.
                retry_at, lease_until = entry.next_attempt_at or now, entry.lease_until or now
                if state is DeliveryStatus.PENDING and not policy_applies(policy, status):
                    due.skips[index] = skip_reason(policy, status)
                elif state is DeliveryStatus.PENDING or (
                    state is DeliveryStatus.RETRYING and retry_at <= now
                ):
                    due.progress[index] = Progress.of(entry)
                elif state is DeliveryStatus.SENDING and lease_until < now:
                    await self._cut_off(context.job_id, index, entry.attempts)
            if due.progress or due.skips:
                wanted.append(due)
        for due, claimed in await self._claim(wanted):
            for index in claimed:
                await self._start(due.context, index, due.progress[index])

    async def _claim(self, wanted: list[Due]) -> list[tuple[Due, list[int]]]:
        """Claims the deliveries and records the skips of many jobs in one transaction (the usual
        case), or else job by job: another notifier may hold some of them, or have recorded
        others. The indexes claimed.
        """
        lease = timedelta(seconds=self._settings.sending_lease_seconds)
        if len(wanted) > 1 and await self._unit_of_work.run(
            lambda t: t.jobs.claim_many([due.claim() for due in wanted], lease, t.session)
        ):
            return [(due, list(due.progress)) for due in wanted]
        return [(due, await self._claim_job(due.claim(), lease)) for due in wanted]

    async def _claim_job(self, claim: DeliveryClaim, lease: timedelta) -> list[int]:
        """Claims in one write, or else one by one, each on its own entry's state alone. The
        indexes claimed.
        """
        if await self._jobs.claim_deliveries(claim.job_id, claim.claims, lease, claim.skips, claim.seen):
            return list(claim.claims)
        for index, reason in claim.skips.items():
            await self._jobs.claim_deliveries(claim.job_id, {}, lease, {index: reason})
        return [
            i
            for i, item in claim.claims.items()
            if await self._jobs.claim_deliveries(claim.job_id, {i: item}, lease)
        ]

    def _context(self, job: Job) -> JobContext:
        result = job.result
        ttl = timedelta(seconds=self._settings.link_ttl_seconds)
        expires_at = utcnow() + ttl
        storage = self._runtime.storage
        links = tuple(
            FileLink(
                name=file.name,
                url=storage.presigned_url(file.key, ttl, file.name),
                expires_at=expires_at,
                size_in_bytes=file.size_in_bytes,
                key=file.key,
                content_type=file.content_type,
            )
            for file in result.files
        )
        spec = JobSpec.model_validate(job.spec)
        destinations = destinations_of(self._settings, spec.tenant)
        return JobContext(job.id, job.owner, spec, result, links, storage, destinations)

    async def _cut_off(self, job_id: str, index: int, attempts: int) -> None:
        if await self._jobs.cut_off_delivery(job_id, index, attempts, CUT_OFF):
            log.warning(
                "delivery %s was cut off mid-send: recorded as failed, not resent",
                delivery_key(job_id, index),
            )

    async def _start(self, context: JobContext, index: int, progress: Progress) -> None:
        """Waits until the delivery may be admitted (so a busy notifier slows its consumer), then
        sends in a task.
        """
        await self._admission.acquire()
        key = delivery_key(context.job_id, index)
        with job_context(context.spec):  # the task keeps the job's ids
            task = asyncio.create_task(self._deliver(context, index, progress), name=f"deliver {key}")
        self._active[key] = task
        task.add_done_callback(lambda _: self._active.pop(key, None))

    async def _deliver(self, context: JobContext, index: int, progress: Progress) -> None:
        """Sends (claimed), records; after a transient failure waits, no longer counted as
        admitted (a failing medium must not hold up the others), claims again and goes on.
        """
        key = delivery_key(context.job_id, index)
        lease = timedelta(seconds=self._settings.sending_lease_seconds)
        admitted = True
        try:
            while True:
                progress.attempts += 1
                delay = await self._attempt(context, index, progress)
                if delay is None:
                    return
                if admitted:
                    self._admission.release()
                    admitted = False
                await self._wait(delay)
                if not await self._jobs.claim_deliveries(
                    context.job_id, {index: (key, progress.attempts)}, lease
                ):
                    return  # a sweep elsewhere took it over
        except Exception:
            # Left ``sending``: once its lease runs out, a sweep records it as cut off.
            log.exception("delivery %s stopped", key)
        finally:
            if admitted:
                self._admission.release()

    async def _wait(self, seconds: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            await asyncio.sleep(seconds)
        finally:
            self._waiting.discard(task)

    async def _attempt(self, context: JobContext, index: int, progress: Progress) -> float | None:
        """One attempt at the recipients not reached yet, recorded; the delay before the next, if any."""
        key = delivery_key(context.job_id, index)
        message = context.message(index)
        recipients = recipients_for(message, context.owner, context.destinations)
        notice = compose(message, context.spec, context.result, context.links)
        attempt = Attempt()
        if notice.unknown_placeholders:
            unknown = ", ".join(f"${{{name}}}" for name in notice.unknown_placeholders)
            log.warning("delivery %s: unknown placeholders left as written: %s", key, unknown)
            attempt.notes.append(f"unknown placeholders left as written: {unknown}")
        error: str | None = None
        if not recipients:
            error = f"no recipients given, and no {message.medium} contact is configured for the owner"
        try:
            async with self._slots:
                await self._send(context, notice, message, key, recipients, progress, attempt)
        except Exception:  # a bug, not the medium: fail this delivery, keep the notifier
            log.exception("delivery %s failed unexpectedly", key)
            error = f"an internal error occurred (reference {key})"
            attempt.deferred.clear()
        status, delay, error = after_attempt(attempt, progress, error, self._settings)
        next_attempt_at = None if delay is None else utcnow() + timedelta(seconds=delay)
        await self._results.record(
            delivery_result(
                context.job_id,
                index,
                progress.attempts,
                status,
                recipients=recipients,
                sent_to=progress.sent,
                refused={r: self._redact(reason) for r, reason in progress.refused.items()},
                error=self._redact(error) if error else None,
                detail=self._redact("; ".join(attempt.notes)) or None,
                next_attempt_at=next_attempt_at,
            )
        )
        log.info("delivery %s: %s after attempt %d", key, status.value, progress.attempts)
        return delay

    async def _send(
        self,
        context: JobContext,
        notice: Notice,
        message: NotificationMessage,
        key: str,
        recipients: list[str],
        progress: Progress,
        attempt: Attempt,
    ) -> None:
        """Email goes to all its recipients in one transaction; chats one recipient at a time."""
        sender = self._senders[message.medium]
        todo = [r for r in recipients if r not in progress.sent and r not in progress.refused]
        tenant, destinations = context.spec.tenant, context.destinations
        for recipient in todo:  # checked again: the settings may have changed since the request
            problem = destination_problem(message.medium, recipient, tenant, destinations, self._settings)
            if problem is not None:
                log.warning("delivery %s: not sent to %s: %s", key, recipient, problem)
                progress.refused[recipient] = problem
        todo = [r for r in todo if r not in progress.refused]
        groups = [todo] if sender.one_transaction and todo else [[r] for r in todo]
        for group in groups:
            try:
                outgoing = await self._outgoing(context, notice, message.medium, group[0], key)
                delivered = await sender.send(group, outgoing)
            except DeliveryFailure as failure:
                reasons = dict.fromkeys(group, failure.reason)
                if failure.transient:
                    attempt.deferred.update(reasons)
                    attempt.retry_after = max(attempt.retry_after or 0.0, failure.retry_after or 0.0)
                else:
                    progress.refused.update(reasons)
                continue
            progress.sent += delivered.sent
            progress.refused.update(delivered.refused)
            attempt.deferred.update(delivered.deferred)
            attempt.notes += delivered.notes

    async def _outgoing(
        self, context: JobContext, notice: Notice, medium: NotificationMedium, recipient: str, key: str
    ) -> Outgoing:
        sender = self._senders[medium]
        files = plan_files(context.links, sender.attach_limit(recipient), sender.encoded_size)
        webhooks = {
            "slack": context.destinations.slack_webhooks,
            "discord": context.destinations.discord_webhooks,
        }.get(medium, {})
        attachments: list[Attachment] = []
        for entry in files:
            if entry.attached:
                try:
                    data = await context.file(entry.link.key)
                except Exception as error:
                    log.warning("delivery %s: reading %s failed: %s", key, entry.link.key, error)
                    raise transient(f"the object store was unavailable to read {entry.link.name}") from error
                attachments.append(Attachment(entry.link.name, entry.link.content_type, data))
        return Outgoing(key, notice, files, tuple(attachments), webhooks)

    async def sweep(self) -> int:
        """Picks up deliveries no live task holds: after a crash, a lost event, or a due retry."""
        grace = timedelta(seconds=self._settings.sweep_interval_seconds)
        jobs = await self._jobs.with_open_deliveries(utcnow() - grace, SWEEP_BATCH)
        await self.process(jobs)
        return len(jobs)

    async def run(self) -> None:
        """Sweeps until cancelled, then lets the sends in flight finish (``drain``)."""
        try:
            while True:
                try:
                    await self.sweep()
                except Exception:
                    log.exception(
                        "sweep failed; trying again in %.0f s", self._settings.sweep_interval_seconds
                    )
                await asyncio.sleep(self._settings.sweep_interval_seconds)
        except asyncio.CancelledError:
            await self.drain()
            raise

    async def drain(self) -> None:
        """Starts nothing more; deliveries waiting to retry stop (their entry says when to go on),
        and those sending get the HTTP timeout to finish and be recorded, so none is cut off.
        """
        self._closing = True
        for task in list(self._waiting):
            task.cancel()
        grace = self._settings.http_timeout_seconds + 5
        if self._taking_in:
            await asyncio.wait(list(self._taking_in), timeout=grace)
        tasks = list(self._active.values())
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sender in self._senders.values():
            await sender.aclose()
