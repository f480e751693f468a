"""The request-api over HTTP: one ``httpx.Client``, the API's ``{"message": ...}`` errors as
``ApiError``, and streamed downloads of presigned links."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from exporter.cli.config import ClientConfig

CHUNK_BYTES = 256 * 1024


class ApiError(Exception):
    """The API refused (``status``, its message) or could not be reached (``status`` 0); exit 3."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message


class ApiClient:
    def __init__(self, config: ClientConfig, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(
            base_url=config.api_url,
            headers=config.headers(),
            timeout=config.timeout_seconds,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, **options: Any) -> Any:
        """The answer's JSON; an error status raises ``ApiError`` with the API's message."""
        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as error:
            raise ApiError(
                0, f"cannot reach {self._http.base_url}: {type(error).__name__}: {error}"
            ) from None
        if response.is_error:
            raise ApiError(response.status_code, error_message(response))
        return response.json() if response.content else None

    def download(self, url: str, path: Path, advance: Callable[[int, int | None], None]) -> int:
        """Streams ``url`` (a presigned link: no credentials of ours go with it) into ``path``;
        ``advance(bytes, total)`` after each chunk. Returns the bytes written."""
        written = 0
        with self._plain_stream(url) as response, path.open("wb") as out:
            total = response.headers.get("content-length")
            for chunk in response.iter_bytes(CHUNK_BYTES):
                out.write(chunk)
                written += len(chunk)
                advance(len(chunk), int(total) if total and total.isdigit() else None)
        return written

    @contextmanager
    def _plain_stream(self, url: str) -> Iterator[httpx.Response]:
        try:
            with (
                httpx.Client(timeout=self._http.timeout) as plain,
                plain.stream("GET", url) as response,
            ):
                if response.is_error:
                    response.read()
                    raise ApiError(response.status_code, f"download refused: {error_message(response)}")
                yield response
        except httpx.HTTPError as error:
            raise ApiError(0, f"download failed: {type(error).__name__}: {error}") from None


def error_message(response: httpx.Response) -> str:
    """The API's ``message``, else the start of whatever the server said."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str):
        return message
    return response.text[:500]
