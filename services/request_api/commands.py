"""The request-api's use cases: each writes its state and its IAM event in one transaction."""

from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession

from exporter.adapters.mongo.client import in_transaction
from exporter.adapters.mongo.requests import new_request_id
from exporter.contracts.base import utcnow
from exporter.contracts.request import ExportRequest, ExportRequestSpec
from exporter.domain.schedule import first_run_at
from exporter.iam import policy_event
from exporter.runtime import Runtime
from exporter.topics import Topic
from request_api.identity import Identity


async def create_export(runtime: Runtime, identity: Identity, spec: ExportRequestSpec) -> ExportRequest:
    now = utcnow()
    request = ExportRequest(
        **spec.model_dump(),
        id=new_request_id(),
        tenant=identity.tenant,
        owner=identity.user,
        version=1,
        created_at=now,
        updated_at=now,
    )
    event = policy_event(request, "create", identity.user)

    async def write(session: AsyncClientSession) -> None:
        await runtime.requests.add(request, first_run_at(request), session=session)
        await runtime.outbox.add(Topic.IAM_POLICY_UPDATED, request.id, event, session=session)

    await in_transaction(runtime.mongo, write)
    runtime.relay.wake()
    return request
