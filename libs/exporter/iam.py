"""What the IAM service is told about export requests."""

from __future__ import annotations

from exporter.contracts.base import utcnow
from exporter.contracts.events import IamAction, IamPolicyUpdated, IamPolicyUpdatedData
from exporter.contracts.request import ExportRequest

SOURCE = "exporter/request-api"


def resource_urn(tenant: str, request_id: str) -> str:
    return f"urn:exporter:{tenant}:export:{request_id}"


def policy_event(request: ExportRequest, action: IamAction, actor: str) -> IamPolicyUpdated:
    """One event per change; its id names the request version and action, so a replay is visible."""
    urn = resource_urn(request.tenant, request.id)
    return IamPolicyUpdated(
        id=f"{request.id}:v{request.version}:{action}",
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
