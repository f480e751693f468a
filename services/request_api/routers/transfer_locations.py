"""``/transfer-locations``: a tenant's destinations for its runs' files (seed 004)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import Field

from exporter.contracts.transfer import TransferLocationSpec
from request_api import transfer_locations as use
from request_api.http import IDENTIFIED, Caller, JsonBody, RuntimeDep, errors
from request_api.responses import View

router = APIRouter()


class TransferLocationView(View):
    id: str
    name: str
    destination: dict[str, Any] = Field(description="As written, every secret shown as ***")
    created_by: str
    created_at: datetime
    updated_at: datetime


class TransferLocationList(View):
    results: list[TransferLocationView]


@router.post(
    "/transfer-locations",
    status_code=201,
    response_model=TransferLocationView,
    responses=errors(403, 429),
    openapi_extra=IDENTIFIED,
)
async def create_transfer_location(spec: TransferLocationSpec, caller: Caller, runtime: RuntimeDep) -> Any:
    return JsonBody(await use.create_location(runtime, caller, spec), status_code=201)


@router.get(
    "/transfer-locations", response_model=TransferLocationList, responses=errors(), openapi_extra=IDENTIFIED
)
async def list_transfer_locations(caller: Caller, runtime: RuntimeDep) -> Any:
    return JsonBody({"results": await use.list_locations(runtime, caller)})


@router.get(
    "/transfer-locations/{location_id}",
    response_model=TransferLocationView,
    responses=errors(404),
    openapi_extra=IDENTIFIED,
)
async def get_transfer_location(location_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
    return JsonBody(use.location_view(await use.get_location(runtime, caller, location_id)))


@router.put(
    "/transfer-locations/{location_id}",
    response_model=TransferLocationView,
    responses=errors(403, 404),
    openapi_extra=IDENTIFIED,
)
async def replace_transfer_location(
    location_id: str, spec: TransferLocationSpec, caller: Caller, runtime: RuntimeDep
) -> Any:
    return JsonBody(await use.replace_location(runtime, caller, location_id, spec))


@router.delete(
    "/transfer-locations/{location_id}",
    response_model=TransferLocationView,
    responses=errors(403, 404),
    openapi_extra=IDENTIFIED,
)
async def delete_transfer_location(location_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
    """The location as it was; requests naming it fail their next push with the reason."""
    return JsonBody(await use.delete_location(runtime, caller, location_id))
