"""One HTTP call to a chat API, its failures sorted into transient and permanent."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from exporter.notifications.sending import DeliveryFailure, http_failure, parse_retry_after, transient

log = logging.getLogger(__name__)


class HttpSender:
    """What the httpx media share: a pool of at most ``connections`` kept-open connections, and
    attachments counted as sent (multipart, no encoding growth).
    """

    one_transaction = False

    def __init__(self, attach_max_bytes: int, timeout_seconds: float, connections: int) -> None:
        self._attach_max_bytes = attach_max_bytes
        self._client = httpx.AsyncClient(
            timeout=timeout_seconds, limits=httpx.Limits(max_connections=connections)
        )

    def attach_limit(self, recipient: str) -> int:
        return self._attach_max_bytes

    def encoded_size(self, size: int) -> int:
        return size

    async def aclose(self) -> None:
        await self._client.aclose()


async def post(client: httpx.AsyncClient, url: str, what: str, **request: Any) -> httpx.Response:
    """POSTs; a connection that fails or times out is transient. The URL (it may hold a token)
    is never part of the reason.

    The body goes out in one write: httpx streams a multipart body (a message with its file)
    a few bytes per part, each a system call and a packet of its own.
    """
    try:
        outgoing = client.build_request("POST", url, **request)
        outgoing.read()
        return await client.send(outgoing)
    except httpx.TimeoutException as error:
        raise transient(f"{what}: timed out ({type(error).__name__})") from error
    except httpx.TransportError as error:
        # The library's text may name the hosts on the way (proxies): the log keeps it, not the job.
        log.warning("%s: %s: %s", what, type(error).__name__, error)
        raise transient(f"{what}: could not connect ({type(error).__name__})") from error


def json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def response_failure(
    response: httpx.Response, what: str, description: str, retry_after: float | None = None
) -> DeliveryFailure:
    """The failure a non-success answer means; Retry-After from the body wins over the header."""
    waited = (
        retry_after if retry_after is not None else parse_retry_after(response.headers.get("Retry-After"))
    )
    detail = description or response.reason_phrase or "no reason given"
    return http_failure(response.status_code, f"{what}: {detail}", waited)
