"""What every router of the request-api shares: the response class, the documented errors and
links of the OpenAPI document, and the dependencies that give a handler its caller and runtime."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic_core
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from exporter.domain.access import Principal
from exporter.runtime import Runtime
from request_api import preconditions
from request_api.identity import IDENTITY_PARAMETERS, SECURITY_SCHEMES, current_principal, header_parameter
from request_api.preconditions import digest_tag


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


def identified_with(*parameters: dict[str, Any]) -> dict[str, Any]:
    """``IDENTIFIED`` and the headers an operation reads itself beyond them."""
    return {"parameters": [*IDENTITY_PARAMETERS, *parameters]}


CONDITIONAL_READ = identified_with(
    header_parameter(
        "If-None-Match",
        "The entity-tag of an earlier read: 304 while it is still current",
        maxLength=preconditions.MAX_HEADER,
    )
)
CONDITIONAL_WRITE = identified_with(
    header_parameter(
        "If-Match",
        'The version read ("3", from its ETag), or "*": 412 if the request is at another version. '
        "Without it, the write applies to whatever version is current",
        maxLength=preconditions.MAX_HEADER,
    )
)
# Every identified operation: who may call is OpenAPI's security (either scheme), set on each
# operation by ``request_api.app.openapi_document``.
SECURITY: list[dict[str, list[str]]] = [{scheme: []} for scheme in SECURITY_SCHEMES]


def header_doc(description: str, **schema: Any) -> dict[str, Any]:
    """A string header of an answer, as OpenAPI describes it."""
    return {"description": description, "schema": {"type": "string", **schema}}


RETRY_AFTER = header_doc("Seconds to wait before trying again", pattern="^[0-9]+$")
ETAG = header_doc("The export request's version, as a strong entity-tag (\"3\"); a job's, a digest")
LOCATION = header_doc("The new export request: /exports/{id}")
ERROR_DESCRIPTIONS = {
    400: "Invalid request, or missing X-User-Id (header mode)",
    401: "Missing or invalid bearer token (jwt mode), or missing or wrong X-Gateway-Secret",
    403: "Not authorized",
    404: "Not found (or another tenant's)",
    409: "Conflicting state (changed meanwhile, or a job on the same target in flight)",
    410: "Deleted or expired",
    412: "If-Match names a version that is no longer the request's",
    413: "Body too large",
    422: "Idempotency-Key reused with another body",
    429: "Maximum number of queued exports or active requests reached",
    503: "The identity provider's signing keys cannot be fetched (jwt mode with a JWKS URL)",
}
ERROR_HEADERS = {
    401: {"WWW-Authenticate": header_doc("Bearer")},
    429: {"Retry-After": RETRY_AFTER},
    503: {"Retry-After": RETRY_AFTER},
}


def documented_errors(
    model: type[BaseModel], descriptions: dict[int, str]
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a seed's routes: each status with its description, in the seed's shape."""
    return {code: {"model": model, "description": description} for code, description in descriptions.items()}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The refusals an operation answers, as ``responses=`` documents them: 400, 401 and 503
    (every operation reads its caller) and the given ones, each a ``{"message": ...}``."""
    return {
        code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]}
        | ({"headers": ERROR_HEADERS[code]} if code in ERROR_HEADERS else {})
        for code in (400, 401, *codes, 503)
    }


NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: If-None-Match names the current ETag", "headers": {"ETag": ETAG}}
}


def tagged(request: Request, body: Any, etag: str | None = None, status_code: int = 200) -> Response:
    """``body`` with its ETag (``etag``, else a digest of the body); to a read, 304 when
    If-None-Match names it (RFC 9110 §13.1.2: weak comparison, and never for a write, which has
    happened by now)."""
    answer = JsonBody(body, status_code=status_code)
    tag = etag or digest_tag(bytes(answer.body))
    condition = (
        preconditions.parse("If-None-Match", request.headers.get("if-none-match"))
        if request.method == "GET"
        else None
    )
    if condition is not None and condition.matches_weakly(tag):
        return Response(status_code=304, headers={"ETag": tag})
    answer.headers["ETag"] = tag
    return answer


def if_match(request: Request) -> preconditions.Condition | None:
    return preconditions.parse("If-Match", request.headers.get("if-match"))


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
