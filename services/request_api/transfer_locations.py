"""The request-api's use cases for transfer locations: a tenant's own, managed by its
``transfer.manager_role`` and readable (without secrets) by anyone of the tenant.

Least privilege: a location receives every file of the requests that name it, and holds
credentials to someone's storage, so creating or changing one is an administrator's act, not
every user's; naming one in a request is an edit of where the request's files go, which the
``notify`` action already guards (``exporter.domain.access.update_actions``).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from exporter.adapters.mongo.transfer_locations import (
    StoredLocation,
    TransferLocationRepository,
    new_location_id,
)
from exporter.adapters.transfer.reach import reach_refusal
from exporter.adapters.transfer.sealing import Sealer
from exporter.contracts.base import utcnow
from exporter.contracts.request import ExportRequestSpec
from exporter.contracts.transfer import TransferLocationSpec, public_view, secrets_of, with_kept_secrets
from exporter.domain.access import Principal
from exporter.runtime import Runtime
from request_api.errors import BadRequest, Forbidden, NotFound, TooManyRequests


def _locations(runtime: Runtime) -> TransferLocationRepository:
    return TransferLocationRepository(runtime.db)


def _instant(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def location_view(location: StoredLocation) -> dict[str, Any]:
    return {
        "id": location.id,
        "name": location.name,
        "destination": location.destination,
        "createdBy": location.created_by,
        "createdAt": _instant(location.created_at),
        "updatedAt": _instant(location.updated_at),
    }


def _may_manage(runtime: Runtime, principal: Principal) -> None:
    role = runtime.settings.transfer.manager_role
    if role not in principal.roles:
        raise Forbidden(f"User not authorized: managing transfer locations needs the role '{role}'")


async def _stored(
    runtime: Runtime,
    principal: Principal,
    spec: TransferLocationSpec,
    location_id: str,
    current: StoredLocation | None = None,
) -> StoredLocation:
    """The location as stored, once its destination is known reachable; its secrets sealed (a
    ``***`` keeps the ``current`` location's)."""
    settings = runtime.settings.transfer
    if (refusal := await reach_refusal(spec.destination, settings.allow_private_addresses)) is not None:
        raise BadRequest(f"destination: {refusal.reason}")
    sealer = Sealer(settings.sealing_key)
    kept = sealer.open(current.sealed, current.tenant, current.id) if current is not None else {}
    try:
        secrets = with_kept_secrets(secrets_of(spec.destination), kept)
    except ValueError as error:
        raise BadRequest(str(error)) from error
    sealed = sealer.seal(secrets, principal.tenant, location_id)
    now = utcnow()
    return StoredLocation(
        id=location_id,
        tenant=principal.tenant,
        name=spec.name,
        destination=public_view(spec.destination),
        sealed=sealed,
        created_by=principal.user,
        created_at=now,
        updated_at=now,
    )


async def create_location(
    runtime: Runtime, principal: Principal, spec: TransferLocationSpec
) -> dict[str, Any]:
    _may_manage(runtime, principal)
    limit = runtime.settings.transfer.max_locations_per_tenant
    if await _locations(runtime).count(principal.tenant) >= limit:
        raise TooManyRequests(f"A tenant may have at most {limit} transfer locations")
    location = await _stored(runtime, principal, spec, new_location_id())
    await _locations(runtime).add(location)
    return location_view(location)


async def get_location(runtime: Runtime, principal: Principal, location_id: str) -> StoredLocation:
    location = await _locations(runtime).get(principal.tenant, location_id)
    if location is None:
        raise NotFound(f"Transfer location '{location_id}' not found")
    return location


async def list_locations(runtime: Runtime, principal: Principal) -> list[dict[str, Any]]:
    limit = runtime.settings.transfer.max_locations_per_tenant
    return [location_view(location) for location in await _locations(runtime).list(principal.tenant, limit)]


async def replace_location(
    runtime: Runtime, principal: Principal, location_id: str, spec: TransferLocationSpec
) -> dict[str, Any]:
    _may_manage(runtime, principal)
    current = await get_location(runtime, principal, location_id)
    location = await _stored(runtime, principal, spec, location_id, current)
    if not await _locations(runtime).replace(location):
        raise NotFound(f"Transfer location '{location_id}' not found")
    return location_view(
        dataclasses.replace(location, created_by=current.created_by, created_at=current.created_at)
    )


async def delete_location(runtime: Runtime, principal: Principal, location_id: str) -> dict[str, Any]:
    _may_manage(runtime, principal)
    location = await get_location(runtime, principal, location_id)
    if not await _locations(runtime).delete(principal.tenant, location_id):
        raise NotFound(f"Transfer location '{location_id}' not found")
    return location_view(location)


async def check_transfer_location(runtime: Runtime, spec: ExportRequestSpec, tenant: str) -> None:
    """A request may name only a location of its own tenant (another's does not exist for it)."""
    location_id = spec.transfer_location_id
    if location_id is not None and await _locations(runtime).get(tenant, location_id) is None:
        raise BadRequest(f"transferLocationId: no transfer location '{location_id}' in this tenant")
