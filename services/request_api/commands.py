"""The request-api's use cases.

Each change authorizes the caller, checks quotas, then writes its state and exactly one
``iam.policy-updated`` event in one MongoDB transaction (the outbox), so the two never disagree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pymongo.errors import DuplicateKeyError

from exporter.adapters.mongo.caps import Cap, CapReached
from exporter.adapters.mongo.client import IDEMPOTENCY, REQUESTS, Document
from exporter.adapters.mongo.idempotency import StoredAnswer, body_hash, idempotency_document, scope
from exporter.adapters.mongo.requests import RequestRecord, new_request_id, request_document
from exporter.contracts.base import utcnow
from exporter.contracts.events import IamAction
from exporter.contracts.job import Job, JobFile, job_id_for
from exporter.contracts.request import ExportRequest, ExportRequestSpec, ExportType
from exporter.contracts.time_bounds import parse_iso_duration
from exporter.domain.access import (
    Action,
    Principal,
    update_actions,
)
from exporter.domain.job_life import JobStatus
from exporter.domain.schedule import first_run_at, next_run_after
from exporter.notifications.recipients import recipient_problems
from exporter.runtime import Runtime
from exporter.service_layer.dispatch import enqueue_job
from exporter.service_layer.iam import policy_event
from exporter.service_layer.unit_of_work import Queueing, Transaction, UnitOfWork
from exporter.settings import ApiSettings
from exporter.topics import Topic
from request_api.authorization import allow, authorize_create, authorized, authorized_job, found
from request_api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Gone,
    NotFound,
    PreconditionFailed,
    TooManyRequests,
    Unprocessable,
)
from request_api.preconditions import Condition, version_tag
from request_api.views import job_view, request_view

SOURCE = "exporter/request-api"
T = TypeVar("T")
QUOTA_MESSAGE = "Maximum number of queued exports reached"


def _live(record: RequestRecord, if_match: Condition | None = None) -> ExportRequest:
    """The request, unless deleted (410) or not the version ``if_match`` names (412)."""
    request = record.request
    if request.deleted_at is not None:
        raise Gone(f"Export request '{request.id}' was deleted at {request.deleted_at.isoformat()}")
    if if_match is not None and not if_match.matches_strongly(version_tag(request.version)):
        raise PreconditionFailed(
            f"Export request '{request.id}' is at version {request.version}, not the one If-Match "
            "names; read it again and retry"
        )
    return request


def _changed_meanwhile(request_id: str, if_match: Condition | None) -> Exception:
    """Another write won the race: the version the caller named is stale (412), or, without
    If-Match, the edit conflicts (409, as before If-Match existed)."""
    if if_match is not None:
        return PreconditionFailed(f"Export request '{request_id}' changed meanwhile; read it again and retry")
    return Conflict(f"Export request '{request_id}' changed meanwhile; read it again and retry")


def check_deployment_rules(runtime: Runtime, spec: ExportRequestSpec, tenant: str, owner: str) -> None:
    """What the model cannot know: the configured floor on how often a request may run, and
    whether each notification may reach someone, with the tenant's destinations and the tokens."""
    check_periodicity(runtime, spec)
    if problems := recipient_problems(spec, tenant, owner, runtime.settings.notifier):
        raise BadRequest("; ".join(f"{path}: {problem}" for path, problem in problems.items()))


def check_periodicity(runtime: Runtime, spec: ExportRequestSpec) -> None:
    """The configured floor on how often a request may run (the model checks the syntax)."""
    if spec.periodicity is None:
        return
    duration = parse_iso_duration(spec.periodicity)
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else None
    minimum = runtime.settings.api.min_periodicity_seconds
    if seconds is not None and seconds < minimum:
        raise BadRequest(f"periodicity: must be at least {minimum} seconds, got '{spec.periodicity}'")


