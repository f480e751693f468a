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
    urn = resource_urn(request.tenant, request.id)
    change = f"job:{job_id}" if job_id else f"v{request.version}"
    return IamPolicyUpdated(
        id=f"{request.id}:{change}:{action}",
        source=SOURCE,
        subject=urn,
        tenant=request.tenant,
        actor=actor,
        data=IamPolicyUpdatedData(
            action=action,
            resource=urn,
            owner=request.owner,
            tenant=request.tenant,
            actor=actor,
            version=request.version,
            time=utcnow(),
        ),
    )
