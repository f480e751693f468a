"""Who may do what to an export request: the authorization rules, over plain data.

An owner may do everything to their own requests. A policy can grant actions on a tenant's
requests (all of them, or one) to other users or roles. Another tenant's request does not exist
for the caller (the API answers 404, never 403, so ids cannot be probed across tenants).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    CREATE = "exporter:exports:create"
    READ = "exporter:exports:read"
    UPDATE = "exporter:exports:update"
    DELETE = "exporter:exports:delete"
    RUN = "exporter:exports:run"
    DOWNLOAD = "exporter:exports:download"
    CANCEL = "exporter:exports:cancel"


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    tenant: str
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Grant:
    """``subjects`` (``user:<id>`` or ``role:<name>``) may do ``actions`` on ``resource``.

    ``resource`` is ``*`` for every request of the tenant, or one request id.
    """

    tenant: str
    subjects: frozenset[str]
    actions: frozenset[Action]
    resource: str = "*"


@dataclass(frozen=True, slots=True)
class Resource:
    tenant: str
    owner: str
    id: str | None = None  # None: the action creates it


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    visible: bool = True
    reason: str = ""


def _subjects(principal: Principal) -> set[str]:
    return {f"user:{principal.user}"} | {f"role:{role}" for role in principal.roles}


def decide(principal: Principal, action: Action, resource: Resource, grants: Iterable[Grant]) -> Decision:
    if resource.tenant != principal.tenant:
        return Decision(allowed=False, visible=False, reason="another tenant's resource")
    if resource.owner == principal.user:
        return Decision(allowed=True)
    subjects = _subjects(principal)
    granted = any(
        grant.tenant == principal.tenant
        and action in grant.actions
        and grant.resource in {"*", resource.id}
        and subjects & grant.subjects
        for grant in grants
    )
    return Decision(allowed=granted, reason="" if granted else f"{action} is not granted")
