"""Who may do what to an export request: the authorization rules, over plain data.

An owner may do everything to their own requests. A policy can grant actions on a tenant's
requests (all of them, or one) to other users or roles. Another tenant's request does not exist
for the caller (the API answers 404, never 403, so ids cannot be probed across tenants).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from exporter.contracts.request import ExportRequestSpec


class Action(StrEnum):
    CREATE = "exporter:exports:create"
    READ = "exporter:exports:read"
    UPDATE = "exporter:exports:update"
    # Changing where a request's notifications (and so its links and attachments) go.
    NOTIFY = "exporter:exports:notify"
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
    owner: str | None  # None: the action creates it, so nobody owns it yet
    id: str | None = None  # None: the action creates it; only a grant on "*" covers it


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    visible: bool = True
    reason: str = ""


def subjects_of(principal: Principal) -> set[str]:
    """How grants name the caller."""
    return {f"user:{principal.user}"} | {f"role:{role}" for role in principal.roles}


def decide(
    principal: Principal,
    action: Action,
    resource: Resource,
    grants: Iterable[Grant],
    everyone: frozenset[Action] = frozenset(),
) -> Decision:
    """``everyone``: the actions any user of the tenant may do without a grant (the create
    policy ``any_user``)."""
    if resource.tenant != principal.tenant:
        return Decision(allowed=False, visible=False, reason="another tenant's resource")
    if resource.owner == principal.user or action in everyone:
        return Decision(allowed=True)
    subjects = subjects_of(principal)
    granted = any(
        grant.tenant == principal.tenant
        and action in grant.actions
        and grant.resource in {"*", resource.id}
        and subjects & grant.subjects
        for grant in grants
    )
    return Decision(allowed=granted, reason="" if granted else f"{action} is not granted")


def destinations(spec: ExportRequestSpec) -> frozenset[tuple[str, frozenset[str]]]:
    """Where a request's files go: each message's medium and recipients (no recipients means
    the owner's configured contacts, which is a destination of its own), and its transfer location."""
    messages = spec.notification.messages
    places = {(str(message.medium), frozenset(message.recipients)) for message in messages}
    if spec.transfer_location_id is not None:  # a transfer location receives the files themselves
        places.add(("transfer", frozenset({spec.transfer_location_id})))
    return frozenset(places)


def update_actions(current: ExportRequestSpec, replacement: ExportRequestSpec) -> list[Action]:
    """What replacing ``current`` needs: ``update``, and ``notify`` too when it changes where
    notifications go, so whoever may edit a request cannot send its files to themselves."""
    if destinations(current) == destinations(replacement):
        return [Action.UPDATE]
    return [Action.UPDATE, Action.NOTIFY]
