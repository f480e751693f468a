"""Who may do what in the request-api: the caller's grants read from the store, then the rules
of ``exporter.domain.access`` applied to one request (403 to whoever may see it, 404 to anyone
else, so a request's existence never leaks across owners or tenants)."""

from __future__ import annotations

from typing import Any

from exporter.adapters.mongo.requests import RequestFilter, RequestRecord
from exporter.contracts.job import Job
from exporter.domain.access import (
    Action,
    Decision,
    Grant,
    Principal,
    Resource,
    decide,
    subjects_of,
)
from exporter.log_context import bind
from exporter.runtime import Runtime
from request_api.errors import Forbidden, NotFound


async def grants_of(runtime: Runtime, tenant: str) -> list[Grant]:
    """Standing grants from settings plus those the IAM side keeps in the grants collection."""
    configured = [
        Grant(
            tenant=g.tenant,
            subjects=frozenset(g.subjects),
            actions=frozenset(g.actions),
            resource=g.resource,
        )
        for g in runtime.settings.api.grants
        if g.tenant == tenant
    ]
    return configured + await runtime.grants.for_tenant(tenant)


async def authorized(
    runtime: Runtime, principal: Principal, request_id: str, action: Action
) -> RequestRecord:
    """The request, if the caller may do ``action`` to it: 404 across tenants, 403 within."""
    record = await found(runtime, principal, request_id)
    await allow(runtime, principal, record, action)
    return record


async def found(runtime: Runtime, principal: Principal, request_id: str) -> RequestRecord:
    """The request of the caller's tenant, or 404: another tenant's requests do not exist for them."""
    bind(request_id=request_id)
    record = await runtime.requests.get(principal.tenant, request_id)
    if record is None:
        raise NotFound(f"Export request '{request_id}' not found")
    return record


async def allow(runtime: Runtime, principal: Principal, record: RequestRecord, *actions: Action) -> None:
    """Refuses unless the caller may do every one of ``actions`` to the request."""
    grants = await grants_of(runtime, record.request.tenant)
    for action in actions:
        verdict = decision(principal, action, record, grants)
        if not verdict.visible:
            raise NotFound(f"Export request '{record.request.id}' not found")
        if not verdict.allowed:
            raise Forbidden(f"User not authorized: {verdict.reason}")


def decision(principal: Principal, action: Action, record: RequestRecord, grants: list[Grant]) -> Decision:
    request = record.request
    return decide(principal, action, Resource(request.tenant, request.owner, request.id), grants)


EVERYONE_CREATES = frozenset({Action.CREATE})


async def authorize_create(runtime: Runtime, principal: Principal) -> None:
    """The create policy: ``any_user`` lets every user create in their own tenant (and reads no
    grants, which keeps the hot path at one write); ``grant`` needs a grant on ``*``."""
    if runtime.settings.api.create_policy == "any_user":
        everyone, grants = EVERYONE_CREATES, []
    else:
        everyone, grants = frozenset(), await grants_of(runtime, principal.tenant)
    new = Resource(principal.tenant, owner=None)
    verdict = decide(principal, Action.CREATE, new, grants, everyone)
    if not verdict.allowed:
        raise Forbidden(f"User not authorized: {verdict.reason}")


async def authorized_job(
    runtime: Runtime, principal: Principal, job_id: str, action: Action
) -> tuple[Job, RequestRecord]:
    """The job and its request, if the caller may do ``action`` to the request; a job of another
    tenant's, or of a request that is gone, is 404 like the request itself."""
    bind(job_id=job_id)
    job = await runtime.jobs.get(job_id, tenant=principal.tenant)
    if job is not None:
        bind(request_id=job.request_id)
    record = None if job is None else await runtime.requests.get(principal.tenant, job.request_id)
    if job is None or record is None:
        raise NotFound(f"Job '{job_id}' not found")
    await allow(runtime, principal, record, action)
    return job, record


async def visible_filter(runtime: Runtime, principal: Principal, **filters: Any) -> RequestFilter:
    """The caller's own requests, plus those a grant lets them read (all of the tenant's, or some)."""
    subjects = subjects_of(principal)
    readable = [
        g
        for g in await grants_of(runtime, principal.tenant)
        if Action.READ in g.actions and subjects & g.subjects
    ]
    if any(g.resource == "*" for g in readable):
        return RequestFilter(tenant=principal.tenant, **filters)
    ids = frozenset(g.resource for g in readable)
    return RequestFilter(tenant=principal.tenant, owners=frozenset({principal.user}), ids=ids, **filters)