async def admit_job(
    settings: ApiSettings,
    request: ExportRequest,
    scheduled_at: datetime,
    transaction: Queueing,
    created_by: str,
) -> None:
    """Queues a job of ``request`` in ``transaction``, unless it would exceed its owner's quota
    or join a job in flight on one of its targets. The quota is the owner's whoever asks: the
    job is theirs, so a grantee's runs count where the scheduler's do, and cannot pass the limit.

    The admission documents are written first (see adapters/mongo/admissions.py): concurrent
    admissions then conflict, so they cannot both squeeze under the limit."""
    jobs, session = transaction.jobs, transaction.session
    tenant, owner = request.tenant, request.owner
    rule_targets = request.targets if settings.one_active_job_per_target else []
    await transaction.admissions.serialize(tenant, owner, rule_targets, session)
    if await jobs.count_active(tenant, owner, session) >= settings.max_active_jobs_per_user:
        raise TooManyRequests(QUOTA_MESSAGE, headers={"Retry-After": str(settings.quota_retry_after_seconds)})
    busy = await jobs.active_for_targets(tenant, rule_targets, session) if rule_targets else None
    if busy is not None:
        raise Conflict(
            f"An export of the same target is already {busy.status}: job '{busy.job_id}'",
            jobId=busy.job_id,
        )
    await enqueue_job(transaction, request, scheduled_at, SOURCE, created_by=created_by)


async def _write_with_event(
    runtime: Runtime,
    request: ExportRequest,
    action: IamAction,
    actor: str,
    write: Callable[[Transaction], Awaitable[bool]],
    job_id: str | None = None,
) -> bool:
    """Runs ``write`` in a unit of work and, if it changed something, raises the IAM event for
    ``action`` in the same transaction. Returns whether it changed something."""
    event = policy_event(request, action, actor, job_id)

    async def work(transaction: Transaction) -> bool:
        if not await write(transaction):
            return False
        transaction.raise_event(Topic.IAM_POLICY_UPDATED, request.id, event)
        return True

    return await UnitOfWork.of(runtime).run(work)


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    body: Any


async def create_export(
    runtime: Runtime, principal: Principal, spec: ExportRequestSpec, idempotency_key: str | None
) -> Answer:
    await authorize_create(runtime, principal)
    check_deployment_rules(runtime, spec, principal.tenant, principal.user)
    key_scope = scope(principal.tenant, principal.user, idempotency_key) if idempotency_key else None
    fingerprint = body_hash(spec.to_wire()) if key_scope is not None else ""
    if key_scope is not None and (stored := await runtime.idempotency.get(key_scope)) is not None:
        return _replay(stored, fingerprint)
    now = utcnow()
    request = spec.stored(
        request_id=new_request_id(),
        tenant=principal.tenant,
        owner=principal.user,
        version=1,
        created_at=now,
        updated_at=now,
    )
    next_run = first_run_at(request)
    # A one-time request due now is queued by its create; every other run by the scheduler.
    queued_now = request.type is ExportType.ONE_TIME and next_run <= now
    record = RequestRecord(request, None, now) if queued_now else RequestRecord(request, next_run, None)
    body = request_view(record)
    document = request_document(request, record.next_run_at, record.last_run_at)
    answer = StoredAnswer(fingerprint, 201, body)
    remembered = idempotency_document(key_scope, answer) if key_scope is not None else None
    try:
        if queued_now:
            await _create_queued(runtime, principal, request, document, remembered)
        else:
            await _create_scheduled(runtime, request, document, remembered)
    except DuplicateKeyError:
        # A concurrent request with the same key won: answer as it did.
        stored = await runtime.idempotency.get(key_scope) if key_scope else None
        if stored is None:
            raise
        return _replay(stored, fingerprint)
    return Answer(201, body)


