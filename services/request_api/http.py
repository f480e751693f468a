"""What every router of the request-api shares: the response class, the documented errors and
links of the OpenAPI document, and the dependencies that give a handler its caller and runtime."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic_core
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from exporter.domain.access import Principal
from exporter.runtime import Runtime
from request_api.identity import IDENTITY_PARAMETERS, current_principal


class JsonBody(JSONResponse):
    """JSON rendered by pydantic-core, several times faster than ``json.dumps``. Handlers return
    it themselves: a plain dict would first go through FastAPI's ``jsonable_encoder``, a walk
    over every value of a body that is JSON-ready already."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)


def describe_request_error(error: RequestValidationError) -> str:
    """Names the field of each problem, without the transport's ``body`` prefix."""
    problems = []
    for issue in error.errors():
        location = [str(part) for part in issue.get("loc", ()) if part != "body"]
        message = str(issue.get("msg", "is invalid")).removeprefix("Value error, ")
        problems.append(f"{'.'.join(location) or 'body'}: {message}")
    return "; ".join(problems)


class ErrorBody(BaseModel):
    message: str


async def _runtime(request: Request) -> Runtime:
    """Async, so FastAPI calls it inline instead of in its thread pool."""
    runtime: Runtime = request.app.state.runtime
    return runtime


Caller = Annotated[Principal, Depends(current_principal)]
RuntimeDep = Annotated[Runtime, Depends(_runtime)]
IDENTIFIED: dict[str, Any] = {"parameters": IDENTITY_PARAMETERS}

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": description}
    for code, description in {
        400: "Invalid request or missing identity",
        401: "Invalid bearer token",
        403: "Not authorized",
        404: "Not found (or another tenant's)",
    }.items()
}


def documented_errors(
    model: type[BaseModel], descriptions: dict[int, str]
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a seed's routes: each status with its description, in the seed's shape."""
    return {code: {"model": model, "description": description} for code, description in descriptions.items()}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``ERRORS`` and the given codes beyond them, as ``responses=`` documents them."""
    extra = {
        409: "Conflicting state (changed meanwhile, or a job on the same target in flight)",
        410: "Deleted or expired",
        413: "Body too large",
        422: "Idempotency-Key reused with another body",
        429: "Maximum number of queued exports reached",
    }
    return ERRORS | {code: {"model": ErrorBody, "description": extra[code]} for code in codes}


def links(parameter: str, pointer: str, *operations: str) -> dict[str, Any]:
    """OpenAPI links: where the id in an answer leads, for clients and for stateful fuzzing.
    Operation ids are the handlers' names (see ``create_app``)."""
    return {
        "links": {
            operation: {"operationId": operation, "parameters": {parameter: f"$response.body#{pointer}"}}
            for operation in operations
        }
    }


EXPORT_OPERATIONS = ("get_export", "update_export", "delete_export", "run_export", "list_jobs")
JOB_OPERATIONS = ("get_job", "cancel_job", "download")
EXPORT_LINKS = links("export_id", "/id", *EXPORT_OPERATIONS)
JOB_LINKS = links("job_id", "/id", *JOB_OPERATIONS)
