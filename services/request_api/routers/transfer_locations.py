"""``/transfer-locations``: a tenant's destinations for its runs' files (seed 004)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from exporter.contracts.transfer import TransferLocationSpec
from request_api import transfer_locations as use
from request_api.http import IDENTIFIED, Caller, JsonBody, RuntimeDep, errors

router = APIRouter()


@router.post("/transfer-locations", status_code=201, responses=errors(429), openapi_extra=IDENTIFIED)
async def create_transfer_location(spec: TransferLocationSpec, caller: Caller, runtime: RuntimeDep) -> Any:
    return JsonBody(await use.create_location(runtime, caller, spec), status_code=201)


@router.get("/transfer-locations", responses=errors(), openapi_extra=IDENTIFIED)
async def list_transfer_locations(caller: Caller, runtime: RuntimeDep) -> Any:
    return JsonBody({"results": await use.list_locations(runtime, caller)})


@router.get("/transfer-locations/{location_id}", responses=errors(), openapi_extra=IDENTIFIED)
async def get_transfer_location(location_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
    return JsonBody(use.location_view(await use.get_location(runtime, caller, location_id)))


@router.put("/transfer-locations/{location_id}", responses=errors(), openapi_extra=IDENTIFIED)
async def replace_transfer_location(
    location_id: str, spec: TransferLocationSpec, caller: Caller, runtime: RuntimeDep
) -> Any:
    return JsonBody(await use.replace_location(runtime, caller, location_id, spec))


@router.delete(
    "/transfer-locations/{location_id}", status_code=204, responses=errors(), openapi_extra=IDENTIFIED
)
async def delete_transfer_location(location_id: str, caller: Caller, runtime: RuntimeDep) -> Response:
    await use.delete_location(runtime, caller, location_id)
    return Response(status_code=204)