async def _create_scheduled(
    runtime: Runtime, request: ExportRequest, document: Document, remembered: Document | None
) -> None:
    """The hot path (every recurring request): through the group commit, many creates in one
    transaction, within the caps on active requests; the scheduler queues the jobs."""
    event = runtime.relay.held(
        Topic.IAM_POLICY_UPDATED, request.id, policy_event(request, "create", request.owner)
    )
    inserts = [(REQUESTS, document)]
    if remembered is not None:
        inserts.append((IDEMPOTENCY, remembered))
    try:
        # which also hands the event to the relay
        await runtime.group_commit.insert(inserts, request_caps(runtime, request), [event])
    except CapReached as refused:
        retry_after = str(runtime.settings.api.quota_retry_after_seconds)
        raise TooManyRequests(str(refused), headers={"Retry-After": retry_after}) from refused


def request_caps(runtime: Runtime, request: ExportRequest) -> list[Cap]:
    """The quotas on active (scheduled) requests, per user and per tenant, that a create of
    ``request`` must stay within (see adapters/mongo/caps.py for how they hold)."""
    settings, tenant = runtime.settings.api, request.tenant
    active = {"tenant": tenant, "schedule.nextRunAt": {"$ne": None}}
    per_user = settings.max_active_requests_per_user
    per_tenant = settings.max_active_requests_per_tenant
    # One counter document per tenant holds its users' counts too: one write per batch and tenant.
    counter = f"requests\x1f{tenant}"
    user_field = f"users.{hashlib.sha256(request.owner.encode()).hexdigest()[:24]}"  # no dots or $
    return [
        Cap(
            counter,
            user_field,
            REQUESTS,
            active | {"owner": request.owner},
            per_user,
            f"Maximum number of active export requests reached ({per_user} per user)",
        ),
        Cap(
            counter,
            "active",
            REQUESTS,
            active,
            per_tenant,
            f"Maximum number of active export requests reached ({per_tenant} per tenant)",
        ),
    ]


async def _create_queued(
    runtime: Runtime,
    principal: Principal,
    request: ExportRequest,
    document: Document,
    remembered: Document | None,
) -> None:
    """A one-time request due now: admitted and queued in the create's own transaction, so the
    quota holds however many such creates arrive at once."""

    async def write(transaction: Transaction) -> bool:
        await admit_job(runtime.settings.api, request, request.created_at, transaction, principal.user)
        await transaction.requests.add(document, session=transaction.session)
        if remembered is not None:
            await transaction.idempotency.add(remembered, session=transaction.session)
        return True

    await _write_with_event(runtime, request, "create", principal.user, write)


def _replay(stored: StoredAnswer, fingerprint: str) -> Answer:
    if stored.body_hash != fingerprint:
        raise Unprocessable("Idempotency-Key was already used with a different request body")
    return Answer(stored.status_code, stored.body)


async def update_export(
    runtime: Runtime,
    principal: Principal,
    request_id: str,
    spec: ExportRequestSpec,
    if_match: Condition | None = None,
) -> dict[str, Any]:
    """A new version of the request. The If-Match check and the write are one: the write is
    guarded by the very version checked (``RequestRepository.replace``)."""
    record = await found(runtime, principal, request_id)
    await allow(runtime, principal, record, *update_actions(record.request, spec))
    current = _live(record, if_match)
    check_deployment_rules(runtime, spec, current.tenant, current.owner)
    updated = spec.stored(
        request_id=current.id,
        tenant=current.tenant,
        owner=current.owner,
        version=current.version + 1,
        created_at=current.created_at,
        updated_at=utcnow(),
    )
    if updated.type is ExportType.RECURRING:
        next_run = next_run_after(updated, utcnow())
    elif record.last_run_at is None:
        next_run = first_run_at(updated)
    else:
        next_run = None  # a one-time request that already ran does not run again on an edit; /run does

    async def write(transaction: Transaction) -> bool:
        return await transaction.requests.replace(
            updated, current.version, next_run, session=transaction.session
        )

    if not await _write_with_event(runtime, updated, "update", principal.user, write):
        raise _changed_meanwhile(request_id, if_match)
    return request_view(RequestRecord(updated, next_run, record.last_run_at))


