"""What the IAM service is told about export requests."""

from __future__ import annotations

from exporter.contracts.base import utcnow
from exporter.contracts.events import IamAction, IamPolicyUpdated, IamPolicyUpdatedData
from exporter.contracts.request import ExportRequest

SOURCE = "exporter/request-api"


def resource_urn(tenant: str, request_id: str) -> str:
    return f"urn:exporter:{tenant}:export:{request_id}"


def policy_event(
    request: ExportRequest, action: IamAction, actor: str, job_id: str | None = None
) -> IamPolicyUpdated:
    """One event per change; its id names the change (version, or job for run and cancel),
    so a republished event is recognisable as the same one."""
    return request_event(request.id, request.tenant, request.owner, request.version, action, actor, job_id)


def request_event(
    request_id: str,
    tenant: str,
    owner: str,
    version: int,
    action: IamAction,
    actor: str,
    job_id: str | None = None,
    source: str = SOURCE,
) -> IamPolicyUpdated:
    """``policy_event`` from the request's identifying fields alone: what the scheduler can still
    trust of a stored request that no longer validates."""
    urn = resource_urn(tenant, request_id)
    change = f"job:{job_id}" if job_id else f"v{version}"
    return IamPolicyUpdated(
        id=f"{request_id}:{change}:{action}",
        source=source,
        subject=urn,
        tenant=tenant,
        actor=actor,
        data=IamPolicyUpdatedData(
            action=action,
            resource=urn,
            owner=owner,
            tenant=tenant,
            actor=actor,
            version=version,
            time=utcnow(),
        ),
    )
