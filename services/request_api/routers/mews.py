"""Seed 003's ``exports/add`` and ``exports/getAll`` at the seed's paths: the same commands and
queries as ``/exports`` and ``/jobs``, with the seed's bodies, token identity and errors (the
mapping is in ``request_api.seeds.mews``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from exporter.domain.access import Principal
from exporter.runtime import Runtime
from exporter.settings import Settings
from request_api import commands, queries
from request_api.errors import ApiError
from request_api.http import JsonBody, RuntimeDep, describe_request_error
from request_api.identity import Identity
from request_api.seeds import mews

PREFIX = "/api/connector/v1/exports"
BAD_TOKENS = "Invalid ClientToken or AccessToken"


class MewsRoute(APIRoute):
    """Every refusal of these routes in Mews' error shape, with the ``Request-Id`` it names."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                return _error(400, describe_request_error(error))
            except ApiError as error:
                return _error(mews.error_status(error.status_code), error.message, error.headers)
            except StarletteHTTPException as error:
                return _error(mews.error_status(error.status_code), str(error.detail), error.headers)

        return answer


def _error(status_code: int, message: str, headers: Mapping[str, str] | None = None) -> JsonBody:
    request_id = str(uuid.uuid4())
    return JsonBody(
        mews.error_body(message, request_id),
        status_code=status_code,
        headers={**(headers or {}), "Request-Id": request_id},
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": mews.MewsError, "description": description}
    for code, description in {
        400: "Invalid request",
        401: "Invalid ClientToken or AccessToken",
        403: "Refused: an export of the entity type is pending or processing, or not authorized",
        429: "Maximum number of queued exports reached",
    }.items()
}
router = APIRouter(prefix=PREFIX, route_class=MewsRoute, tags=["Seed 003 (Mews)"], responses=ERRORS)


def _caller(request: Request, body: mews.Credentials) -> Principal:
    """The identity the settings give the token pair; the gateway's secret first, as for every route."""
    identity: Identity = request.app.state.identity
    identity.check_gateway(request.headers)
    settings: Settings = request.app.state.settings
    principal = mews.principal_for(settings.mews.clients, body.client_token, body.access_token)
    if principal is None:
        raise StarletteHTTPException(status_code=401, detail=BAD_TOKENS)
    return principal


async def _exports(runtime: Runtime, caller: Principal, request_ids: list[str]) -> list[dict[str, Any]]:
    """The Mews exports among ``request_ids`` that ``caller`` may read, in the order asked."""
    ttl = timedelta(seconds=runtime.settings.mews.link_ttl_seconds)
    retention = runtime.settings.scheduler.retention
    runs = await queries.latest_runs(runtime, caller, request_ids, ttl, mews.is_export)
    return [mews.export_view(run.record.request, run.job, run.links, retention) for run in runs]


@router.post("/add", responses={200: {"model": mews.AddedExport}})
async def mews_add_export(body: mews.AddExport, request: Request, runtime: RuntimeDep) -> Any:
    """Seed 003's "Add export": refused (403) while one of the entity type is pending or
    processing: the core's one-job-per-target admission, in the create's own transaction."""
    caller = _caller(request, body)
    created = await commands.create_export(runtime, caller, mews.export_spec(body), None)
    [export] = await _exports(runtime, caller, [created.body["id"]])
    return JsonBody({"Export": export})


@router.post("/getAll", responses={200: {"model": mews.Exports}})
async def mews_get_all_exports(body: mews.GetAllExports, request: Request, runtime: RuntimeDep) -> Any:
    """Seed 003's "Get all exports": ids that name no export the caller may read are left out."""
    caller = _caller(request, body)
    return JsonBody({"Exports": await _exports(runtime, caller, mews.request_ids(body.export_ids))})
