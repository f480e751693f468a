"""Whether a destination may be reached: its host resolved here, judged by the domain's rule
(``exporter.domain.transfers.address_problem``). Asked at create/edit time and before each push."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from exporter.contracts.transfer import Destination, HttpsLocation, S3Location
from exporter.domain.transfers import address_problem, url_problem


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    secure: bool


def s3_endpoint(location: S3Location) -> Endpoint:
    """``host[:port]`` is https; a URL says its scheme."""
    endpoint = location.endpoint if "://" in location.endpoint else f"https://{location.endpoint}"
    parts = urlsplit(endpoint)
    secure = parts.scheme == "https"
    return Endpoint(parts.hostname or "", parts.port or (443 if secure else 80), secure)


def endpoint_of(destination: Destination) -> Endpoint:
    if isinstance(destination, S3Location):
        return s3_endpoint(destination)
    if isinstance(destination, HttpsLocation):
        parts = urlsplit(destination.url)
        secure = parts.scheme == "https"
        return Endpoint(parts.hostname or "", parts.port or (443 if secure else 80), secure)
    return Endpoint(destination.host.strip("[]"), destination.port, True)


def form_problem(destination: Destination, allow_private: bool) -> str | None:
    """What is wrong with the destination's URL form, before any lookup."""
    if isinstance(destination, HttpsLocation):
        return url_problem(destination.url, allow_private)
    if isinstance(destination, S3Location):
        endpoint = destination.endpoint
        url = endpoint if "://" in endpoint else f"https://{endpoint}"
        if (problem := url_problem(url, allow_private)) is not None:
            return problem
        if urlsplit(url).path not in {"", "/"} or urlsplit(url).query:
            return "must be host[:port] or a URL without a path"
    return None


@dataclass(frozen=True)
class Refusal:
    reason: str
    # False when the host did not resolve: that may pass, so a push is tried again.
    lasting: bool = True


async def reach_refusal(destination: Destination, allow_private: bool) -> Refusal | None:
    """Why the destination may not be reached (its form, or where its host resolves), or None."""
    if (problem := form_problem(destination, allow_private)) is not None:
        return Refusal(problem)
    endpoint = endpoint_of(destination)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            endpoint.host, endpoint.port, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        found = []
    addresses = sorted({str(entry[4][0]) for entry in found})
    problem = address_problem(endpoint.host, addresses, allow_private)
    return None if problem is None else Refusal(problem, lasting=bool(addresses))
