"""Each HTTP request's trace id, in every log line about it (uvicorn's access line included) and
in its answer's ``X-Request-Id``: a caller quoting it finds the lines of its request."""

from __future__ import annotations

import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exporter.log_context import log_context, trace_id_of

REQUEST_ID_HEADER = b"x-request-id"
# A caller's own request id is kept only when it looks like one: it goes into every line.
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def trace_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The W3C ``traceparent``'s trace id, else the caller's ``X-Request-Id``, else a new one."""
    given = {name: value for name, value in headers if name in (b"traceparent", REQUEST_ID_HEADER)}
    if found := trace_id_of(given.get(b"traceparent")):
        return found
    request_id = given.get(REQUEST_ID_HEADER)
    if request_id is not None and _REQUEST_ID.fullmatch(request_id):
        return request_id.decode()
    return os.urandom(16).hex()


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace = trace_id(scope.get("headers", []))

        async def answered(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, trace.encode())]
            await send(message)

        # The ids the handlers add (tenant, request, job) end with the request too.
        with log_context(trace_id=trace, tenant=None, request_id=None, job_id=None):
            await self.app(scope, receive, answered)