async def delete_export(
    runtime: Runtime, principal: Principal, request_id: str, if_match: Condition | None = None
) -> dict[str, Any]:
    """Soft delete: the series stops, queued jobs are cancelled, history stays readable."""
    record = await authorized(runtime, principal, request_id, Action.DELETE)
    current = _live(record, if_match)
    now = utcnow()
    deleted = current.model_copy(
        update={"version": current.version + 1, "updated_at": now, "deleted_at": now}
    )

    async def write(transaction: Transaction) -> bool:
        session = transaction.session
        if not await transaction.requests.replace(deleted, current.version, None, session=session):
            return False
        await transaction.jobs.cancel_queued(request_id, session=session)
        return True

    if not await _write_with_event(runtime, deleted, "delete", principal.user, write):
        raise _changed_meanwhile(request_id, if_match)
    return request_view(RequestRecord(deleted, None, record.last_run_at))


async def run_export(runtime: Runtime, principal: Principal, request_id: str) -> dict[str, Any]:
    """Runs a request now, outside its schedule: one more job, announced like any other."""
    record = await authorized(runtime, principal, request_id, Action.RUN)
    request = _live(record)
    scheduled_at = utcnow()
    job_id = job_id_for(request.id, scheduled_at)

    async def write(transaction: Transaction) -> bool:
        await admit_job(runtime.settings.api, request, scheduled_at, transaction, principal.user)
        return True

    try:
        await _write_with_event(runtime, request, "run", principal.user, write, job_id=job_id)
    except DuplicateKeyError as error:
        raise Conflict(f"A run of export request '{request_id}' was queued at this very moment") from error
    job = await runtime.jobs.get(job_id)
    assert job is not None
    return job_view(job)


async def cancel_job(runtime: Runtime, principal: Principal, job_id: str) -> dict[str, Any]:
    job, record = await authorized_job(runtime, principal, job_id, Action.CANCEL)

    async def write(transaction: Transaction) -> bool:
        return await transaction.jobs.cancel(job_id, session=transaction.session)

    if not await _write_with_event(runtime, record.request, "cancel", principal.user, write, job_id=job_id):
        raise Conflict(f"Job '{job_id}' is already {job.status.value} and cannot be cancelled")
    cancelled = await runtime.jobs.get(job_id)
    assert cancelled is not None
    return job_view(cancelled)


@dataclass(frozen=True, slots=True)
class Download:
    url: str
    expires_at: datetime
    file: JobFile


def download_refusal(job: Job, record: RequestRecord) -> ApiError | None:
    """Why ``job``'s files cannot be downloaded, if they cannot: one rule for every API's links."""
    if job.status is JobStatus.EXPIRED:
        return Gone(f"Job '{job.id}' has expired and its files were deleted")
    if record.request.deleted_at is not None:
        return Gone(f"The export request of job '{job.id}' was deleted")
    if job.status is not JobStatus.DONE:
        return Conflict(f"Job '{job.id}' is {job.status.value}; only a done job has files")
    return None


def file_link(runtime: Runtime, file: JobFile, ttl: timedelta) -> Download:
    """A presigned link to a file of a job that ``download_refusal`` lets through."""
    url = runtime.storage.presigned_url(file.key, ttl, file.name)
    return Download(url=url, expires_at=utcnow() + ttl, file=file)


async def download_link(runtime: Runtime, principal: Principal, job_id: str, file_index: int) -> Download:
    job, record = await authorized_job(runtime, principal, job_id, Action.DOWNLOAD)
    if (refusal := download_refusal(job, record)) is not None:
        raise refusal
    files = job.files
    if not 0 <= file_index < len(files):
        raise NotFound(f"Job '{job_id}' has {len(files)} file(s); file={file_index} does not exist")
    ttl = timedelta(seconds=runtime.settings.api.download_link_ttl_seconds)
    return file_link(runtime, files[file_index], ttl)
